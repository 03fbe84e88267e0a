"""Vectorised work on Arrow string columns: 64-bit id hashes, sorted-hash lookups and positional string reads.

Everything runs on the Arrow buffers with numpy (no Python object per string), so it scales to corpora of millions
of ids. Used by :class:`~splade_lightning.data.ids.text_store.TextStore`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def as_string_array(ids: Sequence[str] | pa.Array | pa.ChunkedArray) -> pa.Array:
    """``ids`` as one pyarrow ``large_string`` array (a list of str is converted once, in C)."""
    import pyarrow as pa

    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks() if ids.num_chunks != 1 else ids.chunk(0)
    if not isinstance(ids, pa.Array):
        ids = pa.array(ids, type=pa.large_string())
    return ids if ids.type == pa.large_string() else ids.cast(pa.large_string())


def hash_ids(ids: Sequence[str] | pa.Array | pa.ChunkedArray) -> np.ndarray:
    """64-bit FNV-1a hashes of the UTF-8 bytes of each id, computed on the Arrow buffers (one numpy pass per byte
    position, no Python object per id).

    Returns:
        (N,) uint64.
    """
    arr = as_string_array(ids)
    n = len(arr)
    hashes = np.full(n, _FNV_OFFSET, dtype=np.uint64)
    if n == 0:
        return hashes
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + n + 1]
    data_buffer = arr.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    starts, lengths = offsets[:-1], np.diff(offsets)
    shortest = int(lengths.min())
    for j in range(int(lengths.max())):
        if j < shortest:  # every id has a byte at position j: no masking
            hashes ^= data[starts + j]
            hashes *= _FNV_PRIME
        else:
            active = np.flatnonzero(lengths > j)
            hashes[active] = (hashes[active] ^ data[starts[active] + j]) * _FNV_PRIME
    return hashes


def search_sorted(haystack: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """``np.searchsorted(haystack, needles)``, sorting big needle arrays first (several times faster: the binary
    searches then walk memory in order)."""
    if len(needles) <= 65_536:
        return np.searchsorted(haystack, needles)
    order = np.argsort(needles)
    out = np.empty(len(needles), dtype=np.int64)
    out[order] = np.searchsorted(haystack, needles[order])
    return out


class StringColumn:
    """Positional reads from a chunked Arrow ``large_string`` column straight from its (memory-mapped) buffers."""

    def __init__(self, column: pa.ChunkedArray):
        self.column = column
        self.starts = np.cumsum([0] + [len(chunk) for chunk in column.chunks])
        self.chunks = []
        for chunk in column.chunks:
            offsets = np.frombuffer(chunk.buffers()[1], np.int64)[chunk.offset:chunk.offset + len(chunk) + 1]
            data = chunk.buffers()[2]
            self.chunks.append((offsets, memoryview(data) if data is not None else memoryview(b"")))

    def get(self, rows: Sequence[int] | np.ndarray) -> list[str]:
        """The strings at ``rows`` (all in ``[0, len)``)."""
        rows = np.asarray(rows, dtype=np.int64)
        which = np.searchsorted(self.starts, rows, side="right") - 1
        out = []
        for chunk, local in zip(which.tolist(), (rows - self.starts[which]).tolist()):
            offsets, data = self.chunks[chunk]
            out.append(str(data[offsets[local]:offsets[local + 1]], "utf-8"))
        return out
