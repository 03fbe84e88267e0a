"""On-disk sparse index: CSR shards of ``.npy`` arrays plus ``index.json``; pure numpy, memory-mappable.

Layout of an index directory::

    index.json                       format version, model, vocab size, document count, settings, shard list
    shard_00000.indptr.npy           (rows + 1,) int64 row offsets
    shard_00000.indices.npy          (nnz,) int32 dimension ids, ascending within a row
    shard_00000.values.npy           (nnz,) float32 (or float16) weights
    shard_00000.ids.json             the rows' document ids
    shard_00000.meta.json            rows, nnz and the SHA-256 of the four files above; written last

Every file is written atomically (temporary file + ``os.replace``) and the meta file last, so a shard whose meta file
exists and whose checksums match is complete; anything else is recomputed on resume.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from splade_lightning.errors import DataError
from splade_lightning.formats.atomic import atomic_path, write_text_atomic
from splade_lightning.formats.fingerprints import file_digest

__all__ = ["FORMAT_VERSION", "INDEX_FILE", "SHARD_PARTS", "StoredIndex", "load_index", "read_index_json", "shard_files",
           "shard_name", "shard_ranges", "shard_is_complete", "write_index_json", "write_shard"]

FORMAT_VERSION = 2  # 2: the fingerprint of model, corpus and settings is in the directory's manifest
INDEX_FILE = "index.json"
VALUE_DTYPES = {"float32": np.float32, "float16": np.float16}
_ARRAYS = (("indptr", np.int64), ("indices", np.int32), ("values", None))
#: the files of one shard, after ``shard_00000.``
SHARD_PARTS = ("indptr.npy", "indices.npy", "values.npy", "ids.json", "meta.json")


def shard_name(shard: int) -> str:
    """``shard_00007`` for shard 7."""
    return f"shard_{shard:05d}"


def shard_files(root: Path, shard: int) -> dict[str, Path]:
    """Paths of one shard's files, keyed ``indptr``, ``indices``, ``values``, ``ids``, ``meta``."""
    stem = root / shard_name(shard)
    files = {name: Path(f"{stem}.{name}.npy") for name, _ in _ARRAYS}
    files.update(ids=Path(f"{stem}.ids.json"), meta=Path(f"{stem}.meta.json"))
    return files


def shard_ranges(n_docs: int, shard_size: int) -> list[tuple[int, int]]:
    """``[(start, end), ...]`` document positions of each shard: shard ``s`` holds ``s * shard_size`` onwards."""
    return [(start, min(start + shard_size, n_docs)) for start in range(0, n_docs, shard_size)]


def write_shard(root: str | Path, shard: int, ids: Sequence[str], indptr: np.ndarray, indices: np.ndarray,
                values: np.ndarray, value_dtype: str = "float32") -> Path:
    """Write one CSR shard atomically, the meta file (row count, nnz, checksums) last.

    Args:
        root: the index directory.
        shard: shard number.
        ids: the R document ids, in row order.
        indptr: (R + 1,) row offsets starting at 0.
        indices: (nnz,) dimension ids, ascending within each row.
        values: (nnz,) weights.
        value_dtype: ``"float32"`` or ``"float16"``.

    Returns:
        The meta file's path.
    """
    root, files = Path(root), shard_files(Path(root), shard)
    arrays = {"indptr": np.asarray(indptr, dtype=np.int64), "indices": np.asarray(indices, dtype=np.int32),
              "values": np.asarray(values, dtype=VALUE_DTYPES[value_dtype])}
    if arrays["indptr"].shape != (len(ids) + 1,) or int(arrays["indptr"][-1]) != arrays["indices"].size:
        raise DataError(f"shard {shard}: indptr of shape {arrays['indptr'].shape} does not describe {len(ids)} rows "
                        f"and {arrays['indices'].size} nonzeros")
    for name, array in arrays.items():
        with atomic_path(files[name]) as tmp, open(tmp, "wb") as handle:
            np.save(handle, array)
    write_text_atomic(files["ids"], json.dumps(list(ids)))
    meta = {"format_version": FORMAT_VERSION, "rows": len(ids), "nnz": int(arrays["indices"].size),
            "value_dtype": value_dtype, "sha256": {name: file_digest(files[name]) for name in ("indptr", "indices",
                                                                                          "values", "ids")}}
    return write_text_atomic(files["meta"], json.dumps(meta, indent=1))


