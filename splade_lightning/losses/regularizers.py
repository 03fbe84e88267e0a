"""Sparsity regularisers on (N, V) representations: tensors in, scalar out.

FLOPS: Paria et al., "Minimizing FLOPs to Learn Efficient Sparse Representations", ICLR 2020 (arXiv:2004.05665),
used by SPLADE (arXiv:2107.05720). Active-dims threshold ("FLOPS with L0 masking"): arXiv:2504.14839, as in
sentence-transformers ``FlopsLoss(threshold=...)`` and OpenSearch ``flops_threshold``.

Under DDP (``torch.distributed`` initialised with world size > 1) both are computed over the *global* batch of all
processes by default: each rank all-reduces its partial sums and row count (one collective of V + 1 numbers) and
computes the same global value; with DDP's gradient averaging the parameter gradients equal those of one process on
the concatenated batch (see :mod:`.distributed`). FLOPS needs this: ``(mean over rows)²`` is not linear in the
batch, so per-rank FLOPS averaged over ranks is a different (noisier, larger) objective with different gradients.
"""

from __future__ import annotations

import torch
from torch import nn

from splade_lightning.errors import ConfigError
from splade_lightning.losses.distributed import global_sum_and_count, is_distributed
from splade_lightning.losses.ranking import at_least_fp32


class _ActiveDimsMaskedRegularizer(nn.Module):
    """Base: optionally exclude rows that are already sparse (at most ``threshold`` active dims) from the penalty;
    reduce the partial sums over all processes when distributed."""

    name = "reg"

    def __init__(self, threshold: float | None = None, global_batch: bool = True):
        super().__init__()
        if threshold is not None and threshold < 0:
            raise ConfigError(f"{type(self).__name__}: threshold={threshold!r}: expected None or a number >= 0 "
                              "(active dims)")
        self.threshold = threshold
        self.global_batch = global_batch

    def forward(self, reps: torch.Tensor) -> torch.Tensor:
        """(N, V) -> scalar (the global-batch value on every rank when distributed and ``global_batch``)."""
        if self.threshold is not None:
            keep = (reps != 0).sum(dim=1) > self.threshold  # (N,): rows above the threshold are penalised
            reps = reps * keep.unsqueeze(1).to(reps.dtype)
        sums = self.partial_sums(at_least_fp32(reps).abs())
        if self.global_batch and is_distributed():
            sums, rows = global_sum_and_count(sums, reps.shape[0])
            return self.penalty(sums, rows)
        return self.penalty(sums, reps.shape[0])

    def partial_sums(self, magnitudes: torch.Tensor) -> torch.Tensor:
        """(N, V) |reps| -> the sums over rows that the penalty needs (additive over processes)."""
        raise NotImplementedError

    def penalty(self, sums: torch.Tensor, rows: torch.Tensor | int) -> torch.Tensor:
        """Sums over all N rows (masked rows included in N) -> scalar."""
        raise NotImplementedError


class FlopsRegularizer(_ActiveDimsMaskedRegularizer):
    """FLOPS regulariser ``R(E) = Σ_v ( (1/N) Σ_i |E_{i,v}| )²`` over a batch of N representations.

    Equals sentence-transformers 6.x ``FlopsLoss`` for non-negative inputs (SPLADE weights are >= 0); with
    ``threshold`` set, rows with at most ``threshold`` active dims are excluded from the sum while the mean still
    divides by N (sentence-transformers / OpenSearch semantics). Under DDP, N is the global batch (all processes, any
    local sizes) unless ``global_batch=False``.

    Args:
        threshold: optional active-dims threshold (L0 masking); None disables it.
        global_batch: under DDP (``torch.distributed`` initialised, world size > 1) compute the mean over the global
            batch of all processes, with exact gradients (one all-reduce of V + 1 numbers). False: each process
            uses its local batch (the objective then depends on the number of processes).
    """

    name = "flops"

    def partial_sums(self, magnitudes: torch.Tensor) -> torch.Tensor:
        return magnitudes.sum(dim=0)  # (V,)

    def penalty(self, sums: torch.Tensor, rows: torch.Tensor | int) -> torch.Tensor:
        return ((sums / rows) ** 2).sum()


class L1Regularizer(_ActiveDimsMaskedRegularizer):
    """L1 regulariser ``R(E) = (1/N) Σ_i Σ_v |E_{i,v}|`` (NAVER SPLADE's query-side option for efficient models,
    Lassance & Clinchant, arXiv:2207.03834).

    L1 is a mean of per-row terms, so the local mean averaged by DDP is already exact when every process has the same
    batch size; ``global_batch`` (one all-reduce of 2 numbers) makes it exact for unequal sizes too and makes the
    logged value the global one.

    Args:
        threshold: optional active-dims threshold (L0 masking); None disables it.
        global_batch: under DDP, divide by the global N (all processes) instead of the local one.
    """

    name = "l1"

    def partial_sums(self, magnitudes: torch.Tensor) -> torch.Tensor:
        return magnitudes.sum().reshape(1)

    def penalty(self, sums: torch.Tensor, rows: torch.Tensor | int) -> torch.Tensor:
        return sums.sum() / rows
