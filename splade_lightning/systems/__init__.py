"""LightningModules ("systems"): wire models, losses and regularisers; log; configure optimisers."""

from .base import RetrievalModule
from .csr import CSRModule
from .inference_free import InferenceFreeSpladeModule
from .splade import SpladeModule

__all__ = ["CSRModule", "InferenceFreeSpladeModule", "RetrievalModule", "SpladeModule"]
