"""Approximate retrieval with Seismic (``pip install pyseismic-lsr``) over a stored index.

Seismic (Bruch et al., "Efficient Inverted Indexes for Approximate Retrieval over Learned Sparse Representations",
SIGIR 2024) is built from the stored CSR vectors with integer components (dimension ``j`` is the component ``"j"``),
then saved next to the index in ``seismic/`` and reused while the index and the build parameters are unchanged.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from splade_lightning.errors import ConfigError
from splade_lightning.formats.atomic import write_text_atomic
from splade_lightning.formats.index_store import INDEX_FILE, StoredIndex

__all__ = ["SeismicParams", "import_seismic", "load_or_build", "seismic_search"]

CACHE_DIR = "seismic"


@dataclass(frozen=True)
class SeismicParams:
    """Seismic build and search parameters (see the Seismic docs for tuning).

    Attributes:
        n_postings: average postings kept per dimension.
        centroid_fraction: share of a posting list used as cluster centroids.
        summary_energy: share of the L1 mass kept by block summaries.
        query_cut: the query's heaviest dimensions searched.
        heap_factor: block-skipping threshold (lower: faster, less exact).
    """

    n_postings: int = 3500
    centroid_fraction: float = 0.1
    summary_energy: float = 0.4
    query_cut: int = 20
    heap_factor: float = 0.8

    def build_key(self) -> dict:
        """The parameters the built index depends on."""
        return {k: v for k, v in asdict(self).items() if k not in ("query_cut", "heap_factor")}


def import_seismic():
    """The ``seismic`` module.

    Raises:
        ConfigError: pyseismic-lsr is not installed or does not import on this machine.
    """
    try:
        import seismic
    except ImportError as e:
        raise ConfigError(f"--method seismic needs the package pyseismic-lsr (pip install pyseismic-lsr); importing "
                          f"it failed: {e}") from None
    return seismic


def _build(seismic, index: StoredIndex, params: SeismicParams):
    dataset = seismic.SeismicDataset()
    dataset.add_documents_by_id(list(index.ids), np.asarray(index.indices, dtype=np.int64),
                                np.asarray(index.values, dtype=np.float32), np.asarray(index.indptr, dtype=np.int64))
    return seismic.SeismicIndex.build_from_dataset(dataset, n_postings=params.n_postings,
                                                   centroid_fraction=params.centroid_fraction,
                                                   summary_energy=params.summary_energy)


@contextlib.contextmanager
def _native_output(shown: bool):
    """Let Seismic's Rust code print its build log to the process's stdout only when ``shown`` (it writes to file
    descriptor 1 directly, past ``sys.stdout``)."""
    if shown:
        yield
        return
    sys.stdout.flush()
    saved, devnull = os.dup(1), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(devnull)


def load_or_build(root: str | Path, index: StoredIndex, params: SeismicParams, progress: bool = True):
    """The Seismic index of a stored index: loaded from ``<root>/seismic/`` when its key matches, else built and
    saved there.

    The key is the build parameters plus the stored ``index.json`` (so a rewritten index is rebuilt).
    """
    seismic = import_seismic()
    cache = Path(root) / CACHE_DIR
    key = {"params": params.build_key(), "index": (Path(root) / INDEX_FILE).read_text(encoding="utf-8")}
    key_file, stem = cache / "key.json", cache / "index"
    binary = Path(f"{stem}.index.seismic")
    if key_file.is_file() and binary.is_file() and json.loads(key_file.read_text(encoding="utf-8")) == key:
        return seismic.SeismicIndex.load(str(binary))
    print(f"building the seismic index of {len(index.ids)} documents (cached in {cache})", flush=True)
    with _native_output(shown=progress):
        built = _build(seismic, index, params)
        cache.mkdir(parents=True, exist_ok=True)
        key_file.unlink(missing_ok=True)  # the key is written after the binary: a crash leaves no stale key
        built.save(str(stem))
    write_text_atomic(key_file, json.dumps(key))
    return built


def seismic_search(engine, query_ids: list[str], query_reps, k: int,
                   params: SeismicParams) -> dict[str, dict[str, float]]:
    """Search every query with Seismic.

    Args:
        engine: a ``seismic.SeismicIndex`` from :func:`load_or_build`.
        query_ids: the Q query ids.
        query_reps: (Q, V) torch sparse COO query reps.
        k: documents per query.
        params: search parameters.

    Returns:
        ``{query_id: {doc_id: score}}``.
    """
    seismic = import_seismic()
    string_type = seismic.get_seismic_string()
    import torch

    with torch.inference_mode():  # query reps from ``encode_query`` are inference tensors
        csr = query_reps.coalesce().to_sparse_csr()
        crow, col, val = csr.crow_indices().numpy(), csr.col_indices().numpy(), csr.values().float().numpy()
    components = [np.array([str(c) for c in col[crow[i]:crow[i + 1]]], dtype=string_type) for i in range(len(crow) - 1)]
    values = [np.ascontiguousarray(val[crow[i]:crow[i + 1]], dtype=np.float32) for i in range(len(crow) - 1)]
    run: dict[str, dict[str, float]] = {qid: {} for qid in query_ids}
    results = engine.batch_search(np.array(query_ids, dtype=string_type), components, values, k=k,
                                  query_cut=params.query_cut, heap_factor=params.heap_factor)
    for hits in results:
        for query_id, score, doc_id in hits:
            run[query_id][doc_id] = float(score)
    return run
