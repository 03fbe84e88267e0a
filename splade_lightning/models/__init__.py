"""Pure-torch models (never import lightning)."""

from splade_lightning.models.backbone import load_mlm
from splade_lightning.models.base import SparseEncoderBase
from splade_lightning.models.csr import SparseAutoEncoder
from splade_lightning.models.csr_encoder import CSREncoder
from splade_lightning.models.dense import DenseEncoder
from splade_lightning.models.pooling import splade_activation, splade_pool
from splade_lightning.models.router import QueryDocRouter, Router
from splade_lightning.models.splade import SpladeEncoder
from splade_lightning.models.static import StaticSparseEncoder

__all__ = [
    "CSREncoder",
    "DenseEncoder",
    "QueryDocRouter",
    "Router",
    "SparseAutoEncoder",
    "SparseEncoderBase",
    "SpladeEncoder",
    "StaticSparseEncoder",
    "load_mlm",
    "splade_activation",
    "splade_pool",
]
