"""Losses and regularisers: pure torch, tensors in, scalars out."""

from splade_lightning.losses.csr import CSRReconstructionLoss, csr_total
from splade_lightning.losses.distillation import (
    KLDistillationLoss,
    MarginMSELoss,
    SpladeV3DistillationLoss,
    candidate_scores,
)
from splade_lightning.losses.distributed import all_reduce_sum, gather_rows, is_distributed
from splade_lightning.losses.ranking import InBatchNegativesLoss, similarity_matrix
from splade_lightning.losses.regularizers import FlopsRegularizer, L1Regularizer

__all__ = [
    "CSRReconstructionLoss",
    "FlopsRegularizer",
    "InBatchNegativesLoss",
    "KLDistillationLoss",
    "L1Regularizer",
    "MarginMSELoss",
    "SpladeV3DistillationLoss",
    "all_reduce_sum",
    "candidate_scores",
    "csr_total",
    "gather_rows",
    "is_distributed",
    "similarity_matrix",
]
