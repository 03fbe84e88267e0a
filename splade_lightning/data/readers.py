"""Read training records (query, positives, negatives) from JSONL, TSV, parquet or a saved HF ``datasets`` directory.

Every problem in every file is collected and raised together as one :class:`~splade_lightning.errors.DataErrors`,
each entry naming the file, the 1-based line (or row) and the field. No torch here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..errors import DataError
from .error_list import OnBadRecord, SkippedRecords, settle

TrainFormat = Literal["jsonl", "tsv", "parquet", "hf"]
SUFFIXES: dict[str, TrainFormat] = {".jsonl": "jsonl", ".json": "jsonl", ".tsv": "tsv", ".parquet": "parquet"}


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


def show(value: object, width: int = 80) -> str:
    """A short ``repr`` of a bad value for error messages."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def missing_path_error(path: str | Path, what: str = "file", field: str | None = None) -> DataError:
    """A :class:`DataError` for a path that does not exist; relative paths name the directory they resolve against."""
    message = f"{what} not found"
    if not Path(path).is_absolute():
        message += f" (relative paths are resolved against the current directory {os.getcwd()})"
    return DataError(message, path=path, field=field)


def train_file_format(path: str | Path) -> TrainFormat:
    """Format of a training file from its suffix (``.jsonl``/``.json``, ``.tsv``, ``.parquet``) or ``hf`` for a dir.

    Raises:
        DataError: the path does not exist or has an unsupported suffix.
    """
    path = Path(path)
    if not path.exists():
        raise missing_path_error(path)
    if path.is_dir():
        return "hf"
    if path.suffix.lower() not in SUFFIXES:
        raise DataError(f"unsupported training file type {path.suffix!r}; expected one of {sorted(SUFFIXES)} or a "
                        "directory written by datasets.Dataset.save_to_disk", path=path)
    return SUFFIXES[path.suffix.lower()]


def iter_lines(path: str | Path, errors: list[DataError]) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for every line (line ending removed); lines that are not valid UTF-8 are
    appended to ``errors`` instead."""
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            try:
                yield number, raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as e:
                errors.append(DataError(f"line is not valid UTF-8 ({e}): {show(raw[:60])}", path=path, line=number))


def iter_jsonl(path: str | Path, errors: list[DataError]) -> Iterator[tuple[int, object]]:
    """Yield ``(line_number, parsed_value)`` for every non-blank line; undecodable lines are appended to ``errors``."""
    for number, line in iter_lines(path, errors):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as e:
            errors.append(DataError(f"malformed JSON ({e.msg} at column {e.colno}): {show(line.strip())}",
                                    path=path, line=number))


def iter_tsv(path: str | Path, errors: list[DataError]) -> Iterator[tuple[int, object]]:
    """Yield ``(line_number, {column: value})`` for a tab-separated file whose first line names the columns.

    Fields are split on tabs only (no quoting), as in MS MARCO / BEIR TSV files.
    """
    lines = iter_lines(path, errors)
    before = len(errors)
    number, first = next(lines, (0, ""))
    if len(errors) > before or number > 1:  # the header line is not valid UTF-8
        if len(errors) > before:
            errors[-1].scope = "file"
        return
    if not first.strip():
        return
    header = first.split("\t")
    if len(set(header)) != len(header) or not all(header):
        errors.append(DataError(f"header line must name each column once, got {show(header)}", path=path, line=1,
                                scope="file"))
        return
    for number, line in lines:
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            errors.append(DataError(f"expected {len(header)} tab-separated fields (header: {header}), found "
                                    f"{len(fields)}: {show(line)}", path=path, line=number))
            continue
        yield number, dict(zip(header, fields))


def iter_parquet(path: str | Path, errors: list[DataError]) -> Iterator[tuple[int, object]]:
    """Yield ``(row_number, row_dict)`` (1-based) for a parquet file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.ParquetFile(path)
        number = 0
        for batch in table.iter_batches(batch_size=4096):
            for row in batch.to_pylist():
                number += 1
                yield number, row
    except (pa.ArrowException, OSError) as e:
        errors.append(DataError(f"cannot read parquet file ({type(e).__name__}: {e})", path=path))


def iter_hf_dataset(path: str | Path, errors: list[DataError]) -> Iterator[tuple[int, object]]:
    """Yield ``(row_number, row_dict)`` (1-based) for a directory written by ``datasets.Dataset.save_to_disk``."""
    import datasets

    try:
        dataset = datasets.load_from_disk(str(path))
    except (FileNotFoundError, ValueError, OSError) as e:
        errors.append(DataError(f"not a HF datasets directory written by save_to_disk ({type(e).__name__}: {e})",
                                path=path))
        return
    if isinstance(dataset, datasets.DatasetDict):
        splits = sorted(dataset)
        errors.append(DataError(f"this is a DatasetDict with splits {splits}; point at one split's directory, e.g. "
                                f"{Path(path) / splits[0]}", path=path))
        return
    yield from enumerate(dataset, start=1)


READERS = {"jsonl": iter_jsonl, "tsv": iter_tsv, "parquet": iter_parquet, "hf": iter_hf_dataset}


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
