"""Read text-inline scored training groups ``{query, pos, neg, pos_scores, neg_scores}`` (the FlagEmbedding
distillation layout), validated like plain-text records plus their scores. No torch here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from splade_lightning.data.text.records import TrainRecord, duplicate_record, iter_train_files, parse_record
from splade_lightning.errors import DataError
from splade_lightning.formats.records import show
from splade_lightning.problems import OnBadRecord, SkippedRecords, settle


@dataclass(frozen=True)
class ScoredRecord:
    """One text-inline scored group: texts with one teacher score each, and provenance."""

    query: str
    positives: tuple[str, ...]
    positive_scores: tuple[float, ...]
    negatives: tuple[str, ...]
    negative_scores: tuple[float, ...]
    source: str
    line: int

    where = TrainRecord.where


def _scores(obj: dict, field: str, texts_field: str, n: int, path: str, line: int,
            errors: list[DataError]) -> tuple[float, ...]:
    if field not in obj:
        errors.append(DataError(f"missing field; this record has fields {sorted(obj)}", path, line, field))
        return ()
    value = obj[field]
    items = [value] if type(value) in (int, float) and isinstance(obj.get(texts_field), str) else value
    if not isinstance(items, list) or not all(type(s) in (int, float) for s in items):
        errors.append(DataError(f"expected a list of numbers, got {show(value)}", path, line, field))
    elif len(items) != n:
        errors.append(DataError(f"{len(items)} scores for {n} text(s) in '{texts_field}'; expected one score per "
                                "text", path, line, field))
    elif not all(math.isfinite(s) for s in items):
        errors.append(DataError(f"non-finite score(s) at list position(s) "
                                f"{[i for i, s in enumerate(items) if not math.isfinite(s)][:5]}", path, line, field))
    else:
        return tuple(float(s) for s in items)
    return ()


#: ``pos_neg``: ``{query, pos, neg, pos_scores, neg_scores}``; ``docs``: ``{query, docs, scores}``, the first
#: document the positive (sentence-transformers' distillation columns: query, documents, their teacher scores)
ScoredLayout = Literal["pos_neg", "docs"]


def _parse(obj: object, path: str, line: int, layout: ScoredLayout, errors: list[DataError]) -> ScoredRecord | None:
    """One validated group of either layout (``None`` after appending to ``errors``)."""
    texts_field = "pos" if layout == "pos_neg" else "docs"
    record = parse_record(obj, path, line, "query", texts_field, ["neg"] if layout == "pos_neg" else [], errors)
    if record is None:
        return None
    before = len(errors)
    if layout == "docs":
        scores = _scores(obj, "scores", "docs", len(record.positives), path, line, errors)
        if len(errors) > before:
            return None
        docs = record.positives
        return ScoredRecord(record.query, docs[:1], scores[:1], docs[1:], scores[1:], path, line)
    pos = _scores(obj, "pos_scores", "pos", len(record.positives), path, line, errors)
    neg = _scores(obj, "neg_scores", "neg", len(record.negatives), path, line, errors)
    if len(errors) > before:
        return None
    return ScoredRecord(record.query, record.positives, pos, record.negatives, neg, path, line)


def read_scored_records(paths: Sequence[str | Path], on_bad_record: OnBadRecord = "raise",
                        skipped: SkippedRecords | None = None, layout: ScoredLayout = "pos_neg") -> list[ScoredRecord]:
    """Read text-inline scored groups ``{query, pos, neg, pos_scores, neg_scores}`` (JSONL, parquet or a saved HF
    dataset; ``pos``/``neg`` a text or a list of texts, ``*_scores`` aligned with them), or with ``layout="docs"``
    ``{query, docs: [...], scores: [...]}`` whose first document is the positive and the others its negatives.

    Args:
        paths: the files.
        on_bad_record: ``"raise"``, or ``"skip"``: bad records are dropped and counted in ``skipped`` (problems of a
            whole file still raise).
        skipped: receives the skipped records (needed with ``"skip"``).
        layout: ``pos_neg`` or ``docs`` (see above).

    Raises:
        DataErrors: every problem: those of :func:`~splade_lightning.data.text.records.read_train_records`, plus missing
            score fields, scores that are not numbers, score lists whose length differs from their texts, NaN/inf.
    """
    errors: list[DataError] = []
    records = []
    seen: dict[tuple, str] = {}
    for path, line, obj in iter_train_files(paths, errors):
        record = _parse(obj, path, line, layout, errors)
        if record is not None and not duplicate_record(record, seen, errors):
            records.append(record)
    settle(errors, on_bad_record, skipped)
    return records
