"""``RecordArrays``: validated id records as flat CSR-style arrays of store rows, and their memory-mapped Arrow
cache.

Built by :mod:`.parsing`, read through :func:`~splade_lightning.data.ids.records.read_id_records`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from splade_lightning.errors import DataError
from splade_lightning.formats.atomic import atomic_path

RecordKind = Literal["hard_negatives", "teacher_scores"]


@dataclass
class RecordArrays:
    """Validated id records as flat arrays: record ``g`` owns ``pos[pos_offsets[g]:pos_offsets[g + 1]]`` and
    ``docs[doc_offsets[g]:doc_offsets[g + 1]]`` (rows of the corpus store).

    Attributes:
        sources: the files, indexed by :attr:`file`.
        file: (G,) index of each record's file.
        line: (G,) 1-based line of each record.
        query: (G,) row of each record's query in the query store.
        pos_offsets: (G + 1,) offsets into :attr:`pos`.
        pos: positive rows (empty for teacher records without ``pos``).
        doc_offsets: (G + 1,) offsets into :attr:`docs`.
        docs: negative rows (hard negatives) or scored rows (teacher scores), in file order.
        systems: index into :attr:`system_names` of each entry of :attr:`docs`, or ``None`` (teacher scores).
        system_names: names of the negative systems.
        scores: teacher score of each entry of :attr:`docs`, or ``None`` (hard negatives).
    """

    sources: list[str]
    file: np.ndarray
    line: np.ndarray
    query: np.ndarray
    pos_offsets: np.ndarray
    pos: np.ndarray
    doc_offsets: np.ndarray
    docs: np.ndarray
    systems: np.ndarray | None
    system_names: list[str]
    scores: np.ndarray | None

    def __len__(self) -> int:
        return len(self.line)

    def where(self, record: int) -> str:
        """``file:line`` of ``record``."""
        return f"{self.sources[self.file[record]]}:{self.line[record]}"

    def error(self, record: int, message: str, field: str | None = None) -> DataError:
        """A :class:`DataError` located at ``record``'s file and line."""
        return DataError(message, self.sources[self.file[record]], int(self.line[record]), field)


def _join_offsets(parts: list[np.ndarray]) -> np.ndarray:
    out, base = [np.zeros(1, np.int64)], 0
    for offsets in parts:
        out.append(offsets[1:] + base)
        base += int(offsets[-1])
    return np.concatenate(out).astype(np.int64)


def concat_groups(parts: list[RecordArrays]) -> RecordArrays:
    """One :class:`RecordArrays` from several (file indices and system codes renumbered). A single part is returned as
    it is, so memory-mapped arrays stay memory-mapped; several are concatenated into memory."""
    if len(parts) == 1:
        return parts[0]
    names = list(dict.fromkeys(n for p in parts for n in p.system_names))
    systems = None
    if all(p.systems is not None for p in parts):
        systems = np.concatenate([np.asarray([names.index(n) for n in p.system_names] or [0], np.int16)[p.systems]
                                  for p in parts]).astype(np.int16)
    scores = np.concatenate([p.scores for p in parts]) if all(p.scores is not None for p in parts) else None
    file_base = np.cumsum([0] + [len(p.sources) for p in parts])
    return RecordArrays(
        sources=[s for p in parts for s in p.sources],
        file=np.concatenate([p.file + b for p, b in zip(parts, file_base)]).astype(np.int32),
        line=np.concatenate([p.line for p in parts]), query=np.concatenate([p.query for p in parts]),
        pos_offsets=_join_offsets([p.pos_offsets for p in parts]), pos=np.concatenate([p.pos for p in parts]),
        doc_offsets=_join_offsets([p.doc_offsets for p in parts]), docs=np.concatenate([p.docs for p in parts]),
        systems=systems, system_names=names, scores=scores)


# -- cache -----------------------------------------------------------------------------------------------------------
def write_groups(groups: RecordArrays, kind: RecordKind, target: Path) -> None:
    """Write one file's ``groups`` to the Arrow stream ``target``, atomically."""
    import pyarrow as pa

    def lists(offsets: np.ndarray, values: np.ndarray):
        return pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values))

    extra = groups.systems if kind == "hard_negatives" else groups.scores
    columns = {"line": pa.array(groups.line), "query": pa.array(groups.query),
               "pos": lists(groups.pos_offsets, groups.pos), "docs": lists(groups.doc_offsets, groups.docs),
               "extra": lists(groups.doc_offsets, extra)}
    metadata = {"source": groups.sources[0], "kind": kind, "system_names": json.dumps(groups.system_names)}
    batch = pa.RecordBatch.from_pydict(columns).replace_schema_metadata(metadata)
    with atomic_path(target) as tmp, pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)


def read_groups(path: Path, kind: RecordKind) -> RecordArrays:
    """The cached arrays, zero-copy views of the memory-mapped file."""
    import pyarrow as pa

    table = pa.ipc.open_stream(pa.memory_map(str(path))).read_all()
    batch = table.to_batches()[0] if table.column(0).num_chunks == 1 else table.combine_chunks().to_batches()[0]
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}

    def flat(name: str) -> tuple[np.ndarray, np.ndarray]:
        column = batch.column(name)
        offsets = column.offsets.to_numpy()
        return offsets - offsets[0], column.values.to_numpy()[offsets[0]:offsets[-1]]

    pos_offsets, pos = flat("pos")
    doc_offsets, docs = flat("docs")
    _, extra = flat("extra")
    lines = batch.column("line").to_numpy()
    return RecordArrays([meta["source"]], np.zeros(len(lines), np.int32), lines, batch.column("query").to_numpy(),
                    pos_offsets, pos, doc_offsets, docs, extra if kind == "hard_negatives" else None,
                    json.loads(meta["system_names"]), extra if kind == "teacher_scores" else None)
