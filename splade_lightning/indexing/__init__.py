"""Corpus indexing and search tools: ``index`` (Lightning predict loop -> sharded CSR store) and ``search`` (exact or
Seismic retrieval over it). Unlike the pure :mod:`splade_lightning.index` layer, this package may use Lightning."""

from __future__ import annotations

from .store import StoredIndex, load_index, write_shard

__all__ = ["StoredIndex", "load_index", "write_shard"]
