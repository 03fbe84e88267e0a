"""Retrieval evaluation: IR metrics (trec_eval semantics), sparsity statistics, end-to-end evaluation.

Pure torch/numpy: never imports lightning.
"""

from __future__ import annotations

from splade_lightning.eval.metrics import (
    SUPPORTED_MEASURES,
    MeasureSpec,
    parse_measure,
    per_query_metrics,
    retrieval_metrics,
)
from splade_lightning.eval.retrieval import RetrievalResult, evaluate_retrieval
from splade_lightning.eval.sparsity import SparsityStats, flops

__all__ = [
    "SUPPORTED_MEASURES",
    "MeasureSpec",
    "RetrievalResult",
    "SparsityStats",
    "evaluate_retrieval",
    "flops",
    "parse_measure",
    "per_query_metrics",
    "retrieval_metrics",
]
