"""Retrieval over sparse representations: exact top-k search, approximate search with Seismic, index compression
(quantisation and pruning), end-to-end evaluation (encode, retrieve, score), and the operations on encoded vectors
behind :class:`~splade_lightning.api.SparseModel`'s helpers (similarity, max_active_dims, intersection). Pure
torch/numpy: never imports Lightning.

The public names are imported on first use, so that importing one module (``sparse_ops``, on every
:func:`splade_lightning.load`) does not pull in the evaluation's metrics stack (torchmetrics, matplotlib).
"""

from __future__ import annotations

import importlib

#: public name -> the module of this package that defines it
_HOMES = {
    "RetrievalResult": "evaluation", "evaluate_retrieval": "evaluation",
    "exact_search": "exact", "stack_sparse": "exact",
    "IndexSize": "quantize", "Quantized": "quantize", "index_size": "quantize", "integer_impacts": "quantize",
    "to_float16": "quantize", "top_k_per_doc": "quantize", "uniform_bits": "quantize",
    "intersection": "sparse_ops", "select_max_active_dims": "sparse_ops", "similarity_scores": "sparse_ops",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name in _HOMES:
        return getattr(importlib.import_module(f"splade_lightning.retrieval.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'splade_lightning.retrieval' has no attribute {name!r}")
