"""Sparsity statistics of sparse reps as a ``torchmetrics.Metric`` (sums/min/max/counts reduce correctly under DDP).

A dimension is *active* in a vector when its weight is nonzero (for the nonnegative SPLADE/CSR reps this is the same as
weight > 0; a negative weight would also be stored and multiplied by an inverted index, so it counts too).
"""

from __future__ import annotations

import numbers

import torch
from torchmetrics import Metric

from splade_lightning.errors import ConfigError, DataError

__all__ = ["SparsityStats", "flops"]

_INT64_MAX = torch.iinfo(torch.int64).max


def _active_counts(reps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-row active count (N,), per-dim active count (V,)) of a dense / COO / CSR (N, V) tensor, int64."""
    n_rows, width = reps.shape
    if reps.layout == torch.strided:
        active = reps != 0
        return active.sum(dim=1), active.sum(dim=0)
    if reps.layout == torch.sparse_coo:
        reps = reps.coalesce()  # duplicates are summed first, so each (row, dim) counts once
        rows, cols = reps.indices()
    elif reps.layout == torch.sparse_csr:
        crow = reps.crow_indices().long()
        rows = torch.repeat_interleave(torch.arange(n_rows, device=crow.device), crow[1:] - crow[:-1])
        cols = reps.col_indices().long()
    else:
        raise DataError(f"reps must be dense, sparse COO or sparse CSR, got layout {reps.layout}")
    keep = reps.values() != 0
    return torch.bincount(rows[keep], minlength=n_rows), torch.bincount(cols[keep], minlength=width)


class SparsityStats(Metric):
    """Active dimensions per vector and per-dimension activation frequency of a stream of reps.

    ``update`` accepts (N, V) dense, sparse COO or sparse CSR batches. ``compute`` returns a dict:

    - ``active_dims``: mean number of active dims per vector (float).
    - ``active_dims_min`` / ``active_dims_max``: fewest / most active dims of a vector (float).
    - ``zero_fraction``: share of vectors with no active dim (float).
    - ``dim_frequency``: (V,) float64 tensor, p(v) = share of vectors in which dim v is active; pass the query and
      document frequencies to :func:`flops`.

    Args:
        vocab_size: width V of the reps.
        sync_on_compute: sum the statistics over all processes in ``compute`` (torchmetrics' default, for a stream
            split across DDP processes); False for reps that are already complete on this process (an evaluation
            of gathered reps), which also never calls a collective (NCCL cannot gather the CPU states).

    Raises:
        ConfigError: if ``vocab_size`` is not a positive integer.
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False

    def __init__(self, vocab_size: int, sync_on_compute: bool = True):
        super().__init__(sync_on_compute=sync_on_compute)
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, numbers.Integral) or vocab_size < 1:
            raise ConfigError(f"vocab_size must be a positive integer (the width V of the reps), got {vocab_size!r}")
        self.vocab_size = int(vocab_size)
        self.add_state("count", torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("active_sum", torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("active_min", torch.tensor(_INT64_MAX, dtype=torch.int64), dist_reduce_fx="min")
        self.add_state("active_max", torch.tensor(0, dtype=torch.int64), dist_reduce_fx="max")
        self.add_state("zero_count", torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")
        self.add_state("dim_count", torch.zeros(self.vocab_size, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, reps: torch.Tensor) -> None:
        """Add a batch of reps.

        Args:
            reps: (N, V) dense, sparse COO or sparse CSR weights; N may be 0.

        Raises:
            DataError: if ``reps`` is not a 2-D tensor of width ``vocab_size``.
        """
        if not isinstance(reps, torch.Tensor) or reps.dim() != 2 or reps.shape[1] != self.vocab_size:
            shape = tuple(reps.shape) if isinstance(reps, torch.Tensor) else type(reps).__name__
            raise DataError(f"reps must be a (N, {self.vocab_size}) tensor, got {shape}")
        if reps.shape[0] == 0:
            return
        per_row, per_dim = _active_counts(reps.detach())
        per_row, per_dim = per_row.to(self.count.device), per_dim.to(self.count.device)
        self.count += per_row.numel()
        self.active_sum += per_row.sum()
        self.active_min = torch.minimum(self.active_min, per_row.min())
        self.active_max = torch.maximum(self.active_max, per_row.max())
        self.zero_count += (per_row == 0).sum()
        self.dim_count += per_dim

    def compute(self) -> dict[str, float | torch.Tensor]:
        """Statistics over every vector seen (on all processes under DDP).

        Returns:
            ``{"active_dims", "active_dims_min", "active_dims_max", "zero_fraction": float,
            "dim_frequency": (V,) float64 tensor}``.

        Raises:
            DataError: if no vector was seen.
        """
        count = int(self.count)
        if count == 0:
            raise DataError("SparsityStats.compute() called before any vector was passed to update()")
        return {
            "active_dims": float(self.active_sum) / count,
            "active_dims_min": float(self.active_min),
            "active_dims_max": float(self.active_max),
            "zero_fraction": float(self.zero_count) / count,
            "dim_frequency": self.dim_count.double() / count,
        }


def flops(p_query: torch.Tensor, p_doc: torch.Tensor) -> float:
    """Expected multiply-adds per query-document pair of an inverted index: ``sum_v p_query(v) * p_doc(v)``.

    The FLOPS estimator of Paria et al. (2020), "Minimizing FLOPs to Learn Efficient Sparse Representations", as
    reported by SPLADE (NAVER), sentence-transformers (``avg_flops``) and OpenSearch.

    Args:
        p_query: (V,) share of queries with dim v active (``SparsityStats.compute()["dim_frequency"]``).
        p_doc: (V,) share of documents with dim v active.

    Returns:
        The expected number of shared active dims of a random query and a random document.

    Raises:
        DataError: if the inputs are not 1-D tensors of the same length.
    """
    for name, p in (("p_query", p_query), ("p_doc", p_doc)):
        if not isinstance(p, torch.Tensor) or p.dim() != 1:
            raise DataError(f"{name} must be a 1-D (V,) tensor of activation frequencies, got {p!r}")
    if p_query.shape != p_doc.shape:
        raise DataError(f"p_query has V={p_query.numel()} but p_doc has V={p_doc.numel()}; "
                        "expected the same vocabulary")
    return float((p_query.double() * p_doc.double().to(p_query.device)).sum())
