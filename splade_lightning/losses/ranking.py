"""Ranking losses on (B, V) sparse representations: tensors in, scalar out."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from splade_lightning.errors import ConfigError
from splade_lightning.losses.distributed import gather_rows, global_sum_and_count, is_distributed


def at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """Upcast half-precision tensors (bf16/fp16 autocast) to float32; keep float32/float64 as they are."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def similarity_matrix(query_reps: torch.Tensor, doc_reps: torch.Tensor, similarity: str = "dot") -> torch.Tensor:
    """All-pairs similarity.

    Args:
        query_reps: (B, V).
        doc_reps: (N, V).
        similarity: ``dot`` (SPLADE's scoring function) or ``cosine``.

    Returns:
        (B, N) scores.
    """
    if similarity == "cosine":
        query_reps, doc_reps = F.normalize(query_reps, dim=-1), F.normalize(doc_reps, dim=-1)
    return query_reps @ doc_reps.transpose(0, 1)


class InBatchNegativesLoss(nn.Module):
    """InfoNCE with in-batch negatives (a.k.a. MultipleNegativesRankingLoss; van den Oord et al., arXiv:1807.03748;
    in-batch negatives for SPLADE: Formal et al., arXiv:2109.10086).

    Every query is scored against *all* documents of the batch: all B positives and all B·n hard negatives
    (negatives are shared across the batch). ``loss = mean_i [ -s_{i,i} + logsumexp_j s_{i,j} ]`` with
    ``s = scale · sim(q, d)``. Equals sentence-transformers 6.x ``SparseMultipleNegativesRankingLoss`` (defaults
    scale=1, dot product) on the same embeddings.

    With ``gather_across_processes`` under DDP, each process scores its queries against the documents of *all*
    processes (W·B·(1+n) candidates instead of B·(1+n); gradients reach the other processes' documents through a
    differentiable all-gather), and every process returns the mean over the global batch of queries, so that DDP's
    averaged gradients equal one process's gradients on the concatenated batch (a cost of one all-gather of the
    (B·(1+n), V) document reps per step, and its reduce in backward).

    Args:
        scale: multiplies the similarities (= 1 / temperature). SPLADE uses 1 with the raw dot product.
        similarity: ``dot`` or ``cosine``.
        gather_across_processes: under DDP (``torch.distributed`` initialised, world size > 1) use the documents of
            all processes as negatives; ignored in a single process.
    """

    def __init__(self, scale: float = 1.0, similarity: Literal["dot", "cosine"] = "dot",
                 gather_across_processes: bool = False):
        super().__init__()
        if scale <= 0:
            raise ConfigError(f"InBatchNegativesLoss: scale={scale!r}: expected a positive number")
        if similarity not in ("dot", "cosine"):
            raise ConfigError(f"InBatchNegativesLoss: similarity={similarity!r}: expected 'dot' or 'cosine'")
        self.scale = scale
        self.similarity = similarity
        self.gather_across_processes = gather_across_processes

    def forward(self, query_reps: torch.Tensor, doc_reps: torch.Tensor, num_negatives: int = 0) -> torch.Tensor:
        """Compute the loss.

        Args:
            query_reps: (B, V).
            doc_reps: (B * (1 + num_negatives), V), column-major: rows 0..B-1 are the positives.
            num_negatives: hard negatives per query (only used to check the shape).

        Returns:
            Scalar loss.
        """
        batch = query_reps.shape[0]
        if doc_reps.shape[0] != batch * (1 + num_negatives):
            raise ValueError(f"doc_reps has {doc_reps.shape[0]} rows, expected B*(1+n) = {batch}*(1+{num_negatives})")
        if self.gather_across_processes and is_distributed():
            return self._gathered_loss(query_reps, doc_reps)
        scores = self.scale * similarity_matrix(query_reps, doc_reps, self.similarity)
        labels = torch.arange(batch, device=scores.device)
        return F.cross_entropy(at_least_fp32(scores), labels)

    def _gathered_loss(self, query_reps: torch.Tensor, doc_reps: torch.Tensor) -> torch.Tensor:
        """Mean over the global batch of queries of InfoNCE against all processes' documents.

        Rank r's query i has its positive at row ``offset_r + i`` of the gathered documents, ``offset_r`` being the
        number of documents of ranks < r. The loss sum and the query count are all-reduced, so every rank returns
        the same global mean (the gradient convention of :mod:`.distributed`).
        """
        all_docs, sizes = gather_rows(doc_reps)
        offset = sum(sizes[:torch.distributed.get_rank()])
        scores = self.scale * similarity_matrix(query_reps, all_docs, self.similarity)
        labels = offset + torch.arange(query_reps.shape[0], device=scores.device)
        local_sum = F.cross_entropy(at_least_fp32(scores), labels, reduction="sum")
        total, count = global_sum_and_count(local_sum, query_reps.shape[0])
        return total / count
