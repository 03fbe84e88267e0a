"""``TextStore``: id -> text for a BEIR ``corpus.jsonl`` / ``queries.jsonl``, memory-mapped from an Arrow cache.

The first use parses the JSONL file once into an Arrow file (read back memory-mapped with HF
``datasets.Dataset.from_file``) and a sorted array of 64-bit id hashes with the row of each
(``np.load(mmap_mode="r")``). No Python object per id or text is kept, so an 8.8M-passage corpus costs page cache,
not Python heap; later uses load the cache in milliseconds. Lookups hash the ids (vectorised, :func:`hash_ids`),
``np.searchsorted`` the sorted hashes and compare the stored id string, so a hash collision can never return the
wrong text.

Cache layout: a directory ``<file name>.<kind>-<path digest>-<state digest>`` in ``cache_dir`` (default: a
``.splade_lightning_cache/`` directory next to the source file, or ``$XDG_CACHE_HOME/splade_lightning`` when that is
not writable). The state digest covers the absolute path, size and mtime of the source and the cache format, so an
edited source gets a new cache and the old one is deleted. A cache is built in a temporary directory and renamed
into place: an interrupted build never leaves a half cache, and concurrent builders (DDP ranks) cannot clash.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from splade_lightning.data.ids.cache import CACHE_FORMAT, cache_name, cache_root, remove_stale
from splade_lightning.data.ids.strings import StringColumn, as_string_array, hash_ids, search_sorted
from splade_lightning.errors import DataError
from splade_lightning.formats.atomic import atomic_dir
from splade_lightning.formats.beir import beir_text, parse_beir_record
from splade_lightning.formats.records import iter_jsonl, missing_path_error
from splade_lightning.problems import ErrorList

if TYPE_CHECKING:
    import pyarrow as pa

BATCH_ROWS = 65_536


# -- building --------------------------------------------------------------------------------------------------------
def _parse_line(obj: object, path: Path, line: int, require_text: bool, errors: list[DataError]):
    """``(id, text)`` of one BEIR record, text = ``title + " " + text`` when the title is non-empty (exactly as
    :func:`splade_lightning.formats.beir.load_beir` does: :func:`~splade_lightning.formats.beir.parse_beir_record`), or
    ``None`` after appending to ``errors``."""
    parsed = parse_beir_record(obj, path, line, errors)
    if parsed is None:
        return None
    key, text, title = parsed
    if require_text and not text.strip():
        errors.append(DataError(f"empty query text for id {key!r}; expected non-empty text", path, line, "text"))
        return None
    return key, beir_text(text, title)


def _write_arrow(source: Path, target: Path, require_text: bool, errors: ErrorList) -> tuple[np.ndarray, np.ndarray]:
    """Stream the records into an Arrow file (``_id``, ``text``); return the per-row hashes and line numbers."""
    import pyarrow as pa

    schema = pa.schema([("_id", pa.large_string()), ("text", pa.large_string())])
    hashes, lines = [], []
    ids: list[str] = []
    texts: list[str] = []
    numbers: list[int] = []

    def flush(writer) -> None:
        batch = pa.record_batch([pa.array(ids, pa.large_string()), pa.array(texts, pa.large_string())], schema=schema)
        writer.write_batch(batch)
        hashes.append(hash_ids(batch.column(0)))
        lines.append(np.asarray(numbers, dtype=np.int64))
        ids.clear()
        texts.clear()
        numbers.clear()

    with pa.OSFile(str(target), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for line, obj in iter_jsonl(source, errors):
            parsed = _parse_line(obj, source, line, require_text, errors)
            if parsed is None or errors or errors.dropped:
                continue  # keep validating, stop writing
            ids.append(parsed[0])
            texts.append(parsed[1])
            numbers.append(line)
            if len(ids) >= BATCH_ROWS:
                flush(writer)
        if ids:
            flush(writer)
    empty = np.zeros(0, np.int64)
    return (np.concatenate(hashes) if hashes else empty.astype(np.uint64)), (np.concatenate(lines) if lines else empty)


def _duplicate_errors(source: Path, arrow: Path, hashes: np.ndarray, order: np.ndarray, lines: np.ndarray,
                      errors: ErrorList) -> None:
    """A :class:`DataError` naming both lines for every id that occurs twice (equal hashes, then equal strings)."""
    import pyarrow as pa

    sorted_hashes = hashes[order]
    same = np.flatnonzero(sorted_hashes[1:] == sorted_hashes[:-1])
    if same.size == 0:
        return
    rows = np.unique(np.concatenate([order[same], order[same + 1]]))
    table = pa.ipc.open_stream(pa.memory_map(str(arrow))).read_all()
    first: dict[str, int] = {}
    for row, key in zip(rows.tolist(), table.column("_id").take(pa.array(rows)).to_pylist()):
        if key in first:
            errors.append(DataError(f"duplicate id {key!r} (first seen on line {lines[first[key]]})", source,
                                    int(lines[row]), "_id"))
        else:
            first[key] = row


def build_text_cache(source: Path, target: Path, require_text: bool) -> None:
    """Parse ``source`` and write its cache directory ``target`` atomically (nothing is left behind on failure).

    Raises:
        DataErrors: every problem in the file (malformed lines, missing or non-string fields, empty ids, empty query
            texts when ``require_text``, duplicate ids naming both lines, no records).
    """
    errors = ErrorList()
    with atomic_dir(target) as tmp:
        hashes, lines = _write_arrow(source, tmp / "data.arrow", require_text, errors)
        if not errors and not errors.dropped and hashes.size == 0:
            errors.append(DataError("no records found; expected at least one", path=source))
        order = np.argsort(hashes, kind="stable")
        if not errors:
            _duplicate_errors(source, tmp / "data.arrow", hashes, order, lines, errors)
        errors.raise_if_any()
        np.save(tmp / "hashes.npy", hashes[order])
        np.save(tmp / "rows.npy", order.astype(np.int32 if len(order) < 2**31 else np.int64))
        meta = {"format": CACHE_FORMAT, "source": str(source.resolve()), "rows": int(hashes.size)}
        (tmp / "meta.json").write_text(json.dumps(meta))


# -- reading ---------------------------------------------------------------------------------------------------------
class TextStore:
    """Id -> text for a BEIR ``corpus.jsonl`` or ``queries.jsonl`` (``_id``, optional ``title``, ``text``), held in a
    memory-mapped Arrow cache (see the module docstring for where and when it is built).

    Text is ``title + " " + text`` when the title is non-empty, else ``text`` (as
    :mod:`splade_lightning.formats.beir` reads it). Integer ids are read as their decimal string. Pickling (DataLoader
    workers under ``spawn``) sends only paths: the cache is re-opened, memory-mapped, on first use.

    Args:
        path: the JSONL file.
        cache_dir: where the cache goes (``None``: ``.splade_lightning_cache/`` beside ``path``, or the user cache
            directory when that is not writable).
        require_text: every text must be non-empty (use for queries).

    Raises:
        DataError: ``path`` does not exist, or no cache directory is writable.
        DataErrors: every problem in the file, each naming ``file:line`` and the field; duplicate ids name both lines.
    """

    def __init__(self, path: str | Path, cache_dir: str | Path | None = None, require_text: bool = False):
        source = Path(path)
        if not source.is_file():
            raise missing_path_error(source)
        self.path = str(path)
        root = cache_root(source, cache_dir)
        prefix, name = cache_name(source, "queries" if require_text else "texts")
        target = root / name
        if not (target / "meta.json").is_file():
            build_text_cache(source, target, require_text)
            remove_stale(root, prefix, keep=name)
        self.cache_path = str(target)
        self.key = name  # changes whenever the rows may change: record caches depend on it
        self._len = int(json.loads((target / "meta.json").read_text())["rows"])
        self._opened: tuple | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_opened": None}

    def _open(self) -> tuple:
        if self._opened is None:
            import datasets

            dataset = datasets.Dataset.from_file(str(Path(self.cache_path) / "data.arrow"))
            table = dataset.data.table
            hashes = np.load(Path(self.cache_path) / "hashes.npy", mmap_mode="r")
            rows = np.load(Path(self.cache_path) / "rows.npy", mmap_mode="r")
            self._opened = (dataset, table.column("_id"), StringColumn(table.column("text")), hashes, rows)
        return self._opened

    @property
    def dataset(self):
        """The cache as a memory-mapped HF ``datasets.Dataset`` with columns ``_id`` and ``text``."""
        return self._open()[0]

    def __len__(self) -> int:
        return self._len

    def __repr__(self) -> str:
        return f"TextStore({self.path!r}, {self._len} texts, cache={self.cache_path!r})"

    def rows(self, ids: Sequence[str] | pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Row of each id, vectorised; ``-1`` for ids that are not in the store.

        Returns:
            (N,) int64.
        """
        import pyarrow.compute as pc

        arr = as_string_array(ids)
        _, id_column, _, sorted_hashes, order = self._open()
        wanted = hash_ids(arr)
        result = np.full(len(arr), -1, dtype=np.int64)
        if len(arr) == 0:
            return result
        pos = search_sorted(sorted_hashes, wanted)
        n = len(sorted_hashes)
        pending = np.flatnonzero(pos < n)
        pending = pending[sorted_hashes[pos[pending]] == wanted[pending]]
        while pending.size:  # verify the id string; on a collision, try the next row with the same hash
            candidates = np.asarray(order[pos[pending]], dtype=np.int64)
            same = pc.equal(id_column.take(candidates), arr.take(pending)).to_numpy(zero_copy_only=False)
            result[pending[same]] = candidates[same]
            rest = pending[~same]
            pos[rest] += 1
            rest = rest[pos[rest] < n]
            pending = rest[sorted_hashes[pos[rest]] == wanted[rest]]
        return result

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and bool(self.rows([key])[0] >= 0)

    def __getitem__(self, key: str) -> str:
        row = self.rows([key])[0] if isinstance(key, str) else -1
        if row < 0:
            raise KeyError(f"id {key!r} is not in {self.path}")
        return self.texts_at([row])[0]

    def texts(self, ids: Sequence[str]) -> list[str]:
        """Texts of ``ids``, in order.

        Raises:
            KeyError: some ids are not in the store (the first few are named, with the file).
        """
        rows = self.rows(ids)
        missing = np.flatnonzero(rows < 0)
        if missing.size:
            names = [ids[i] for i in missing[:5].tolist()]
            more = f" and {missing.size - 5} more" if missing.size > 5 else ""
            raise KeyError(f"id(s) {names}{more} not in {self.path}")
        return self.texts_at(rows)

    def texts_at(self, rows: Sequence[int] | np.ndarray) -> list[str]:
        """Texts at row numbers ``rows`` (as returned by :meth:`rows`)."""
        return self._open()[2].get(rows)

    def ids_at(self, rows: Sequence[int] | np.ndarray) -> list[str]:
        """Ids at row numbers ``rows``."""
        import pyarrow as pa

        return self._open()[1].take(pa.array(np.asarray(rows, dtype=np.int64))).to_pylist()
