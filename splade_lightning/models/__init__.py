"""Pure-torch models (never import lightning)."""

from .backbone import load_mlm
from .csr import SparseAutoEncoder
from .csr_encoder import CSREncoder
from .dense import DenseEncoder
from .pooling import splade_activation, splade_pool
from .router import QueryDocRouter
from .splade import SpladeEncoder
from .static import StaticSparseEncoder

__all__ = [
    "CSREncoder",
    "DenseEncoder",
    "QueryDocRouter",
    "SparseAutoEncoder",
    "SpladeEncoder",
    "StaticSparseEncoder",
    "load_mlm",
    "splade_activation",
    "splade_pool",
]
