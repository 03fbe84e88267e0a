"""Metrics of retrieval runs and sparse representations: IR measures with trec_eval semantics, paired significance
tests and statistics over seeds, sparsity statistics (FLOPS, active dimensions) and per-term statistics. Pure
torch/numpy: never imports Lightning."""

from __future__ import annotations

from splade_lightning.metrics.ir import (
    SUPPORTED_MEASURES,
    MeasureSpec,
    parse_measure,
    per_query_metrics,
    retrieval_metrics,
)
from splade_lightning.metrics.seed_stats import SeedSummary, holm, summarise
from splade_lightning.metrics.significance import SignificanceRow, compare_per_query
from splade_lightning.metrics.sparsity import SparsityStats, flops

__all__ = [
    "SUPPORTED_MEASURES",
    "MeasureSpec",
    "SeedSummary",
    "SignificanceRow",
    "SparsityStats",
    "compare_per_query",
    "flops",
    "holm",
    "parse_measure",
    "per_query_metrics",
    "retrieval_metrics",
    "summarise",
]
