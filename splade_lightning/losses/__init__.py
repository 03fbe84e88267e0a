"""Losses and regularisers: pure torch, tensors in, scalars out."""

from .ranking import InBatchNegativesLoss, similarity_matrix
from .regularizers import FlopsRegularizer, L1Regularizer

__all__ = ["FlopsRegularizer", "InBatchNegativesLoss", "L1Regularizer", "similarity_matrix"]
