"""Read TREC run files (``qid Q0 docid rank score tag``) and qrels files (BEIR ``query-id corpus-id score`` TSV with a
header, or TREC ``qid 0 docid rel``). Every malformed line is reported with its file and line number. No torch."""

from __future__ import annotations

import math
from pathlib import Path

from ..data.readers import missing_path_error, show
from ..errors import DataError, DataErrors

__all__ = ["read_qrels", "read_trec_run"]


def _lines(path: str | Path, what: str):
    """``(line_number, stripped_text)`` of the non-blank lines of an existing file."""
    path = Path(path)
    if not path.is_file():
        raise DataErrors([missing_path_error(path, what)])
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, raw in enumerate(handle, start=1):
            if raw.strip():
                yield number, raw.rstrip("\r\n")


def _as_int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _as_finite(value: str) -> float | None:
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def read_trec_run(path: str | Path) -> dict[str, dict[str, float]]:
    """Read a TREC run file: whitespace-separated ``qid Q0 docid rank score tag`` lines.

    The rank and tag columns are checked but not used (trec_eval ranks by score); the second column may be any token.

    Args:
        path: the run file.

    Returns:
        ``{query_id: {doc_id: score}}``.

    Raises:
        DataErrors: a missing or empty file, or every malformed line (wrong number of fields, a rank that is not an
            integer, a score that is not a finite number, a document listed twice for one query), each as
            ``file:line``.
    """
    run: dict[str, dict[str, float]] = {}
    first: dict[tuple[str, str], int] = {}
    errors: list[DataError] = []
    for line, raw in _lines(path, "TREC run file"):
        fields = raw.split()
        if len(fields) != 6:
            errors.append(DataError(f"expected 6 whitespace-separated fields (qid Q0 docid rank score tag), found "
                                    f"{len(fields)}: {show(raw)}", path, line))
            continue
        qid, _, did, rank, score, _ = fields
        if _as_int(rank) is None:
            errors.append(DataError(f"expected an integer rank, got {rank!r}", path, line, "rank"))
        value = _as_finite(score)
        if value is None:
            errors.append(DataError(f"expected a finite number, got {score!r}", path, line, "score"))
        elif (qid, did) in first:
            errors.append(DataError(f"document {did!r} listed twice for query {qid!r} (first on line "
                                    f"{first[qid, did]})", path, line))
        else:
            first[qid, did] = line
            run.setdefault(qid, {})[did] = value
    if not run and not errors:
        errors.append(DataError("no run lines; expected 'qid Q0 docid rank score tag' lines", path))
    if errors:
        raise DataErrors(errors)
    return run


def _qrels_fields(raw: str) -> list[str]:
    fields = raw.split("\t")
    return fields if len(fields) == 3 else raw.split()


def read_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """Read qrels as BEIR TSV (``query-id<TAB>corpus-id<TAB>score``, optional header) or TREC (``qid 0 docid rel``).

    The format is taken from the first data line (3 fields: BEIR, 4 fields: TREC); every line must then match it.

    Args:
        path: the qrels file.

    Returns:
        ``{query_id: {doc_id: grade}}`` (grade-0 judgments included).

    Raises:
        DataErrors: a missing or empty file, or every malformed line (wrong number of fields, a grade that is not an
            integer, a duplicate judgment), each as ``file:line``.
    """
    qrels: dict[str, dict[str, int]] = {}
    errors: list[DataError] = []
    width = None
    for line, raw in _lines(path, "qrels file"):
        fields = _qrels_fields(raw)
        if width is None and len(fields) == 3 and _as_int(fields[2]) is None:
            width = 3
            continue  # BEIR header: query-id corpus-id score
        if width is None and len(fields) in (3, 4):
            width = len(fields)
        if len(fields) != width:
            expected = {3: "3 fields (query-id, corpus-id, score)", 4: "4 fields (qid iteration docid relevance)"}
            errors.append(DataError(f"expected {expected.get(width, '3 or 4 fields')}, found {len(fields)}: "
                                    f"{show(raw)}", path, line))
            continue
        qid, did, grade_text = (fields[0], fields[1], fields[2]) if width == 3 else (fields[0], fields[2], fields[3])
        grade = _as_int(grade_text)
        if grade is None:
            errors.append(DataError(f"expected an integer grade, got {grade_text!r}", path, line,
                                    "score" if width == 3 else "relevance"))
        elif did in qrels.get(qid, {}):
            errors.append(DataError(f"duplicate judgment for ({qid!r}, {did!r})", path, line))
        else:
            qrels.setdefault(qid, {})[did] = grade
    if not qrels and not errors:
        errors.append(DataError("no judgments; expected 'query-id corpus-id score' or 'qid 0 docid rel' lines", path))
    if errors:
        raise DataErrors(errors)
    return qrels
