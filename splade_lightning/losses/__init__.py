"""Losses and regularisers: pure torch, tensors in, scalars out."""

from .csr import CSRReconstructionLoss, csr_total
from .distillation import KLDistillationLoss, MarginMSELoss, SpladeV3DistillationLoss, candidate_scores
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
    "candidate_scores",
    "csr_total",
    "similarity_matrix",
]
