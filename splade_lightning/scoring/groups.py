"""Inputs and output of ``score``: candidate groups (hard negatives or an earlier score file) and the score JSONL.

Two input record kinds, told apart by their keys (one file may hold either):

- hard negatives, as ``mine`` writes them: ``{"qid", "pos": [doc ids], "neg": {"<system>": [doc ids], ...}}`` or
  ``"neg": [doc ids]``. Candidates are the positives, then the negatives in file order, deduplicated.
- teacher scores: ``{"qid", "doc_ids": [...], "scores": [...]}`` with an optional ``"pos"`` naming the positives
  among ``doc_ids``. Candidates are ``doc_ids`` in their order (the old scores are ignored: the group is rescored).

Each query may appear once (as in a teacher-score file, which the output is). The output keeps ``"pos"`` (the
positives among the kept candidates) whenever the input names positives.

Every problem is collected and raised together as one :class:`~splade_lightning.errors.DataErrors`. No torch here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from splade_lightning.errors import DataError, DataErrors
from splade_lightning.formats.beir import read_id_text
from splade_lightning.formats.beir_files import beir_file
from splade_lightning.formats.records import iter_jsonl, missing_path_error, show


@dataclass(frozen=True)
class Group:
    """One query and the documents to score for it.

    Attributes:
        qid: the query id (a key of queries.jsonl).
        doc_ids: candidate doc ids (keys of corpus.jsonl), no duplicates; positives first for hard negatives, the
            file's order for a rescored score file.
        line: 1-based line of the record in the input file.
        pos: the positives among ``doc_ids`` (hard negatives: ``pos``; a score file: its optional ``pos``).
    """

    qid: str
    doc_ids: tuple[str, ...]
    line: int
    pos: tuple[str, ...] = ()


def read_texts(path: str | Path, kind: str, errors: list[DataError]) -> dict[str, str]:
    """id -> text of a corpus (``kind="doc"``: ``title + " " + text``) or queries argument: a BEIR directory or its
    JSONL file (:func:`~splade_lightning.formats.beir_files.beir_file`); problems are appended to ``errors``."""
    try:
        return read_id_text(beir_file(path, kind), kind, errors)
    except DataError as e:  # a missing file: reported with the others
        errors.append(e)
        return {}


def _as_id(value: object) -> str | None:
    """An id as a string (ints are accepted, as BEIR readers do), or None when it is not an id."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value else None


def _id_list(record: dict, field: str, path: Path, line: int, errors: list[DataError]) -> list[str]:
    """The ids of ``record[field]``: a list of ids, one id, or (``neg``) a ``{system: [ids]}`` mapping."""
    value = record.get(field, [])
    if isinstance(value, dict) and field == "neg":
        lists = list(value.values())
    elif isinstance(value, (str, int)) and not isinstance(value, bool):
        lists = [[value]]
    else:
        lists = [value]
    ids: list[str] = []
    for items in lists:
        if not isinstance(items, list):
            expected = "a list of doc ids or {system: [doc ids]}" if field == "neg" else "a list of doc ids"
            errors.append(DataError(f"expected {expected}, got {show(value)}", path, line, field))
            return []
        for item in items:
            doc_id = _as_id(item)
            if doc_id is None:
                errors.append(DataError(f"expected doc ids (strings), got {show(item)}", path, line, field))
                return []
            ids.append(doc_id)
    return ids


def _candidates(record: dict, path: Path, line: int,
                errors: list[DataError]) -> tuple[list[str], list[str]] | None:
    """``(candidate ids, positive ids)`` of one record, candidates deduplicated (positives first for hard
    negatives, file order for ``doc_ids``), or None after appending an error."""
    n_errors = len(errors)
    if "doc_ids" in record:
        if "neg" in record:
            errors.append(DataError("record has both 'doc_ids' (a score file) and 'neg' (hard negatives); expected "
                                    "one of the two layouts", path, line))
            return None
        ids = _id_list(record, "doc_ids", path, line, errors)
        pos = _id_list(record, "pos", path, line, errors)  # optional in a score file: names the positives
        outside = [doc_id for doc_id in pos if doc_id not in set(ids)]
        if outside and len(errors) == n_errors:
            errors.append(DataError(f"positive(s) {show(outside)} are not among doc_ids", path, line, "pos"))
    elif "pos" in record or "neg" in record:
        pos = _id_list(record, "pos", path, line, errors)
        ids = pos + _id_list(record, "neg", path, line, errors)
    else:
        errors.append(DataError(f"expected hard negatives {{'qid', 'pos', 'neg'}} or teacher scores {{'qid', "
                                f"'doc_ids', 'scores'}}; this record has fields {sorted(record)}", path, line))
        return None
    return (list(dict.fromkeys(ids)), pos) if len(errors) == n_errors else None


