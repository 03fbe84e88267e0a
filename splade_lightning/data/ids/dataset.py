"""``IdTrainDataset``: training groups from hard-negative and/or teacher-score id files (:mod:`.records`), one
positive and ``num_negatives`` negatives per query and epoch, with teacher scores. Texts are read from memory-mapped
:class:`~splade_lightning.data.ids.text_store.TextStore` s only when an example is built (in the DataLoader workers),
never held in Python lists.

The per-epoch choice is :class:`~splade_lightning.data.groups.GroupDataset`'s, the candidate selection
:mod:`splade_lightning.data.negatives`'.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

import splade_lightning.data.negatives as negatives
from splade_lightning.data.groups import NO_NEGATIVES, GroupDataset, check_options
from splade_lightning.data.ids.records import RecordArrays, read_hard_negatives, read_teacher_scores
from splade_lightning.data.ids.strings import search_sorted
from splade_lightning.data.ids.text_store import TextStore
from splade_lightning.data.negatives import NegativeSampling, csr_owner, select_candidates, take_groups
from splade_lightning.errors import ConfigError, DataError, DataErrors
from splade_lightning.problems import ErrorList, OnBadRecord, SkippedRecords, collect_errors


def _teacher_records(groups: RecordArrays, teacher: RecordArrays, queries: TextStore, errors: ErrorList) -> np.ndarray:
    """(G,) the teacher record scoring each group's query, or -1 (an error each; and one per query scored twice)."""
    order = np.argsort(teacher.query, kind="stable")
    by_query = teacher.query[order]
    same = np.flatnonzero(by_query[1:] == by_query[:-1])
    for a, b in zip(order[same][:errors.room()].tolist(), order[same + 1][:errors.room()].tolist()):
        qid = queries.ids_at([teacher.query[b]])[0]
        errors.append(teacher.error(b, f"query id {qid!r} is scored twice: also at {teacher.where(a)}", "qid"))
    pos = np.minimum(np.searchsorted(by_query, groups.query), max(len(by_query) - 1, 0))
    found = by_query[pos] == groups.query
    for g in np.flatnonzero(~found)[:errors.room()].tolist():
        qid = queries.ids_at([groups.query[g]])[0]
        errors.append(groups.error(g, f"query id {qid!r} has no record in the teacher-score file(s) "
                                      f"{teacher.sources}", "qid"))
    return np.where(found, order[pos], -1)


