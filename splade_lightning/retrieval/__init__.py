"""Retrieval over sparse representations: exact top-k search, approximate search with Seismic, and end-to-end
evaluation (encode, retrieve, score). Pure torch/numpy: never imports Lightning."""

from __future__ import annotations

from splade_lightning.retrieval.evaluation import RetrievalResult, evaluate_retrieval
from splade_lightning.retrieval.exact import exact_search, stack_sparse

__all__ = ["RetrievalResult", "evaluate_retrieval", "exact_search", "stack_sparse"]
