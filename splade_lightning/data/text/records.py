"""Read plain-text training records (query, positives, negatives) from JSONL, TSV, parquet or a saved HF
``datasets`` directory.

Every problem in every file is collected and raised together as one :class:`~splade_lightning.errors.DataErrors`,
each entry naming the file, the 1-based line (or row) and the field. No torch here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from splade_lightning.errors import DataError
from splade_lightning.formats.records import READERS, show, train_file_format
from splade_lightning.problems import OnBadRecord, SkippedRecords, settle


@dataclass(frozen=True)
class TrainRecord:
    """One training example with its provenance.

    Attributes:
        query: the query text (non-empty).
        positives: one or more relevant texts (one is used per epoch).
        negatives: zero or more hard-negative texts, from all negative columns in order.
        source: the file it came from.
        line: 1-based line (JSONL/TSV, the header is line 1) or row (parquet/HF) number in ``source``.
    """

    query: str
    positives: tuple[str, ...]
    negatives: tuple[str, ...]
    source: str
    line: int

    @property
    def where(self) -> str:
        """``file:line`` of this record, for messages."""
        return f"{self.source}:{self.line}"


def _texts(value: object, field: str, path: str, line: int, errors: list[DataError],
           required: bool) -> tuple[str, ...]:
    """Validate a column holding a string or a list of strings; return the texts (``()`` on error)."""
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(t, str) for t in items):
        errors.append(DataError(f"expected a string or a list of strings, got {type(value).__name__} {show(value)}",
                                path=path, line=line, field=field))
        return ()
    if required and not items:
        errors.append(DataError("empty list; expected at least one non-empty text", path=path, line=line, field=field))
        return ()
    empty = [i for i, t in enumerate(items) if not t.strip()]
    if empty:
        what = "empty text" if isinstance(value, str) else f"empty text at list position(s) {empty[:5]}"
        errors.append(DataError(f"{what}; expected non-empty text", path=path, line=line, field=field))
        return ()
    return tuple(items)


def parse_record(obj: object, path: str, line: int, query_column: str, positive_column: str,
                 negative_columns: Sequence[str], errors: list[DataError]) -> TrainRecord | None:
    """Validate one raw record and turn it into a :class:`TrainRecord` (``None`` after appending to ``errors``)."""
    if not isinstance(obj, dict):
        errors.append(DataError(f"expected a JSON object (one record per line), got {type(obj).__name__} "
                                f"{show(obj)}", path=path, line=line))
        return None
    before = len(errors)
    for column in (query_column, positive_column, *negative_columns):
        if column not in obj:
            errors.append(DataError(f"missing column; this record has columns {sorted(obj)}", path=path, line=line,
                                    field=column))
    if len(errors) > before:
        return None
    query = obj[query_column]
    if not isinstance(query, str):
        errors.append(DataError(f"expected a string, got {type(query).__name__} {show(query)}", path=path, line=line,
                                field=query_column))
    elif not query.strip():
        errors.append(DataError(f"empty query {show(query)}; expected non-empty text", path=path, line=line,
                                field=query_column))
    positives = _texts(obj[positive_column], positive_column, path, line, errors, required=True)
    negatives: list[str] = []
    for column in negative_columns:
        negatives.extend(_texts(obj[column], column, path, line, errors, required=False))
    if len(errors) > before:
        return None
    return TrainRecord(query, positives, tuple(negatives), path, line)


def iter_train_files(paths: Sequence[str | Path], errors: list[DataError]) -> Iterator[tuple[str, int, object]]:
    """Yield ``(path, line, raw record)`` for every record of every training file (any format of
    :func:`train_file_format`), in file order; unreadable files, bad lines and files without records are appended to
    ``errors``."""
    for path in paths:
        try:
            kind = train_file_format(path)
        except DataError as e:
            errors.append(e)
            continue
        count = 0
        for line, obj in READERS[kind](path, errors):
            count += 1
            yield str(path), line, obj
        if count == 0 and not any(e.path == str(path) for e in errors):
            errors.append(DataError("no records found; expected at least one", path=path))


def duplicate_record(record: TrainRecord, seen: dict[tuple, str], errors: list[DataError]) -> bool:
    """Whether ``record`` repeats an earlier one (same query, positives and negatives); if so an error naming both
    places is appended (a repeated record would be trained on twice as often)."""
    key = (record.query, record.positives, record.negatives)
    if key in seen:
        errors.append(DataError(f"duplicate record: same query, positives and negatives as {seen[key]}",
                                record.source, record.line))
        return True
    seen[key] = record.where
    return False


def read_train_records(paths: Sequence[str | Path], query_column: str = "query", positive_column: str = "pos",
                       negative_columns: Sequence[str] = (), on_bad_record: OnBadRecord = "raise",
                       skipped: SkippedRecords | None = None) -> list[TrainRecord]:
    """Read and validate training records from every file, in file order.

    Args:
        paths: JSONL (``.jsonl``/``.json``), TSV with a header row (``.tsv``), ``.parquet`` files, or directories
            written by ``datasets.Dataset.save_to_disk``.
        query_column: column holding the query text.
        positive_column: column holding one positive text or a list of them.
        negative_columns: columns holding one negative text or a list of them each (may be empty).
        on_bad_record: ``"raise"``: every problem is raised; ``"skip"``: bad records are dropped and counted in
            ``skipped`` (problems of a whole file still raise).
        skipped: receives the skipped records (needed with ``"skip"``).

    Returns:
        The records, each with its file and line.

    Raises:
        DataErrors: every problem found in every file (missing file, bad header, line not valid UTF-8, malformed
            line, record that is not an object, missing column, empty query/positive, wrong value type, a record
            repeated exactly, file without records).
    """
    errors: list[DataError] = []
    records: list[TrainRecord] = []
    seen: dict[tuple, str] = {}
    for path, line, obj in iter_train_files(paths, errors):
        record = parse_record(obj, path, line, query_column, positive_column, negative_columns, errors)
        if record is not None and not duplicate_record(record, seen, errors):
            records.append(record)
    settle(errors, on_bad_record, skipped)
    return records