def _group(qid: str, ids: list[str], pos: list[str], line: int, max_candidates: int | None) -> Group:
    kept = tuple(ids[:max_candidates])
    return Group(qid, kept, line, tuple(doc_id for doc_id in dict.fromkeys(pos) if doc_id in set(kept)))


def read_groups(path: str | Path, queries: dict[str, str], corpus: dict[str, str], max_candidates: int | None,
                errors: list[DataError]) -> list[Group]:
    """Read and check the candidate groups of a hard-negatives or teacher-score JSONL file.

    Args:
        path: the input file.
        queries: id -> text; every ``qid`` must be a key, at most once (a score file scores each query once).
        corpus: id -> text; every candidate must be a key.
        max_candidates: keep only the first this many candidates of each group (positives first); None keeps all.
        errors: problems are appended here (a missing query / doc id names the file, line and field).

    Returns:
        The groups, in file order (only those without problems).
    """
    path = Path(path)
    if not path.is_file():
        errors.append(missing_path_error(path))
        return []
    groups: list[Group] = []
    first_line: dict[str, int] = {}
    for line, record in iter_jsonl(path, errors):
        if not isinstance(record, dict):
            errors.append(DataError(f"expected a JSON object, got {type(record).__name__} {show(record)}", path, line))
            continue
        qid = _as_id(record.get("qid"))
        if qid is None:
            found = f"got {show(record['qid'])}" if "qid" in record else f"record has fields {sorted(record)}"
            errors.append(DataError(f"expected a query id; {found}", path, line, "qid"))
            continue
        parsed = _candidates(record, path, line, errors)
        if parsed is None:
            continue
        ids, pos = parsed
        n_errors = len(errors)
        if qid not in queries:
            errors.append(DataError(f"query id {qid!r} is not in the queries file", path, line, "qid"))
        elif qid in first_line:
            errors.append(DataError(f"duplicate query id {qid!r} (also on line {first_line[qid]}); a teacher-score "
                                    "file scores each query once: merge its candidates into one record", path, line,
                                    "qid"))
        first_line.setdefault(qid, line)
        missing = [doc_id for doc_id in ids if doc_id not in corpus]
        if missing:
            errors.append(DataError(f"{len(missing)} doc id(s) not in the corpus: {show(missing)}", path, line))
        if not ids:
            errors.append(DataError(f"query {qid!r} has no candidates (no positives, negatives or doc_ids)", path,
                                    line))
        if len(errors) == n_errors:
            groups.append(_group(qid, ids, pos, line, max_candidates))
    if not groups and not errors:
        errors.append(DataError("no records; expected one JSON object per line", path))
    return groups


def load_inputs(input_path: str | Path, queries_path: str | Path, corpus_path: str | Path,
                max_candidates: int | None) -> tuple[list[Group], dict[str, str], dict[str, str]]:
    """Read queries, corpus and groups; raise every problem together.

    Returns:
        ``(groups, queries, corpus)``: queries / corpus map ids to texts.

    Raises:
        DataErrors: missing files, malformed records, ids missing from queries / corpus, empty groups.
    """
    errors: list[DataError] = []
    queries = read_texts(queries_path, "query", errors)
    corpus = read_texts(corpus_path, "doc", errors)
    if errors:  # dangling-id checks against a broken queries / corpus file would only add noise
        raise DataErrors(errors)
    groups = read_groups(input_path, queries, corpus, max_candidates, errors)
    if errors:
        raise DataErrors(errors)
    return groups, queries, corpus


def score_record(group: Group, scores: Iterable[float], teacher_scores: dict[str, Iterable[float]] | None) -> dict:
    """The output record ``{"qid"[, "pos"], "doc_ids", "scores"[, "teacher_scores"]}`` of one group; ``pos`` (the
    positives among ``doc_ids``) is written when the input names positives, as distillation readers expect."""
    record: dict = {"qid": group.qid}
    if group.pos:
        record["pos"] = list(group.pos)
    record.update(doc_ids=list(group.doc_ids), scores=[float(s) for s in scores])
    if teacher_scores is not None:
        record["teacher_scores"] = {name: [float(s) for s in row] for name, row in teacher_scores.items()}
    return record
