"""Parsing one id-record JSONL file: validate each line, resolve its ids to store rows in batches, assemble
:class:`~splade_lightning.data.ids.arrays.RecordArrays`.

Lines are validated one by one; ids are buffered and resolved every ``FLUSH_IDS`` ids with vectorised
:meth:`TextStore.rows <splade_lightning.data.ids.text_store.TextStore.rows>` lookups. Every problem is appended to the
caller's :class:`~splade_lightning.problems.ErrorList`, each naming ``file:line`` and the field.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from splade_lightning.data.ids.arrays import RecordArrays, RecordKind
from splade_lightning.data.ids.text_store import TextStore
from splade_lightning.errors import DataError
from splade_lightning.formats.records import iter_jsonl, show
from splade_lightning.problems import ErrorList

FLUSH_IDS = 1_000_000
_NUMBER = (int, float)


# -- parsing one line ------------------------------------------------------------------------------------------------
def _as_id(value: object) -> str | None:
    if type(value) is str:
        return value if value else None
    if type(value) is int:
        return str(value)
    return None


def _id_list(value: object, path: Path, line: int, field: str, errors: ErrorList, required: bool) -> list[str] | None:
    """A list of ids (strings or ints), or ``None`` after appending an error."""
    if not isinstance(value, list):
        errors.append(DataError(f"expected a list of ids, got {type(value).__name__} {show(value)}", path, line,
                                field))
        return None
    if required and not value:
        errors.append(DataError("empty list; expected at least one id", path, line, field))
        return None
    if all(type(v) is str and v for v in value):
        return value
    ids = [_as_id(v) for v in value]
    bad = [i for i, v in enumerate(ids) if v is None]
    if bad:
        errors.append(DataError(f"ids must be non-empty strings or integers; bad entries at list position(s) "
                                f"{bad[:5]}: {show([value[i] for i in bad[:5]])}", path, line, field))
        return None
    return ids


def _missing(obj: dict, fields: tuple[str, ...], path: Path, line: int, errors: ErrorList) -> bool:
    absent = [f for f in fields if f not in obj]
    for field in absent:
        errors.append(DataError(f"missing field; this record has fields {sorted(obj)}", path, line, field))
    return bool(absent)


def _hard_negative(obj: dict, path: Path, line: int, errors: ErrorList, systems: dict[str, int]):
    """``(pos ids, neg ids, neg system codes)`` of a hard-negative record, or ``None``."""
    before = errors.total
    if _missing(obj, ("pos",), path, line, errors):
        return None
    pos = _id_list(obj["pos"], path, line, "pos", errors, required=True)
    negatives = obj.get("neg", [])
    groups = negatives.items() if isinstance(negatives, dict) else [("default", negatives)]
    neg: list[str] = []
    codes: list[int] = []
    for system, ids in groups:
        code = systems.setdefault(system, len(systems))
        ids = _id_list(ids, path, line, _neg_field(system), errors, required=False)
        if ids:
            neg.extend(ids)
            codes.extend([code] * len(ids))
    return None if errors.total > before else (pos, neg, codes)


def _neg_field(system: str) -> str:
    return "neg" if system == "default" else f"neg.{system}"


def _teacher(obj: dict, path: Path, line: int, errors: ErrorList):
    """``(pos ids or [], doc ids, scores)`` of a teacher-score record, or ``None`` (finiteness and repeated doc ids
    are checked per batch, vectorised)."""
    before = errors.total
    if _missing(obj, ("doc_ids", "scores"), path, line, errors):
        return None
    pos = _id_list(obj["pos"], path, line, "pos", errors, required=True) if "pos" in obj else []
    docs = _id_list(obj["doc_ids"], path, line, "doc_ids", errors, required=True)
    scores = obj["scores"]
    if not isinstance(scores, list) or not all(type(s) in _NUMBER for s in scores):
        errors.append(DataError(f"expected a list of numbers, got {show(scores)}", path, line, "scores"))
    elif docs is not None and len(scores) != len(docs):
        errors.append(DataError(f"{len(scores)} scores for {len(docs)} doc_ids; expected one score per doc id",
                                path, line, "scores"))
    return None if errors.total > before else (pos, docs, scores)


# -- resolving a batch of records ------------------------------------------------------------------------------------
class _Batch:
    """Parsed records of one file waiting to be resolved (flat Python lists, flushed every ``FLUSH_IDS`` ids)."""

    def __init__(self):
        self.qids: list[str] = []
        self.lines: list[int] = []
        self.pos: list[str] = []
        self.pos_counts: list[int] = []
        self.docs: list[str] = []
        self.doc_counts: list[int] = []
        self.extra: list = []  # system code or score of each doc


class _Parts:
    """Resolved arrays of one file, accumulated batch by batch."""

    def __init__(self):
        self.lines: list[np.ndarray] = []
        self.query: list[np.ndarray] = []
        self.pos: list[np.ndarray] = []
        self.pos_counts: list[np.ndarray] = []
        self.docs: list[np.ndarray] = []
        self.doc_counts: list[np.ndarray] = []
        self.extra: list[np.ndarray] = []
        self.bad_lines: list[np.ndarray] = []  # lines of records with an unresolved id or a bad score


def _report(flat: np.ndarray, counts: list[int] | np.ndarray, lines: list[int], path: Path, errors: ErrorList,
            message, bad_lines: list[np.ndarray]) -> None:
    """One error per flagged flat position (capped): ``message(i, position in its record) -> (text, field)``; the
    lines of the records concerned are appended to ``bad_lines``."""
    if flat.size == 0:
        return
    starts = np.concatenate([[0], np.cumsum(counts)])
    owner = np.searchsorted(starts, flat, side="right") - 1
    bad_lines.append(np.asarray(lines, np.int64)[owner])
    shown = min(flat.size, errors.room())
    for i, record in zip(flat[:shown].tolist(), owner[:shown].tolist()):
        text, field = message(i, i - int(starts[record]))
        errors.append(DataError(text, path, lines[record], field))
    errors.dropped += flat.size - shown


def _resolve(store: TextStore, ids: list[str], counts: list[int], lines: list[int], path: Path, field,
             what: str, errors: ErrorList, bad_lines: list[np.ndarray]) -> np.ndarray:
    """Rows of ``ids`` in ``store``; an error (capped) for every id that is not there; ``field(i)`` names the field
    of flat position ``i``."""
    rows = store.rows(ids)
    _report(np.flatnonzero(rows < 0), counts, lines, path, errors,
            lambda i, _: (f"{what} id {ids[i]!r} is not in {store.path}", field(i)), bad_lines)
    return rows.astype(np.int32)


def _check_scores(batch: _Batch, docs: np.ndarray, scores: np.ndarray, n_docs: int, path: Path,
                  errors: ErrorList, bad_lines: list[np.ndarray]) -> None:
    """Non-finite scores (NaN, inf, or beyond float32) and doc ids scored twice in one record."""
    _report(np.flatnonzero(~np.isfinite(scores)), batch.doc_counts, batch.lines, path, errors,
            lambda i, at: (f"non-finite score {batch.extra[i]!r} at list position {at}", "scores"), bad_lines)
    owner = np.repeat(np.arange(len(batch.doc_counts), dtype=np.int64), batch.doc_counts)
    keys = owner * (n_docs + 1) + docs
    order = np.argsort(keys, kind="stable")
    again = order[1:][(keys[order][1:] == keys[order][:-1]) & (docs[order][1:] >= 0)]
    _report(np.sort(again), batch.doc_counts, batch.lines, path, errors,
            lambda i, at: (f"doc id {batch.docs[i]!r} is scored more than once (again at list position {at}); "
                           "each doc needs one score", "doc_ids"), bad_lines)


def _flush(batch: _Batch, parts: _Parts, kind: RecordKind, corpus: TextStore, queries: TextStore, path: Path,
           errors: ErrorList, system_names: list[str]) -> None:
    if not batch.lines:
        return
    ones = [1] * len(batch.qids)
    bad = parts.bad_lines
    parts.query.append(_resolve(queries, batch.qids, ones, batch.lines, path, lambda i: "qid", "query", errors, bad))
    parts.pos.append(_resolve(corpus, batch.pos, batch.pos_counts, batch.lines, path, lambda i: "pos", "doc",
                              errors, bad))
    if kind == "hard_negatives":
        field = lambda i: _neg_field(system_names[batch.extra[i]])  # noqa: E731
    else:
        field = lambda i: "doc_ids"  # noqa: E731
    docs = _resolve(corpus, batch.docs, batch.doc_counts, batch.lines, path, field, "doc", errors, bad)
    if kind == "hard_negatives":
        extra = np.asarray(batch.extra, np.int16)
    else:
        with np.errstate(over="ignore"):
            extra = np.asarray(batch.extra, np.float64).astype(np.float32)  # beyond float32: inf, reported below
        _check_scores(batch, docs, extra, len(corpus), path, errors, bad)
    parts.docs.append(docs)
    parts.extra.append(extra)
    parts.lines.append(np.asarray(batch.lines, np.int64))
    parts.pos_counts.append(np.asarray(batch.pos_counts, np.int64))
    parts.doc_counts.append(np.asarray(batch.doc_counts, np.int64))
    batch.__init__()


def parse_file(path: Path, kind: RecordKind, corpus: TextStore, queries: TextStore, errors: ErrorList) -> RecordArrays:
    """Parse, validate and resolve every record of ``path`` (problems appended to ``errors``); the records with a
    problem are left out of the result."""
    systems: dict[str, int] = {}
    batch, parts = _Batch(), _Parts()
    count = 0
    for line, obj in iter_jsonl(path, errors):
        count += 1
        if not isinstance(obj, dict):
            errors.append(DataError(f"expected a JSON object, got {type(obj).__name__} {show(obj)}", path, line))
            continue
        qid = _as_id(obj.get("qid"))
        if qid is None and not _missing(obj, ("qid",), path, line, errors):
            errors.append(DataError(f"expected a non-empty string or integer id, got {show(obj['qid'])}", path, line,
                                    "qid"))
        if kind == "hard_negatives":
            parsed = _hard_negative(obj, path, line, errors, systems)
        else:
            parsed = _teacher(obj, path, line, errors)
        if parsed is None or qid is None:
            continue
        pos, docs, extra = parsed
        batch.qids.append(qid)
        batch.lines.append(line)
        batch.pos.extend(pos)
        batch.pos_counts.append(len(pos))
        batch.docs.extend(docs)
        batch.doc_counts.append(len(docs))
        batch.extra.extend(extra)
        if len(batch.docs) >= FLUSH_IDS:
            _flush(batch, parts, kind, corpus, queries, path, errors, list(systems))
    _flush(batch, parts, kind, corpus, queries, path, errors, list(systems))
    if count == 0:
        errors.append(DataError("no records found; expected at least one", path=path))
    groups = _assemble(parts, str(path), kind, list(systems))
    if parts.bad_lines:
        groups = drop_records(groups, np.isin(groups.line, np.concatenate(parts.bad_lines)))
    return groups


def drop_records(groups: RecordArrays, bad: np.ndarray) -> RecordArrays:
    """``groups`` without the records flagged in ``bad`` (G,) bool."""
    keep = ~bad

    def take(offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        counts = np.diff(offsets)
        return np.concatenate([[0], np.cumsum(counts[keep])]).astype(np.int64), np.repeat(keep, counts)

    pos_offsets, pos_keep = take(groups.pos_offsets)
    doc_offsets, doc_keep = take(groups.doc_offsets)
    return RecordArrays(groups.sources, groups.file[keep], groups.line[keep], groups.query[keep], pos_offsets,
                    groups.pos[pos_keep], doc_offsets, groups.docs[doc_keep],
                    None if groups.systems is None else groups.systems[doc_keep], groups.system_names,
                    None if groups.scores is None else groups.scores[doc_keep])


def _assemble(parts: _Parts, source: str, kind: RecordKind, system_names: list[str]) -> RecordArrays:
    def cat(items: list, dtype) -> np.ndarray:
        return np.concatenate(items).astype(dtype, copy=False) if items else np.zeros(0, dtype)

    def offsets(counts: list) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(cat(counts, np.int64))]).astype(np.int64)

    lines = cat(parts.lines, np.int64)
    extra = cat(parts.extra, np.int16 if kind == "hard_negatives" else np.float32)
    return RecordArrays([source], np.zeros(len(lines), np.int32), lines, cat(parts.query, np.int32),
                    offsets(parts.pos_counts), cat(parts.pos, np.int32), offsets(parts.doc_counts),
                    cat(parts.docs, np.int32), extra if kind == "hard_negatives" else None, system_names,
                    extra if kind == "teacher_scores" else None)


def duplicate_queries(groups: RecordArrays, queries: TextStore, errors: ErrorList) -> np.ndarray:
    """A teacher-score file must score each query once: an error for every repeat; returns (G,) bool, the repeats."""
    order = np.argsort(groups.query, kind="stable")
    same = np.flatnonzero(groups.query[order][1:] == groups.query[order][:-1])
    shown = min(same.size, errors.room())
    for first, second in zip(order[same][:shown].tolist(), order[same + 1][:shown].tolist()):
        qid = queries.ids_at([groups.query[second]])[0]
        errors.append(DataError(f"duplicate query id {qid!r} (also on line {groups.line[first]}); a teacher-score "
                                "file must score each query once", groups.sources[0], int(groups.line[second]), "qid"))
    errors.dropped += same.size - shown
    repeated = np.zeros(len(groups.line), bool)
    repeated[order[same + 1]] = True
    return repeated

