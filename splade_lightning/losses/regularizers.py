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


class _ActiveDimsMaskedRegularizer(nn.Module):
    """Base: optionally exclude rows that are already sparse (at most ``threshold`` active dims) from the penalty."""

    name = "reg"

    def __init__(self, threshold: float | None = None):
        super().__init__()
        if threshold is not None and threshold < 0:
            raise ConfigError(f"{type(self).__name__}: threshold={threshold!r}: expected None or a number >= 0 "
                              "(active dims)")
        self.threshold = threshold

    def forward(self, reps: torch.Tensor) -> torch.Tensor:
        """(N, V) -> scalar."""
        if self.threshold is not None:
            keep = (reps != 0).sum(dim=1) > self.threshold  # (N,): rows above the threshold are penalised
            reps = reps * keep.unsqueeze(1).to(reps.dtype)
        return self.penalty(at_least_fp32(reps).abs())

    def penalty(self, magnitudes: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class FlopsRegularizer(_ActiveDimsMaskedRegularizer):
    """FLOPS regulariser ``R(E) = Σ_v ( (1/N) Σ_i |E_{i,v}| )²`` over a batch of N representations.

    Equals sentence-transformers 6.x ``FlopsLoss`` for non-negative inputs (SPLADE weights are >= 0); with
    ``threshold`` set, rows with at most ``threshold`` active dims are excluded from the sum while the mean still
    divides by N (sentence-transformers / OpenSearch semantics).

    Args:
        threshold: optional active-dims threshold (L0 masking); None disables it.
    """

    name = "flops"

    def penalty(self, magnitudes: torch.Tensor) -> torch.Tensor:
        return (magnitudes.mean(dim=0) ** 2).sum()


class L1Regularizer(_ActiveDimsMaskedRegularizer):
    """L1 regulariser ``R(E) = (1/N) Σ_i Σ_v |E_{i,v}|`` (NAVER SPLADE's query-side option for efficient models,
    Lassance & Clinchant, arXiv:2207.03834).

    Args:
        threshold: optional active-dims threshold (L0 masking); None disables it.
    """

    name = "l1"

    def penalty(self, magnitudes: torch.Tensor) -> torch.Tensor:
        return magnitudes.sum(dim=1).mean()
