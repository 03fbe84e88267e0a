"""Losses and regularisers: pure torch, tensors in, scalars out."""

from .csr import CSRReconstructionLoss, csr_total
from .ranking import InBatchNegativesLoss, similarity_matrix
from .regularizers import FlopsRegularizer, L1Regularizer

__all__ = [
    "CSRReconstructionLoss",
    "FlopsRegularizer",
    "InBatchNegativesLoss",
    "L1Regularizer",
    "csr_total",
    "similarity_matrix",
]
