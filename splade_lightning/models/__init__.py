"""Pure-torch models (never import lightning)."""

from .backbone import load_mlm
from .pooling import splade_activation, splade_pool
from .splade import SpladeEncoder

__all__ = ["SpladeEncoder", "load_mlm", "splade_activation", "splade_pool"]
