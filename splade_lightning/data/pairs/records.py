"""Read labelled text pairs ``(text1, text2, score)`` or ``(text1, text2, label)`` from JSONL, TSV, parquet or a
saved HF ``datasets`` directory.

Every problem in every file is collected and raised together as one :class:`~splade_lightning.errors.DataErrors`,
each naming the file, the 1-based line (or row) and the column. No torch here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from splade_lightning.data.text.records import iter_train_files
from splade_lightning.errors import DataError
from splade_lightning.formats.records import show, train_file_format
from splade_lightning.problems import OnBadRecord, SkippedRecords, settle

#: ``score``: a real-valued similarity score; ``label``: an integer class label (e.g. 0/1)
LabelType = Literal["score", "label"]


@dataclass(frozen=True)
class PairRecord:
    """One labelled pair with its provenance.

    Attributes:
        text1: the first text (non-empty); goes through the query route.
        text2: the second text (non-empty); goes through the document route.
        label: the pair's gold score or class label, as a float.
        source: the file it came from.
        line: 1-based line (JSONL/TSV, the header is line 1) or row (parquet/HF) number in ``source``.
    """

    text1: str
    text2: str
    label: float
    source: str
    line: int

    @property
    def where(self) -> str:
        """``file:line`` of this record, for messages."""
        return f"{self.source}:{self.line}"


def parse_label(value: object, label_type: LabelType, from_text: bool) -> tuple[float | None, str]:
    """``(label, "")`` for a valid value, else ``(None, what is wrong)``. ``from_text``: the value comes from a TSV
    field (a string to parse)."""
    if from_text and isinstance(value, str):
        try:
            value = int(value) if label_type == "label" else float(value)
        except ValueError:
            kind = "an integer" if label_type == "label" else "a number"
            return None, f"expected {kind}, got {show(value)}"
    if isinstance(value, bool):
        value = int(value)
    if label_type == "label":
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if not isinstance(value, int):
            return None, (f"expected an integer class label (label_type: label), got {type(value).__name__} "
                          f"{show(value)}; for real-valued similarity scores use label_type: score")
        return float(value), ""
    if not isinstance(value, (int, float)):
        return None, f"expected a number (the pair's similarity score), got {type(value).__name__} {show(value)}"
    if not math.isfinite(value):
        return None, f"non-finite score {value!r}; expected a finite number"
    return float(value), ""


def _text(obj: dict, column: str, path: str, line: int, errors: list[DataError]) -> str | None:
    value = obj[column]
    if not isinstance(value, str):
        errors.append(DataError(f"expected a string, got {type(value).__name__} {show(value)}", path, line, column))
        return None
    if not value.strip():
        errors.append(DataError(f"empty text {show(value)}; expected non-empty text", path, line, column))
        return None
    return value


def parse_pair(obj: object, path: str, line: int, columns: tuple[str, str, str], label_type: LabelType,
               from_text: bool, errors: list[DataError]) -> PairRecord | None:
    """Validate one raw record (columns: text1, text2, label) into a :class:`PairRecord` (``None`` after appending
    to ``errors``)."""
    if not isinstance(obj, dict):
        errors.append(DataError(f"expected a JSON object (one record per line), got {type(obj).__name__} "
                                f"{show(obj)}", path=path, line=line))
        return None
    missing = [c for c in columns if c not in obj]
    for column in missing:
        errors.append(DataError(f"missing column; this record has columns {sorted(obj)}", path, line, column))
    if missing:
        return None
    text1, text2 = _text(obj, columns[0], path, line, errors), _text(obj, columns[1], path, line, errors)
    label, problem = parse_label(obj[columns[2]], label_type, from_text)
    if problem:
        errors.append(DataError(problem, path, line, columns[2]))
    if text1 is None or text2 is None or label is None:
        return None
    return PairRecord(text1, text2, label, path, line)


def read_pair_records(paths: Sequence[str | Path], text1_column: str = "sentence1", text2_column: str = "sentence2",
                      label_column: str = "score", label_type: LabelType = "score",
                      on_bad_record: OnBadRecord = "raise", skipped: SkippedRecords | None = None) -> list[PairRecord]:
    """Read and validate labelled pairs from every file, in file order.

    Repeated pairs are kept, as sentence-transformers trains on them (the STS Benchmark repeats a few).

    Args:
        paths: JSONL (``.jsonl``/``.json``), TSV with a header row (``.tsv``), ``.parquet`` files, or directories
            written by ``datasets.Dataset.save_to_disk``.
        text1_column: column of the first text.
        text2_column: column of the second text.
        label_column: column of the score or label (in TSV files, a field that parses as one).
        label_type: ``score`` (any finite number) or ``label`` (an integer; booleans count as 0/1).
        on_bad_record: ``"raise"``: every problem is raised; ``"skip"``: bad records are dropped and counted in
            ``skipped`` (problems of a whole file still raise).
        skipped: receives the skipped records (needed with ``"skip"``).

    Returns:
        The pairs, each with its file and line.

    Raises:
        DataErrors: every problem found (missing file, malformed line, record that is not an object, missing column,
            empty or non-string text, a label that is not a number / not an integer, NaN or infinite score, file
            without records).
    """
    errors: list[DataError] = []
    records: list[PairRecord] = []
    columns = (text1_column, text2_column, label_column)
    formats: dict[str, bool] = {}
    for path, line, obj in iter_train_files(paths, errors):
        if path not in formats:
            formats[path] = train_file_format(path) == "tsv"
        record = parse_pair(obj, path, line, columns, label_type, formats[path], errors)
        if record is not None:
            records.append(record)
    settle(errors, on_bad_record, skipped)
    return records
