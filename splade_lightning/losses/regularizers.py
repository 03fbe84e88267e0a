"""Sparsity regularisers on (N, V) representations: tensors in, scalar out.

FLOPS: Paria et al., "Minimizing FLOPs to Learn Efficient Sparse Representations", ICLR 2020 (arXiv:2004.05665),
used by SPLADE (arXiv:2107.05720). Active-dims threshold ("FLOPS with L0 masking"): arXiv:2504.14839, as in
sentence-transformers ``FlopsLoss(threshold=...)`` and OpenSearch ``flops_threshold``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .ranking import at_least_fp32


def _mask_sparse_rows(reps: torch.Tensor, threshold: float | None) -> torch.Tensor:
    """Zero the rows whose active dims (L0) are <= ``threshold`` (they are sparse enough); None: keep all rows."""
    if threshold is None:
        return reps
    keep = (reps != 0).sum(dim=1) > threshold  # (N,)
    return reps * keep.unsqueeze(1).to(reps.dtype)


def _check_threshold(name: str, threshold: float | None) -> None:
    if threshold is not None and threshold < 0:
        raise ConfigError(f"{name}: threshold={threshold!r}: expected None or a number >= 0 (active dims)")


class FlopsRegularizer(nn.Module):
    """FLOPS regulariser ``R(E) = Σ_v ( (1/N) Σ_i |E_{i,v}| )²`` over a batch of N representations.

    Equals sentence-transformers 6.x ``FlopsLoss`` for non-negative inputs (SPLADE weights are >= 0); with
    ``threshold`` set, rows with at most ``threshold`` active dims are excluded from the sum while the mean still
    divides by N (sentence-transformers / OpenSearch semantics).

    Args:
        threshold: optional active-dims threshold (L0 masking); None disables it.
    """

    def __init__(self, threshold: float | None = None):
        super().__init__()
        _check_threshold("FlopsRegularizer", threshold)
        self.threshold = threshold

    def forward(self, reps: torch.Tensor) -> torch.Tensor:
        """(N, V) -> scalar."""
        reps = _mask_sparse_rows(reps, self.threshold)
        return (at_least_fp32(reps).abs().mean(dim=0) ** 2).sum()


class L1Regularizer(nn.Module):
    """L1 regulariser ``R(E) = (1/N) Σ_i Σ_v |E_{i,v}|`` (NAVER SPLADE's query-side option for efficient models,
    Lassance & Clinchant, arXiv:2207.03834).

    Args:
        threshold: optional active-dims threshold (L0 masking); None disables it.
    """

    def __init__(self, threshold: float | None = None):
        super().__init__()
        _check_threshold("L1Regularizer", threshold)
        self.threshold = threshold

    def forward(self, reps: torch.Tensor) -> torch.Tensor:
        """(N, V) -> scalar."""
        reps = _mask_sparse_rows(reps, self.threshold)
        return at_least_fp32(reps).abs().sum(dim=1).mean()
