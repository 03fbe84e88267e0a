"""Exact sparse retrieval and TREC runs (pure torch; never imports lightning)."""

from __future__ import annotations

from splade_lightning.index.exact import exact_search, stack_sparse
from splade_lightning.index.trec_run import to_run, trec_order, write_trec_run

__all__ = ["exact_search", "stack_sparse", "to_run", "trec_order", "write_trec_run"]
