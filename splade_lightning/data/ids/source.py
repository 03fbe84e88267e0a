"""``IdGroups``: the training source of id-based files (hard negatives and/or teacher scores over a BEIR corpus)."""

from __future__ import annotations

from pathlib import Path

from splade_lightning.data.arguments import (
    TRAIN,
    check_choice,
    check_counts,
    check_files_exist,
    check_score_range,
)
from splade_lightning.data.ids.dataset import IdTrainDataset
from splade_lightning.data.negatives import NegativeSampling
from splade_lightning.data.source import TrainSource
from splade_lightning.problems import OnBadRecord, SkippedRecords
from splade_lightning.types import Route


class IdGroups(TrainSource):
    """Training groups named by id, at MS MARCO scale: a BEIR ``corpus`` and ``queries`` plus ``hard_negatives``
    files and/or ``teacher_scores`` files. Texts stay in memory-mapped Arrow caches (built once, beside each file or
    in ``cache_dir``); nothing per id is held in Python objects.

    Groups are the records of the hard-negative files or, without those, of the teacher-score files. Each epoch a
    group yields its query, one positive (random among its positives) and ``num_negatives`` negatives; with
    ``teacher_scores`` every example carries the teacher scores of its documents (positive first). Batches never
    repeat an id. A group with no negative at all is an error; groups with fewer than ``num_negatives`` usable
    negatives are left out (an info line names them).

    Args:
        corpus: BEIR ``corpus.jsonl`` (``_id``, ``title``, ``text``) the doc ids refer to.
        queries: BEIR ``queries.jsonl`` (``_id``, ``text``) the qids refer to.
        hard_negatives: JSONL files ``{qid, pos: [doc ids], neg: {system: [doc ids]}}`` (``neg`` may be a flat list);
            one training group per record.
        teacher_scores: JSONL files ``{qid, doc_ids: [...], scores: [...]}`` (each query once). With
            ``hard_negatives`` they supply the scores, and negatives without a score are never chosen; alone, each
            record is a group whose candidates are its non-positive ``doc_ids`` and which must name ``pos``.
        negative_systems: systems of the hard-negative files to draw negatives from (``None``: all).
        score_range: ``[min, max]``: only negatives whose teacher score lies in it are candidates (positives are
            kept whatever their score).
        negative_sampling: ``random`` (seeded per epoch) or ``top`` (highest teacher score; file order without
            scores).
        num_negatives: negatives per query and epoch (0 for (query, positive) pairs).
        cache_dir: where the Arrow caches go (``None``: ``.splade_lightning_cache/`` beside each file, or
            ``~/.cache/splade_lightning`` when that directory is read-only).
        router_mapping: which route (encoder) of a query/document router the queries and the documents go through:
            ``{query: <route>, pos: <route>}`` (negatives follow the positive); ``None`` for ``{query: query, pos:
            document}``.

    With ``--data.init_args.on_bad_record skip`` the id files skip a bad line, a record with an id not in
    ``corpus``/``queries``, a bad score list, a second record of a query in a teacher file; such a file is then
    re-parsed on every run instead of cached. Problems in ``corpus``/``queries`` themselves, and group-level ones (a
    query without a teacher record, a positive without a teacher score, a group with no negative), still raise.
    """

    def __init__(self, corpus: str, queries: str, hard_negatives: list[str] | None = None,
                 teacher_scores: list[str] | None = None, negative_systems: list[str] | None = None,
                 score_range: list[float] | None = None, negative_sampling: NegativeSampling = "random",
                 num_negatives: int = 1, cache_dir: str | None = None, router_mapping: dict[str, Route] | None = None):
        self.corpus, self.queries = str(corpus), str(queries)
        self.hard_negatives = [str(f) for f in hard_negatives] if hard_negatives else []
        self.teacher_scores = [str(f) for f in teacher_scores] if teacher_scores else []
        self.negative_systems = list(negative_systems) if negative_systems is not None else None
        self.score_range = list(score_range) if score_range is not None else None
        self.negative_sampling, self.num_negatives = negative_sampling, num_negatives
        self.cache_dir = str(cache_dir) if cache_dir is not None else None
        self.router_mapping = dict(router_mapping) if router_mapping is not None else None

    @property
    def batch_fields(self) -> frozenset[str]:
        """``{"teacher_scores"}`` with ``teacher_scores`` files, else nothing."""
        return frozenset({"teacher_scores"}) if self.teacher_scores else frozenset()

    def problems(self) -> list[str]:
        """See :meth:`TrainSource.problems`."""
        problems = [] if self.hard_negatives or self.teacher_scores else [
            f"{TRAIN}.hard_negatives and/or {TRAIN}.teacher_scores: id-based training data needs at least one of them"]
        files = [("corpus", self.corpus), ("queries", self.queries)]
        problems += check_files_exist(files + [("hard_negatives", p) for p in self.hard_negatives]
                                      + [("teacher_scores", p) for p in self.teacher_scores])
        if self.cache_dir is not None and Path(self.cache_dir).exists() and not Path(self.cache_dir).is_dir():
            problems.append(f"{TRAIN}.cache_dir: {self.cache_dir} exists and is not a directory")
        problems += check_counts({}, {"num_negatives": self.num_negatives}, TRAIN)
        problems += check_choice("negative_sampling", self.negative_sampling, ("random", "top"))
        systems = self.negative_systems
        if systems is not None:
            if not self.hard_negatives:
                problems.append(f"{TRAIN}.negative_systems: selects systems of {TRAIN}.hard_negatives, which is not "
                                "set")
            if not systems or not all(isinstance(s, str) and s for s in systems):
                problems.append(f"{TRAIN}.negative_systems: must be a non-empty list of system names, got {systems}")
        problems += check_score_range(self.score_range, bool(self.teacher_scores), f"{TRAIN}.teacher_scores is not set")
        return problems + super().problems()

    def load(self, seed: int, on_bad_record: OnBadRecord, skipped: SkippedRecords) -> IdTrainDataset:
        """Build (or load from cache) the text stores and the records, then an
        :class:`~splade_lightning.data.ids.dataset.IdTrainDataset`."""
        return IdTrainDataset.from_files(
            self.corpus, self.queries, self.hard_negatives or None, self.teacher_scores or None, self.num_negatives,
            self.negative_systems, self.score_range, self.negative_sampling, seed, self.cache_dir, on_bad_record,
            skipped)
