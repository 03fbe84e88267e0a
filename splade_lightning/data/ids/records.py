"""Training records that name queries and documents by id, validated and resolved to :class:`TextStore` rows.

Two JSONL layouts, one record per line:

* hard negatives (sentence-transformers ``msmarco-hard-negatives``):
  ``{"qid": ..., "pos": [doc ids], "neg": {system: [doc ids], ...}}``; ``neg`` may also be a flat list, which is
  read as the single system ``"default"``.
* teacher scores: ``{"qid": ..., "doc_ids": [...], "scores": [...]}``, plus an optional ``"pos": [doc ids]`` naming
  the positives (needed only when no hard-negative file does).

Ids may be strings or integers (an integer id means its decimal string). Each file is parsed once, streamed in
batches, its ids resolved with vectorised lookups, and the result (row numbers and scores, CSR-style) cached as a
memory-mapped Arrow file beside the source (see :mod:`.cache` for the cache location and keys; the key also
covers the corpus and query caches). No Python object per id is kept. Every problem in every file is collected and
raised as one :class:`~splade_lightning.errors.DataErrors`, each naming ``file:line`` and the field.
"""

from __future__ import annotations

from pathlib import Path

from splade_lightning.data.ids.arrays import RecordArrays, RecordKind, concat_groups, read_groups, write_groups
from splade_lightning.data.ids.cache import cache_name, cache_root, remove_stale
from splade_lightning.data.ids.parsing import FLUSH_IDS, drop_records, duplicate_queries
from splade_lightning.data.ids.parsing import parse_file as _parse_file
from splade_lightning.data.ids.text_store import TextStore
from splade_lightning.formats.records import missing_path_error
from splade_lightning.problems import ErrorList, OnBadRecord, SkippedRecords, settle

__all__ = ["FLUSH_IDS", "RecordArrays", "RecordKind", "concat_groups", "read_hard_negatives", "read_id_records",
           "read_teacher_scores"]


def read_id_records(paths: list[str | Path], kind: RecordKind, corpus: TextStore, queries: TextStore,
                    cache_dir: str | Path | None = None, on_bad_record: OnBadRecord = "raise",
                    skipped: SkippedRecords | None = None) -> RecordArrays:
    """Read, validate and resolve id records from every file (cached per file; see the module docstring).

    Args:
        paths: JSONL files of one layout.
        kind: ``"hard_negatives"`` or ``"teacher_scores"``.
        corpus: the documents the doc ids refer to.
        queries: the queries the qids refer to.
        cache_dir: cache directory (``None``: beside each file, see :func:`.cache.cache_root`).
        on_bad_record: ``"skip"``: bad records are dropped and counted in ``skipped`` (a file with bad records is
            then never cached, so they are counted on every run); problems of a whole file still raise.
        skipped: receives the skipped records (needed with ``"skip"``).

    Raises:
        DataErrors: every problem in every file: missing file, malformed JSON, missing ``qid``/``pos`` (hard
            negatives) or ``doc_ids``/``scores`` (teacher), ids that are not strings/ints, a qid not in the queries,
            a doc id not in the corpus, a score list whose length differs from ``doc_ids``, non-numeric or
            non-finite scores, a doc id scored twice, a query scored twice in one teacher file.
    """
    if not paths:
        raise ValueError(f"read_id_records: no {kind} files given")
    errors = ErrorList()
    loaded = [_load_file(Path(path), kind, corpus, queries, cache_dir, errors) for path in paths]
    settle(errors, on_bad_record, skipped)
    return concat_groups([groups for groups in loaded if groups is not None])


def _load_file(path: Path, kind: RecordKind, corpus: TextStore, queries: TextStore, cache_dir: str | Path | None,
               errors: ErrorList) -> RecordArrays | None:
    """One file's records from its cache, or parsed, validated and cached; a file with bad records (appended to
    ``errors``, left out of the result) is not cached."""
    if not path.is_file():
        errors.append(missing_path_error(path))
        return None
    root = cache_root(path, cache_dir)
    prefix, name = cache_name(path, kind, [corpus.key, queries.key])
    if not (root / name).is_file():
        before = errors.total
        groups = _parse_file(path, kind, corpus, queries, errors)
        if kind == "teacher_scores":
            groups = drop_records(groups, duplicate_queries(groups, queries, errors))
        if errors.total > before:
            return groups
        write_groups(groups, kind, root / name)
        remove_stale(root, prefix, keep=name)
    groups = read_groups(root / name, kind)  # memory-mapped: page cache, not heap
    groups.sources = [str(path)]
    return groups


def read_hard_negatives(paths: list[str | Path], corpus: TextStore, queries: TextStore,
                        cache_dir: str | Path | None = None, on_bad_record: OnBadRecord = "raise",
                        skipped: SkippedRecords | None = None) -> RecordArrays:
    """Hard-negative records ``{qid, pos: [ids], neg: {system: [ids]} | [ids]}``; see :func:`read_id_records`."""
    return read_id_records(paths, "hard_negatives", corpus, queries, cache_dir, on_bad_record, skipped)


def read_teacher_scores(paths: list[str | Path], corpus: TextStore, queries: TextStore,
                        cache_dir: str | Path | None = None, on_bad_record: OnBadRecord = "raise",
                        skipped: SkippedRecords | None = None) -> RecordArrays:
    """Teacher-score records ``{qid, doc_ids: [...], scores: [...], pos?: [...]}``; see :func:`read_id_records`."""
    return read_id_records(paths, "teacher_scores", corpus, queries, cache_dir, on_bad_record, skipped)
