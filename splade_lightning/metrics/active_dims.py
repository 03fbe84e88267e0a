"""The distribution (not only the mean) of active dimensions per text: percentiles and histogram values.

A mean of 100 active dims can hide a bimodal corpus (half the documents collapsed to a few terms, half with 200), the
failure mode a FLOPS regulariser drives towards; percentiles show it. Pure torch: never imports lightning.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.metrics.sparsity import _active_counts

__all__ = ["ActiveDimsDistribution", "active_dims_per_text", "check_percentiles", "check_reps", "percentiles"]


def active_dims_per_text(reps: torch.Tensor) -> torch.Tensor:
    """Number of active (nonzero) dims of every row.

    Args:
        reps: (N, V) dense, sparse COO or sparse CSR weights.

    Returns:
        (N,) int64 counts, on the device of ``reps``.
    """
    check_reps(reps)
    return _active_counts(reps.detach())[0]


def check_reps(reps: torch.Tensor) -> None:
    """Raise a :class:`DataError` unless ``reps`` is a 2-D (N, V) tensor (dense, COO or CSR)."""
    if not isinstance(reps, torch.Tensor) or reps.dim() != 2:
        shape = tuple(reps.shape) if isinstance(reps, torch.Tensor) else type(reps).__name__
        raise DataError(f"reps must be a 2-D (N, V) tensor, got {shape}")


def check_percentiles(qs: Sequence[int], name: str = "percentiles") -> list[int]:
    """``qs`` as a list of ints, or a :class:`ConfigError` naming ``name`` unless every entry is an integer in
    [0, 100] and none repeats."""
    if isinstance(qs, (str, bytes)) or not isinstance(qs, Sequence):
        raise ConfigError(f"{name}={qs!r}: expected a list of integers in [0, 100], e.g. [10, 50, 90]")
    bad = [q for q in qs if isinstance(q, bool) or not isinstance(q, int) or not 0 <= q <= 100]
    if bad or len(set(qs)) != len(qs):
        raise ConfigError(f"{name}={list(qs)!r}: expected distinct integers in [0, 100], e.g. [10, 50, 90]")
    return list(qs)


def percentiles(values: torch.Tensor, qs: Sequence[int]) -> dict[int, float]:
    """Percentiles of a 1-D tensor, interpolating linearly between order statistics (numpy's default method).

    Args:
        values: (N,) numbers, N >= 1 (e.g. :func:`active_dims_per_text` of every text).
        qs: percentiles in [0, 100], e.g. ``(10, 50, 90)``.

    Returns:
        ``{q: value}``.
    """
    if not isinstance(values, torch.Tensor) or values.dim() != 1 or values.numel() == 0:
        raise DataError(f"percentiles: expected a non-empty 1-D tensor, got {values!r}")
    qs = check_percentiles(qs, "qs")
    if not qs:
        return {}
    points = torch.quantile(values.double().cpu(), torch.tensor([q / 100 for q in qs], dtype=torch.float64))
    return {q: float(p) for q, p in zip(qs, points)}


class ActiveDimsDistribution(Metric):
    """Active dims of every text of a stream of reps, kept so that percentiles and histograms can be computed.

    Holds one int64 per text (a "cat" state: gathered from every process under DDP), so 10k evaluation texts cost
    80 kB. ``compute`` returns the (N,) counts.
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False

    def __init__(self) -> None:
        super().__init__()
        self.add_state("counts", default=[], dist_reduce_fx="cat")

    def update(self, reps: torch.Tensor) -> None:
        """Add a batch: ``reps`` is (N, V) dense, sparse COO or sparse CSR."""
        self.counts.append(active_dims_per_text(reps))

    def compute(self) -> torch.Tensor:
        """(N,) int64 active dims of every text seen.

        Raises:
            DataError: if no text was seen.
        """
        if isinstance(self.counts, list) and not self.counts:
            raise DataError("ActiveDimsDistribution.compute() called before any vector was passed to update()")
        return dim_zero_cat(self.counts)
