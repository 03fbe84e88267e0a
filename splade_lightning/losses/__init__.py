"""Losses and regularisers: pure torch, tensors in, scalars out."""

from .csr import CSRReconstructionLoss, csr_total
from .distillation import KLDistillationLoss, MarginMSELoss, SpladeV3DistillationLoss, candidate_scores
from .distributed import all_reduce_sum, gather_rows, is_distributed
from .ranking import InBatchNegativesLoss, similarity_matrix
from .regularizers import FlopsRegularizer, L1Regularizer

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
