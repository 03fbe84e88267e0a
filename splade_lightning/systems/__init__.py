"""LightningModules ("systems"): wire models, losses and regularisers; log; configure optimisers."""

from splade_lightning.systems.base import RetrievalModule
from splade_lightning.systems.csr import CSRModule
from splade_lightning.systems.inference_free import InferenceFreeSpladeModule
from splade_lightning.systems.interfaces import DeferrableLoss, EvalReporting, Regularized
from splade_lightning.systems.splade import SpladeModule

__all__ = ["CSRModule", "DeferrableLoss", "EvalReporting", "InferenceFreeSpladeModule", "Regularized",
           "RetrievalModule", "SpladeModule"]
