"""TREC files: run files (``qid Q0 docid rank score tag``), written atomically in trec_eval's order and read back
exactly, and qrels (BEIR ``query-id corpus-id score`` TSV with a header, or TREC ``qid 0 docid rel``). Every malformed
line is reported with its file and line number (``ir_measures``' readers parse the same files but report no line).
No torch."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from splade_lightning.errors import DataError, DataErrors
from splade_lightning.formats.atomic import write_text_atomic
from splade_lightning.formats.records import missing_path_error, show

__all__ = ["read_qrels", "read_trec_run", "trec_order", "write_trec_run"]


def trec_order(ranking: Mapping[str, float]) -> list[tuple[str, float]]:
    """Order one query's ranking the way trec_eval does: score descending, then doc id descending (string order).

    trec_eval ignores the rank column and the file order; it sorts by score and breaks ties by ``strcmp`` on the
    document id, larger id first. Writing runs in this order keeps the rank column consistent with what it evaluates.

    Args:
        ranking: ``{doc_id: score}`` of one query.

    Returns:
        ``[(doc_id, score), ...]`` in trec_eval's rank order.
    """
    return sorted(ranking.items(), key=lambda item: (item[1], item[0]), reverse=True)


def _check_token(value: str, what: str) -> None:
    if not isinstance(value, str) or value == "" or any(c.isspace() for c in value):
        raise DataError(f"{what} must be a non-empty string without whitespace for a TREC run file, got {value!r}")


def _run_lines(run: Mapping[str, Mapping[str, float]], tag: str) -> list[str]:
    lines = []
    for query_id in sorted(run):
        _check_token(query_id, "query id")
        for rank, (doc_id, score) in enumerate(trec_order(run[query_id]), start=1):
            _check_token(doc_id, f"doc id of query {query_id!r}")
            lines.append(f"{query_id} Q0 {doc_id} {rank} {float(score)!r} {tag}\n")
    return lines


def write_trec_run(run: Mapping[str, Mapping[str, float]], path: str | Path, tag: str) -> Path:
    """Write a run as a TREC run file (``qid Q0 docid rank score tag``), atomically.

    Queries are written in sorted id order and documents in trec_eval's order (:func:`trec_order`); scores are
    written with ``repr`` so they read back exactly. The file is first written to a temporary file in the same
    directory and then moved into place with ``os.replace``, so readers never see a partial file.

    Args:
        run: ``{query_id: {doc_id: score}}``.
        path: destination file; missing parent directories are created.
        tag: run name written in the last column (no whitespace).

    Returns:
        The written path.

    Raises:
        DataError: if ``tag`` or an id is empty or contains whitespace.
    """
    _check_token(tag, "tag")
    lines = _run_lines(run, tag)
    return write_text_atomic(path, "".join(lines))


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
