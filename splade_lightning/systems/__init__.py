"""LightningModules ("systems"): wire models, losses and regularisers; log; configure optimisers."""

from .inference_free import InferenceFreeSpladeModule
from .splade import SpladeModule

__all__ = ["InferenceFreeSpladeModule", "SpladeModule"]
