"""Evaluation sets in the BEIR layout: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

Every problem is collected and raised together as one :class:`~splade_lightning.errors.DataErrors`. No torch here.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from splade_lightning.errors import DataError, DataErrors
from splade_lightning.formats.beir_hub import hub_rows, is_hub_path
from splade_lightning.formats.records import iter_jsonl, iter_lines, missing_path_error, show
from splade_lightning.problems import OnBadRecord, SkippedRecords, settle


@dataclass
class BeirSet:
    """One evaluation set in the BEIR layout (a YAML list entry such as ``{path: data/scifact, split: test}``).

    Args:
        path: directory holding ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``; or a HF hub dataset
            in the BEIR hub layout, written ``hf://<owner>/<name>`` (e.g. ``hf://BeIR/scifact``: the ``corpus`` and
            ``queries`` configs of that repository, the qrels from ``<owner>/<name>-qrels``; see
            :mod:`splade_lightning.formats.beir_hub`).
        split: which qrels file to use (``qrels/<split>.tsv``).
        name: name used in metric keys (``val/<name>/ndcg@10``); default: the directory's basename.
        min_relevance: minimum qrels grade counted as relevant by binary metrics (MRR, Recall); e.g. 2 for TREC DL.
        max_queries: for quick runs, evaluate on a fixed sample of this many judged queries (``None``: all). The
            sample is drawn with a seed derived from the set's name, so it is the same in every run, and a smaller
            sample is a subset of a larger one. The corpus keeps every document judged (any grade) for the kept
            queries, plus a fixed sample of the other documents such that documents per query stay as in the full
            set (``round(corpus size x kept / judged queries)`` documents, at least the judged ones). Metrics on
            such a subset are approximate: fewer queries, and a smaller corpus with fewer distractors (usually
            higher scores than on the full set).
    """

    path: str
    split: str = "test"
    name: str | None = None
    min_relevance: int = 1
    max_queries: int | None = None

    @property
    def display_name(self) -> str:
        """``name``, or the basename of ``path`` when no name is given."""
        return self.name if self.name else Path(self.path).resolve().name


@dataclass
class EvalData:
    """A loaded evaluation set.

    Attributes:
        name: the set's name (unique among a stage's sets).
        corpus: doc id -> text (``title + " " + text`` when the title is non-empty, else ``text``; may be empty).
        queries: query id -> text, only queries with at least one qrels row.
        qrels: query id -> {doc id: integer grade}, grade-0 (judged non-relevant) rows included.
        min_relevance: minimum grade counted as relevant by binary metrics.
        path: the BEIR directory (or ``hf://<owner>/<name>``).
        split: the qrels split.
        suite: the suite the set belongs to, or ``None``.
    """

    name: str
    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    min_relevance: int = 1
    path: str = ""
    split: str = "test"
    suite: str | None = None


def parse_beir_record(obj: object, path: str | Path, line: int,
                      errors: list[DataError]) -> tuple[str, str, str] | None:
    """``(id, text, title)`` of one ``corpus.jsonl`` / ``queries.jsonl`` record (an integer id as its decimal string, a
    missing or null title as ``""``), or ``None`` after appending to ``errors``: not an object, a missing ``_id`` or
    ``text``, a value that is not a string, an empty id."""
    if not isinstance(obj, dict):
        errors.append(DataError(f"expected a JSON object, got {type(obj).__name__} {show(obj)}", path, line))
        return None
    missing = [f for f in ("_id", "text") if f not in obj]
    for field in missing:
        errors.append(DataError(f"missing field; this record has fields {sorted(obj)}", path, line, field))
    if missing:
        return None
    key, text, title = obj["_id"], obj["text"], obj.get("title") or ""
    if isinstance(key, int) and not isinstance(key, bool):
        key = str(key)
    bad = [(f, v) for f, v in (("_id", key), ("text", text), ("title", title)) if not isinstance(v, str)]
    for field, value in bad:
        errors.append(DataError(f"expected a string, got {type(value).__name__} {show(value)}", path, line, field))
    if bad:
        return None
    if not key:
        errors.append(DataError("empty id", path, line, "_id"))
        return None
    return key, text, title


def beir_text(text: str, title: str) -> str:
    """The text of a BEIR record: ``title + " " + text`` when the title is non-empty, else ``text``."""
    return f"{title} {text}" if title.strip() else text


def iter_id_texts(path: str | Path, kind: str, errors: list[DataError],
                  rows: Iterable[tuple[int, object]] | None = None,
                  rejected: set[str] | None = None) -> Iterator[tuple[str, str]]:
    """Stream ``(id, text)`` of a ``corpus.jsonl`` (kind ``doc``) or ``queries.jsonl`` (kind ``query``), appending
    every bad record to ``errors`` (malformed, duplicate id, empty query text) instead of raising.

    Args:
        path: the file, named in the errors.
        kind: ``"doc"`` or ``"query"``.
        errors: receives the problems.
        rows: ``(line, record)`` pairs to read instead of the JSONL lines of ``path`` (e.g. the rows of a HF dataset).
        rejected: receives the ids of records that were rejected (so that a later reference to them can say so).
    """
    rejected = set() if rejected is None else rejected
    first_line: dict[str, int] = {}
    for line, obj in rows if rows is not None else iter_jsonl(path, errors):
        parsed = parse_beir_record(obj, path, line, errors)
        if parsed is None:
            if isinstance(obj, dict) and isinstance(obj.get("_id"), (str, int)):
                rejected.add(str(obj["_id"]))
            continue
        key, text, title = parsed
        if key in first_line:
            errors.append(DataError(f"duplicate id {key!r} (first seen on line {first_line[key]})", path, line, "_id"))
            continue
        first_line[key] = line
        if kind == "query" and not text.strip():
            errors.append(DataError(f"empty query text for id {key!r}; expected non-empty text", path, line, "text"))
            rejected.add(key)
            continue
        yield key, beir_text(text, title)


def read_id_text(path: Path, kind: str, errors: list[DataError], rejected: set[str] | None = None) -> dict[str, str]:
    """Read ``corpus.jsonl`` (kind ``doc``) or ``queries.jsonl`` (kind ``query``) into id -> text
    (see :func:`iter_id_texts`)."""
    return dict(iter_id_texts(path, kind, errors, rejected=rejected))


def _absent(what: str, key: str, name: str, rejected: set[str]) -> str:
    if key in rejected:
        return f"{what} id {key!r} has no valid record in {name} (its record there was rejected)"
    return f"{what} id {key!r} is not in {name}"


def parse_grade(value: str) -> int | None:
    """A qrels grade as an int, or None when the field is not an integer."""
    try:
        return int(value)
    except ValueError:
        return None


def read_qrels_rows(path: str | Path, queries: dict[str, str], corpus: dict[str, str], errors: list[DataError],
                    rejected: tuple[set[str], set[str]] = (set(), set()),
                    rows: Iterable[tuple[int, str]] | None = None) -> dict[str, dict[str, int]]:
    """Read ``query-id<TAB>corpus-id<TAB>score`` rows (an optional header line first) into qid -> {doc id: grade};
    a bad row is appended to ``errors`` and left out (of two judgments of one pair the first is kept).

    Args:
        path: the qrels file (named in the errors).
        queries: the valid queries; corpus: the valid documents.
        errors: receives the problems.
        rejected: ids of rejected (query, corpus) records, so that a reference to one can say so.
        rows: ``(line, tab-joined row)`` pairs to read instead of the lines of ``path`` (e.g. a HF dataset's rows).
    """
    qrels: dict[str, dict[str, int]] = {}
    for line, raw in rows if rows is not None else iter_lines(path, errors):
        if not raw.strip():
            continue
        fields = raw.split("\t")
        if line == 1 and len(fields) == 3 and parse_grade(fields[2]) is None:
            continue  # header: query-id corpus-id score
        if len(fields) != 3:
            errors.append(DataError(f"expected 3 tab-separated fields (query-id, corpus-id, score), found "
                                    f"{len(fields)}: {show(raw)}", path, line))
            continue
        qid, did, score = fields
        grade = parse_grade(score)
        if grade is None:
            errors.append(DataError(f"expected an integer grade, got {score!r}", path, line, "score"))
        if qid not in queries:
            errors.append(DataError(_absent("query", qid, "queries.jsonl", rejected[0]), path, line, "query-id"))
        if did not in corpus:
            errors.append(DataError(_absent("corpus", did, "corpus.jsonl", rejected[1]), path, line, "corpus-id"))
        if grade is not None and qid in queries and did in corpus:
            if did in qrels.get(qid, {}):
                errors.append(DataError(f"duplicate judgment for ({qid!r}, {did!r})", path, line))
                continue
            qrels.setdefault(qid, {})[did] = grade
    return qrels


def find_beir_files(root: Path, split: str, errors: list[DataError]) -> tuple[Path, Path, Path] | None:
    """The three BEIR files, or ``None`` after appending an error for each missing one."""
    if not root.is_dir():
        errors.append(missing_path_error(root, "BEIR directory"))
        return None
    corpus, queries, qrels = root / "corpus.jsonl", root / "queries.jsonl", root / "qrels" / f"{split}.tsv"
    for path in (corpus, queries):
        if not path.is_file():
            errors.append(missing_path_error(path))
    if not qrels.is_file():
        splits = sorted(p.stem for p in (root / "qrels").glob("*.tsv")) if (root / "qrels").is_dir() else []
        errors.append(DataError(f"qrels file for split {split!r} not found; splits present under qrels/: {splits}",
                                path=qrels))
    if not (corpus.is_file() and queries.is_file() and qrels.is_file()):
        return None
    return corpus, queries, qrels


def load_beir(path: str | Path, split: str = "test", name: str | None = None, min_relevance: int = 1,
              on_bad_record: OnBadRecord = "raise", skipped: SkippedRecords | None = None) -> EvalData:
    """Load and validate a BEIR directory.

    Only queries with at least one qrels row are kept (BEIR convention); grade-0 rows are kept in ``qrels``.
    Empty documents are allowed.

    With ``on_bad_record="skip"`` a bad record is left out and counted in ``skipped``: a bad corpus or query line
    (malformed, missing field, empty query text; of two records with one id the first is kept), and a bad qrels row
    (wrong field count, non-integer grade, a query or doc id that is not, or no longer, in ``queries.jsonl`` /
    ``corpus.jsonl``, the second judgment of a pair). Missing files and a set left with no qrels row still raise.

    Args:
        path: the BEIR directory.
        split: qrels split (``qrels/<split>.tsv``).
        name: dataset name; default: the directory's basename.
        min_relevance: minimum grade counted as relevant by binary metrics.
        on_bad_record: ``"raise"`` or ``"skip"`` (see above).
        skipped: receives the skipped records (needed with ``"skip"``).

    Returns:
        The validated :class:`EvalData`.

    Raises:
        DataErrors: every problem found (missing files, lines not valid UTF-8, malformed lines, missing/duplicate
            ids, empty queries, non-integer grades, duplicate judgments, qrels ids absent from the queries or the
            corpus).
    """
    errors: list[DataError] = []
    root = Path(path)
    found = find_beir_files(root, split, errors)
    if found is None:
        raise DataErrors(errors)
    rejected: tuple[set[str], set[str]] = (set(), set())  # ids of rejected (query, corpus) records
    corpus = read_id_text(found[0], "doc", errors, rejected[1])
    queries = read_id_text(found[1], "query", errors, rejected[0])
    qrels = read_qrels_rows(found[2], queries, corpus, errors, rejected)
    if not qrels and not any(e.scope == "file" for e in errors):
        errors.append(DataError("no usable qrels rows; expected at least one judged query", path=found[2]))
    settle(errors, on_bad_record, skipped)
    name = name or BeirSet(str(path)).display_name
    kept = {qid: text for qid, text in queries.items() if qid in qrels}
    return EvalData(name, corpus, kept, qrels, min_relevance, str(path), split)


def load_hub_beir(path: str, split: str = "test", name: str | None = None, min_relevance: int = 1,
                  on_bad_record: OnBadRecord = "raise", skipped: SkippedRecords | None = None) -> EvalData:
    """Load and validate a hub dataset ``hf://<owner>/<name>`` in the BEIR hub layout
    (:mod:`splade_lightning.formats.beir_hub`) as :func:`load_beir` does a directory (same arguments; the default
    ``name`` is ``<name>``). Errors name ``hf://<owner>/<name>/corpus:<row>`` where a directory's name
    ``corpus.jsonl:<line>``.

    Raises:
        ConfigError: a malformed id. DataError: the dataset cannot be loaded. DataErrors: bad rows.
    """
    hub = hub_rows(path, split)
    errors: list[DataError] = []
    rejected: tuple[set[str], set[str]] = (set(), set())
    corpus = dict(iter_id_texts(hub.names["corpus"], "doc", errors, enumerate(hub.corpus, 1), rejected[1]))
    queries = dict(iter_id_texts(hub.names["queries"], "query", errors, enumerate(hub.queries, 1), rejected[0]))
    rows = ((i, f"{r['query-id']}\t{r['corpus-id']}\t{r['score']}") for i, r in enumerate(hub.qrels, 1))
    qrels = read_qrels_rows(hub.names["qrels"], queries, corpus, errors, rejected, rows)
    if not qrels and not errors:
        errors.append(DataError("no usable qrels rows; expected at least one judged query", path=hub.names["qrels"]))
    settle(errors, on_bad_record, skipped)
    kept = {qid: text for qid, text in queries.items() if qid in qrels}
    return EvalData(name or path.rsplit("/", 1)[1], corpus, kept, qrels, min_relevance, path, split)


def load_beir_set(beir_set: BeirSet, on_bad_record: OnBadRecord = "raise",
                  skipped: SkippedRecords | None = None) -> EvalData:
    """Load a :class:`BeirSet` with :func:`load_beir` (a ``hf://`` path with :func:`load_hub_beir`).

    Raises:
        DataErrors: see :func:`load_beir`. DataError: a hub dataset that cannot be loaded.
    """
    load = load_hub_beir if is_hub_path(beir_set.path) else load_beir
    data = load(beir_set.path, beir_set.split, beir_set.display_name, beir_set.min_relevance, on_bad_record, skipped)
    data.suite = getattr(beir_set, "suite", None)  # a suite file's sets (formats.suite.SuiteEntry) know their suite
    return data if beir_set.max_queries is None else subsample(data, beir_set.max_queries)


def _shuffled(ids: Iterable[str], seed: str) -> list[str]:
    order = sorted(ids)
    random.Random(seed).shuffle(order)
    return order


def subsample(data: EvalData, max_queries: int) -> EvalData:
    """``data`` reduced to ``max_queries`` judged queries and a corpus of the same documents-per-query ratio (the
    rule is in :class:`BeirSet`'s ``max_queries``); ``data`` itself when it has no more queries than that.

    Deterministic: the queries and the extra documents are the first of sorted ids shuffled with a seed made from
    ``data.name``; the judged documents of the kept queries are always kept.
    """
    if len(data.queries) <= max_queries:
        return data
    kept = set(_shuffled(data.queries, f"max_queries:{data.name}:queries")[:max_queries])
    judged = {did for qid in kept for did in data.qrels[qid]}
    size = max(len(judged), round(len(data.corpus) * max_queries / len(data.queries)))
    others = [did for did in _shuffled(data.corpus, f"max_queries:{data.name}:corpus") if did not in judged]
    docs = judged | set(others[:size - len(judged)])
    return EvalData(data.name, {did: text for did, text in data.corpus.items() if did in docs},
                    {qid: text for qid, text in data.queries.items() if qid in kept},
                    {qid: grades for qid, grades in data.qrels.items() if qid in kept}, data.min_relevance, data.path,
                    data.split, data.suite)