class IdTrainDataset(GroupDataset):
    """Training groups from id-based files, resolved against memory-mapped corpus and query stores.

    Groups are the records of the hard-negative files (one per record) or, without those, of the teacher-score files
    (whose records must then name their positives in ``pos``). Per epoch each group yields one positive (random among
    ``pos``) and ``num_negatives`` candidates. Candidates are the group's negatives from the ``negative_systems``
    (``None``: all systems) -- or, without hard-negative files, the teacher record's non-positive ``doc_ids`` --
    minus the positives and repeats; with teacher scores, only negatives the teacher scored whose score lies in
    ``score_range`` qualify. ``negative_sampling="top"`` takes the highest-scored candidates (file order without
    scores). With teacher scores every example carries the scores of its docs (positive first).

    Args:
        corpus: the document store the doc ids refer to.
        queries: the query store the qids refer to.
        hard_negatives: hard-negative records (:func:`~splade_lightning.data.ids.records.read_hard_negatives`).
        teacher_scores: teacher-score records (:func:`~splade_lightning.data.ids.records.read_teacher_scores`).
        num_negatives: negatives per example (0 for pairs).
        negative_systems: systems of the hard-negative files to draw from (``None``: all).
        score_range: ``[min, max]``: only negatives whose teacher score lies in it are candidates.
        negative_sampling: ``"random"`` (seeded per epoch) or ``"top"``.
        seed: seed of the per-epoch choices.

    Raises:
        ConfigError: bad or contradictory options.
        DataErrors: each naming ``file:line``: a negative system that no file has, a query with no teacher record
            or scored twice, a positive without a teacher score, a teacher-only record without ``pos``, a group with
            no negative at all while ``num_negatives > 0``.
    """

    def __init__(self, corpus: TextStore, queries: TextStore, hard_negatives: RecordArrays | None = None,
                 teacher_scores: RecordArrays | None = None, num_negatives: int = 1,
                 negative_systems: Sequence[str] | None = None, score_range: Sequence[float] | None = None,
                 negative_sampling: NegativeSampling = "random", seed: int = 42):
        _check_id_options(hard_negatives, teacher_scores, num_negatives, negative_systems, score_range,
                          negative_sampling)
        errors = ErrorList()
        groups = hard_negatives if hard_negatives is not None else teacher_scores
        usable = _usable(groups, negative_systems)
        pos_scores = doc_scores = None
        unscored = 0
        if teacher_scores is not None:
            pos_scores, doc_scores = self._scores(groups, teacher_scores, hard_negatives is None, corpus, queries,
                                                  errors)
            unscored = int((usable & np.isnan(doc_scores)).sum())
        selection = select_candidates(groups.pos_offsets, groups.pos, groups.doc_offsets, groups.docs, doc_scores,
                                      usable, num_negatives, negative_sampling, score_range)
        for g in selection.empty.tolist():
            errors.append(groups.error(g, NO_NEGATIVES, "neg" if hard_negatives is not None else "doc_ids"))
        errors.raise_if_any()
        kept = selection.kept
        pos_offsets, (pos, kept_pos_scores) = take_groups(groups.pos_offsets, kept, groups.pos, pos_scores)
        super().__init__(queries, corpus, groups.query[kept], pos_offsets, pos, kept_pos_scores, selection,
                         num_negatives, negative_sampling, seed, [groups.where(g) for g in selection.skipped.tolist()],
                         unscored)

    @staticmethod
    def _scores(groups: RecordArrays, teacher: RecordArrays, teacher_only: bool, corpus: TextStore, queries: TextStore,
                errors: ErrorList) -> tuple[np.ndarray, np.ndarray]:
        """Teacher scores of every positive and every doc of ``groups``; errors for unscored positives."""
        records = _teacher_records(groups, teacher, queries, errors)
        if teacher_only:
            for g in np.flatnonzero(np.diff(groups.pos_offsets) == 0)[:errors.room()].tolist():
                errors.append(groups.error(g, "missing field; without hard-negative files every teacher-score record "
                                              "must name its positives in 'pos'", "pos"))
        pos_owner = csr_owner(groups.pos_offsets)
        scored = teacher.doc_offsets, teacher.docs, teacher.scores
        pos_scores = pair_scores(*scored, records[pos_owner], groups.pos)
        unscored = np.flatnonzero(np.isnan(pos_scores) & (records[pos_owner] >= 0))
        for i in unscored[:errors.room()].tolist():
            g = int(pos_owner[i])
            errors.append(groups.error(g, f"positive doc id {corpus.ids_at([groups.pos[i]])[0]!r} has no teacher "
                                          f"score (its teacher record is {teacher.where(records[g])}); every chosen "
                                          "doc needs one", "pos"))
        errors.dropped += max(0, unscored.size - errors.room())
        doc_scores = teacher.scores if teacher_only else pair_scores(*scored, records[csr_owner(groups.doc_offsets)],
                                                                     groups.docs)
        return pos_scores, doc_scores

    @classmethod
    def from_files(cls, corpus: str | Path, queries: str | Path, hard_negatives: Sequence[str | Path] | None = None,
                   teacher_scores: Sequence[str | Path] | None = None, num_negatives: int = 1,
                   negative_systems: Sequence[str] | None = None, score_range: Sequence[float] | None = None,
                   negative_sampling: NegativeSampling = "random", seed: int = 42,
                   cache_dir: str | Path | None = None, on_bad_record: OnBadRecord = "raise",
                   skipped: SkippedRecords | None = None) -> IdTrainDataset:
        """Build (or load from cache) the stores and records, then the dataset; all file problems raised together
        (or, with ``on_bad_record="skip"``, bad id records dropped and counted in ``skipped``; see
        :func:`~.records.read_id_records`).

        Raises:
            DataErrors: problems in any file (see :class:`TextStore`, :func:`~.records.read_id_records`).
        """
        _check_id_options(hard_negatives, teacher_scores, num_negatives, negative_systems, score_range,
                          negative_sampling)
        errors: list[DataError] = []
        corpus_store = collect_errors(errors, TextStore, corpus, cache_dir)
        query_store = collect_errors(errors, TextStore, queries, cache_dir, True)
        if errors:
            raise DataErrors(errors)
        options = (cache_dir, on_bad_record, skipped)
        hard = collect_errors(errors, read_hard_negatives, hard_negatives, corpus_store, query_store, *options) \
            if hard_negatives else None
        teacher = collect_errors(errors, read_teacher_scores, teacher_scores, corpus_store, query_store, *options) \
            if teacher_scores else None
        if errors:
            raise DataErrors(errors)
        return cls(corpus_store, query_store, hard, teacher, num_negatives, negative_systems, score_range,
                   negative_sampling, seed)