def shard_is_complete(root: str | Path, shard: int, rows: int, value_dtype: str) -> bool:
    """Whether a shard's meta file exists, names ``rows`` rows and ``value_dtype``, and every checksum matches."""
    files = shard_files(Path(root), shard)
    try:
        meta = json.loads(files["meta"].read_text(encoding="utf-8"))
        if meta.get("rows") != rows or meta.get("value_dtype") != value_dtype:
            return False
        return all(file_digest(files[name]) == meta["sha256"][name] for name in ("indptr", "indices", "values", "ids"))
    except (OSError, ValueError, KeyError, TypeError):
        return False


def write_index_json(root: str | Path, manifest: dict) -> Path:
    """Write ``index.json`` atomically."""
    return write_text_atomic(Path(root) / INDEX_FILE, json.dumps(manifest, indent=1, sort_keys=True))


def read_index_json(root: str | Path) -> dict | None:
    """The manifest of an index directory, or None when it has none.

    Raises:
        DataError: ``index.json`` exists but is not a JSON object of a known format version.
    """
    path = Path(root) / INDEX_FILE
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise DataError(f"not valid JSON ({e})", path=path) from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise DataError(f"expected an index manifest with format_version {FORMAT_VERSION}", path=path)
    return manifest


@dataclass
class StoredIndex:
    """A loaded index: all shards concatenated into one CSR matrix.

    Attributes:
        ids: the N document ids, in row order.
        indptr: (N + 1,) int64 row offsets.
        indices: (nnz,) int32 dimension ids.
        values: (nnz,) float32 or float16 weights.
        vocab_size: V, the number of columns.
        manifest: the parsed ``index.json``.
    """

    ids: list[str]
    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    vocab_size: int
    manifest: dict

    def to_torch(self):
        """The (N, V) float32 ``torch`` sparse CSR matrix (int64 indices), sharing memory with the arrays where the
        dtypes allow."""
        import torch

        with warnings.catch_warnings():  # read-only memory maps: the tensor is only read
            warnings.simplefilter("ignore", UserWarning)
            return self._to_torch(torch)

    def _to_torch(self, torch):
        values = torch.from_numpy(np.ascontiguousarray(self.values, dtype=np.float32))
        return torch.sparse_csr_tensor(torch.from_numpy(np.asarray(self.indptr, dtype=np.int64)),
                                       torch.from_numpy(np.asarray(self.indices, dtype=np.int64)), values,
                                       (len(self.ids), self.vocab_size), check_invariants=False)


def _load_shard(root: Path, shard: dict, value_dtype: str) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    index = int(shard["shard"])
    if not shard_is_complete(root, index, int(shard["rows"]), value_dtype):
        raise DataError(f"shard {shard_name(index)} is missing or corrupt; re-run `index` with the same arguments to "
                        "recompute it", path=root)
    files = shard_files(root, index)
    arrays = [np.load(files[name], mmap_mode="r") for name, _ in _ARRAYS]
    return json.loads(files["ids"].read_text(encoding="utf-8")), *arrays


def load_index(root: str | Path) -> StoredIndex:
    """Load a complete index directory: every shard memory-mapped, then concatenated in shard order (one shard is
    returned as its memory maps, without a copy).

    Raises:
        DataError: no ``index.json``, an unfinished index, or a missing/corrupt shard.
    """
    root = Path(root)
    manifest = read_index_json(root)
    if manifest is None:
        raise DataError(f"no {INDEX_FILE}; expected a directory written by `python -m splade_lightning index`",
                        path=root)
    if not manifest.get("complete"):
        raise DataError("the index is unfinished (an interrupted run); re-run `index` with the same arguments",
                        path=root)
    value_dtype = manifest["settings"]["value_dtype"]
    parts = [_load_shard(root, shard, value_dtype) for shard in manifest["shards"]]
    if len(parts) == 1:
        ids, indptr, indices, values = parts[0]
    else:
        offsets = np.cumsum([0] + [int(p[1][-1]) for p in parts])
        ids = [i for p in parts for i in p[0]]
        indptr = np.concatenate([np.zeros(1, np.int64)] + [p[1][1:] + off for p, off in zip(parts, offsets)])
        indices = np.concatenate([p[2] for p in parts]) if parts else np.zeros(0, np.int32)
        values = np.concatenate([p[3] for p in parts]) if parts else np.zeros(0, np.float32)
    return StoredIndex(ids, indptr, indices, values, int(manifest["vocab_size"]), manifest)
