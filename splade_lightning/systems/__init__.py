"""LightningModules ("systems"): wire models, losses and regularisers; log; configure optimisers."""

from .splade import SpladeModule

__all__ = ["SpladeModule"]
