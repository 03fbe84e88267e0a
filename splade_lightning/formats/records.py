"""Record files with ``file:line`` errors: JSONL, TSV with a header row, parquet, and saved HF ``datasets``
directories, each read as ``(line or row number, record)`` pairs; unreadable lines are collected, not raised. No torch
here."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

from splade_lightning.errors import DataError
from splade_lightning.formats.atomic import atomic_path

TrainFormat = Literal["jsonl", "tsv", "parquet", "hf"]
SUFFIXES: dict[str, TrainFormat] = {".jsonl": "jsonl", ".json": "jsonl", ".tsv": "tsv", ".parquet": "parquet"}


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


def write_jsonl_atomic(path: str | Path, records: Iterable[dict]) -> int:
    """Stream ``records`` as JSON lines into a temporary file next to ``path``, fsync, then ``os.replace`` it.

    Missing parent directories are created; on any failure the temporary file is removed and ``path`` is untouched.

    Returns:
        The number of records written.
    """
    count = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count
