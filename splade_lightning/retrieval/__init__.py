"""Retrieval over sparse representations: exact top-k search, approximate search with Seismic, index compression
(quantisation and pruning), and end-to-end evaluation (encode, retrieve, score). Pure torch/numpy: never imports
Lightning."""

from __future__ import annotations

from splade_lightning.retrieval.evaluation import RetrievalResult, evaluate_retrieval
from splade_lightning.retrieval.exact import exact_search, stack_sparse
from splade_lightning.retrieval.quantize import (
    IndexSize,
    Quantized,
    index_size,
    integer_impacts,
    to_float16,
    top_k_per_doc,
    uniform_bits,
)

__all__ = ["IndexSize", "Quantized", "RetrievalResult", "evaluate_retrieval", "exact_search", "index_size",
           "integer_impacts", "stack_sparse", "to_float16", "top_k_per_doc", "uniform_bits"]
