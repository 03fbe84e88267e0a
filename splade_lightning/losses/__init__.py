"""Losses and regularisers: pure torch, tensors in, scalars out."""

from splade_lightning.losses.csr import CSRReconstructionLoss, csr_total
from splade_lightning.losses.distillation import (
    KLDistillationLoss,
    MarginMSELoss,
    SpladeV3DistillationLoss,
    candidate_scores,
)
from splade_lightning.losses.distributed import all_reduce_sum, gather_rows, is_distributed
from splade_lightning.losses.embedding_mse import EmbeddingMSELoss
from splade_lightning.losses.pairs import AnglELoss, CoSENTLoss, CosineSimilarityLoss
from splade_lightning.losses.ranking import InBatchNegativesLoss, similarity_matrix
from splade_lightning.losses.regularizers import FlopsRegularizer, L1Regularizer
from splade_lightning.losses.triplet import TripletLoss

__all__ = [
    "AnglELoss",
    "CSRReconstructionLoss",
    "CoSENTLoss",
    "CosineSimilarityLoss",
    "EmbeddingMSELoss",
    "FlopsRegularizer",
    "InBatchNegativesLoss",
    "KLDistillationLoss",
    "L1Regularizer",
    "MarginMSELoss",
    "SpladeV3DistillationLoss",
    "TripletLoss",
    "all_reduce_sum",
    "candidate_scores",
    "csr_total",
    "gather_rows",
    "is_distributed",
    "similarity_matrix",
]