def _check_id_options(hard_negatives, teacher_scores, num_negatives, negative_systems, score_range,
                      negative_sampling) -> None:
    problems = check_options(num_negatives, negative_sampling, score_range)
    if hard_negatives is None and teacher_scores is None:
        problems.append("give hard_negatives and/or teacher_scores")
    if negative_systems is not None:
        if hard_negatives is None:
            problems.append("negative_systems selects systems of the hard-negative files, but none are given")
        if not isinstance(negative_systems, (list, tuple)) or not negative_systems or not all(
                isinstance(s, str) and s for s in negative_systems):
            problems.append(f"negative_systems must be a non-empty list of system names, got {negative_systems!r}")
    if score_range is not None and teacher_scores is None:
        problems.append("score_range filters on teacher scores, but no teacher_scores are given")
    if problems:
        raise ConfigError("IdTrainDataset: " + "; ".join(problems))


def _usable(groups: RecordArrays, negative_systems: Sequence[str] | None) -> np.ndarray:
    """Which docs of ``groups`` come from a selected system.

    Raises:
        DataError: a selected system is in none of the files.
    """
    if negative_systems is None or groups.systems is None:
        return np.ones(len(groups.docs), bool)
    unknown = [s for s in negative_systems if s not in groups.system_names]
    if unknown:
        raise DataError(f"negative_systems {unknown} not found in {groups.sources}; the systems there are "
                        f"{groups.system_names}")
    codes = [groups.system_names.index(s) for s in negative_systems]
    return np.isin(groups.systems, codes)


def pair_scores(doc_offsets: np.ndarray, docs: np.ndarray, scores: np.ndarray, records: np.ndarray,
                rows: np.ndarray) -> np.ndarray:
    """Score of each (record, row) pair in the scored groups ``doc_offsets``/``docs``/``scores`` (e.g. a teacher's);
    NaN where the record does not score the row or is ``-1``."""
    size = int(max(docs.max(initial=-1), rows.max(initial=-1))) + 1
    keys = csr_owner(doc_offsets) * size + docs
    order = np.argsort(keys)
    keys = keys[order]
    out = np.full(len(rows), np.nan, np.float32)
    if not len(keys):
        return out
    for start in range(0, len(rows), negatives.CHUNK):  # chunks bound the temporary arrays
        part = slice(start, start + negatives.CHUNK)
        wanted = records[part].astype(np.int64) * size + rows[part]
        pos = np.minimum(search_sorted(keys, wanted), len(keys) - 1)
        hit = (records[part] >= 0) & (keys[pos] == wanted)
        out[part][hit] = scores[order[pos[hit]]]
    return out
