"""``DistillationDataModule``: training groups with teacher scores, from id-based files or text-inline scored files."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

from lightning.pytorch.utilities import rank_zero_warn

from splade_lightning.data.datamodule import RetrievalDataModule
from splade_lightning.data.id_dataset import IdTrainDataset, ScoredTextDataset
from splade_lightning.errors import ConfigError, DataError, DataErrors
from splade_lightning.formats.beir import BeirSet
from splade_lightning.formats.records import missing_path_error, train_file_format
from splade_lightning.problems import OnBadRecord
from splade_lightning.types import Route

ID_ARGUMENTS = ("corpus", "queries", "hard_negatives", "teacher_scores")


class DistillationDataModule(RetrievalDataModule):
    """:class:`RetrievalDataModule` plus training data that carries teacher scores, in one of three forms:

    * **id-based** (MS MARCO scale): ``corpus`` + ``queries`` (BEIR JSONL) + ``hard_negatives`` files
      (``{qid, pos: [doc ids], neg: {system: [doc ids]}}``) and/or ``teacher_scores`` files
      (``{qid, doc_ids: [...], scores: [...]}``, plus ``pos: [doc ids]`` when there is no hard-negative file). Texts
      stay in memory-mapped Arrow caches (built once, beside each file or in ``cache_dir``); examples carry teacher
      scores when ``teacher_scores`` is given.
    * **text-inline scored** ``scored_train_files``: ``{query, pos, neg, pos_scores, neg_scores}`` records.
    * plain ``train_files`` (no scores), exactly as in :class:`RetrievalDataModule`.

    Every example has one positive (random among the group's positives, per epoch) and ``num_negatives`` negatives
    chosen per ``(seed, epoch, index)``; batches are duplicate-free by id. A group with no negative at all is an error;
    groups with fewer than ``num_negatives`` usable negatives are skipped with a warning naming them.

    Args:
        train_files: plain (unscored) training files, as in :class:`RetrievalDataModule`; an alternative to the
            scored sources below.
        query_column: ``train_files`` only: column holding the query text.
        positive_column: ``train_files`` only: column holding the positive text(s).
        negative_columns: ``train_files`` only: columns holding hard negatives.
        num_negatives: hard negatives per query and epoch (0 for (query, positive) pairs).
        sampling: ``train_files`` only: ``random`` (seeded) or ``first``.
        router_mapping: which route (encoder) the query and document columns go through (see
            :class:`RetrievalDataModule`); for the scored sources use the keys ``query_column`` and
            ``positive_column`` (negatives follow the positive).
        val_sets: BEIR evaluation sets for validation, e.g. ``[{path: data/scifact, split: test}]``.
        test_sets: BEIR evaluation sets for ``test``.
        tokenizer: tokenizer alias, directory or hub id; ``None`` takes the model's ``tokenizer_name_or_path``.
        max_query_length: queries are truncated to this many tokens.
        max_doc_length: training documents are truncated to this many tokens.
        eval_max_doc_length: evaluation documents are truncated to this many tokens (``None``: ``max_doc_length``).
        batch_size: training queries per batch and device.
        eval_batch_size: texts per evaluation batch.
        num_workers: DataLoader worker processes.
        seed: seed of the batch order and of the per-epoch positive/negative choices.
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
        negative_sampling: scored/id sources: ``random`` (seeded per epoch) or ``top`` (highest teacher score; file
            order without scores).
        scored_train_files: text-inline scored JSONL/parquet/HF files ``{query, pos, neg, pos_scores, neg_scores}``.
        cache_dir: where the Arrow caches of the id-based files go (``None``: ``.splade_lightning_cache/`` beside
            each file, or ``~/.cache/splade_lightning`` when that directory is read-only).
        on_bad_record: ``raise`` or ``skip`` bad records (see :class:`RetrievalDataModule`). Scored files skip like
            training files (plus NaN/inf scores, wrong score-list lengths). Id files skip a bad line, a record with an
            id not in ``corpus``/``queries``, a bad score list, a second record of a query in a teacher file; such a
            file is then re-parsed on every run instead of cached. Problems in ``corpus``/``queries`` themselves, and
            group-level ones (a query without a teacher record, a positive without a teacher score, a group with no
            negative), still raise.
    """

    def __init__(
        self,
        train_files: list[str] | None = None,
        query_column: str = "query",
        positive_column: str = "pos",
        negative_columns: list[str] | None = None,
        num_negatives: int = 1,
        sampling: Literal["random", "first"] = "random",
        router_mapping: dict[str, Route] | None = None,
        val_sets: list[BeirSet] | None = None,
        test_sets: list[BeirSet] | None = None,
        tokenizer: str | None = None,
        max_query_length: int = 32,
        max_doc_length: int = 256,
        eval_max_doc_length: int | None = None,
        batch_size: int = 32,
        eval_batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 42,
        corpus: str | None = None,
        queries: str | None = None,
        hard_negatives: list[str] | None = None,
        teacher_scores: list[str] | None = None,
        negative_systems: list[str] | None = None,
        score_range: list[float] | None = None,
        negative_sampling: Literal["random", "top"] = "random",
        scored_train_files: list[str] | None = None,
        cache_dir: str | None = None,
        on_bad_record: OnBadRecord = "raise",
    ):
        # set before the parent's __init__, which calls self._check_arguments() and raises every problem at once
        self.corpus = str(corpus) if corpus is not None else None
        self.queries = str(queries) if queries is not None else None
        self.hard_negatives = [str(f) for f in hard_negatives] if hard_negatives else []
        self.teacher_scores = [str(f) for f in teacher_scores] if teacher_scores else []
        self.negative_systems = list(negative_systems) if negative_systems is not None else None
        self.score_range = list(score_range) if score_range is not None else None
        self.negative_sampling = negative_sampling
        self.scored_train_files = [str(f) for f in scored_train_files] if scored_train_files else []
        self.cache_dir = str(cache_dir) if cache_dir is not None else None
        try:
            super().__init__(train_files=train_files, query_column=query_column, positive_column=positive_column,
                             negative_columns=negative_columns, num_negatives=num_negatives, sampling=sampling,
                             router_mapping=router_mapping, val_sets=val_sets, test_sets=test_sets,
                             tokenizer=tokenizer, max_query_length=max_query_length, max_doc_length=max_doc_length,
                             eval_max_doc_length=eval_max_doc_length, batch_size=batch_size,
                             eval_batch_size=eval_batch_size, num_workers=num_workers, seed=seed,
                             on_bad_record=on_bad_record)
        except ConfigError as e:
            raise ConfigError(str(e).replace("RetrievalDataModule", "DistillationDataModule", 1)) from None

    @property
    def id_based(self) -> bool:
        """Whether the training data comes from ``corpus``/``queries`` and id files."""
        return any(getattr(self, name) for name in ID_ARGUMENTS)

    def _check_arguments(self) -> list[str]:
        return super()._check_arguments() + self._check_sources() + self._check_sampling()

    def _check_sources(self) -> list[str]:
        given = [name for name, on in (("--data.train_files", bool(self.train_files)),
                                       ("--data.scored_train_files", bool(self.scored_train_files)),
                                       ("--data.corpus/queries/hard_negatives/teacher_scores", self.id_based)) if on]
        problems = []
        if len(given) > 1:
            problems.append(f"{' and '.join(given)} are alternative training sources; give one")
        if self.id_based:
            missing = [f"--data.{n}" for n in ("corpus", "queries") if not getattr(self, n)]
            if not (self.hard_negatives or self.teacher_scores):
                missing.append("--data.hard_negatives and/or --data.teacher_scores")
            if missing:
                problems.append(f"id-based training data needs {', '.join(missing)} as well")
            files = [(name, getattr(self, name)) for name in ("corpus", "queries") if getattr(self, name)]
            files += [("hard_negatives", p) for p in self.hard_negatives]
            files += [("teacher_scores", p) for p in self.teacher_scores]
            problems += [f"--data.{name}: {missing_path_error(path)}" for name, path in files
                         if not Path(path).is_file()]
        for path in self.scored_train_files:
            try:
                train_file_format(path)
            except DataError as e:
                problems.append(f"--data.scored_train_files: {e}")
        if self.cache_dir is not None and Path(self.cache_dir).exists() and not Path(self.cache_dir).is_dir():
            problems.append(f"--data.cache_dir: {self.cache_dir} exists and is not a directory")
        return problems

    def _check_sampling(self) -> list[str]:
        problems = []
        if self.negative_sampling not in ("random", "top"):
            problems.append(f"--data.negative_sampling: must be 'random' or 'top', got {self.negative_sampling!r}")
        systems = self.negative_systems
        if systems is not None:
            if not self.hard_negatives:
                problems.append("--data.negative_systems: selects systems of --data.hard_negatives, which is not set")
            if not systems or not all(isinstance(s, str) and s for s in systems):
                problems.append(f"--data.negative_systems: must be a non-empty list of system names, got {systems}")
        score_range = self.score_range
        if score_range is not None:
            if not (self.teacher_scores or self.scored_train_files):
                problems.append("--data.score_range: filters on teacher scores, but neither --data.teacher_scores "
                                "nor --data.scored_train_files is set")
            numbers = len(score_range) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                    and math.isfinite(v) for v in score_range)
            if not numbers or score_range[0] > score_range[1]:
                problems.append(f"--data.score_range: must be [min, max] with finite min <= max, got {score_range}")
        return problems

    # -- setup ---------------------------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Parse and validate every file the stage needs (caches are built on first use); all problems are raised
        together before any step runs.

        Raises:
            DataErrors: problems in the data files.
            ConfigError: no training source to fit, no tokenizer, or a training set smaller than one global batch.
        """
        if stage == "fit" and self.train_dataset is None and not self.train_files:
            if not (self.scored_train_files or self.id_based):
                raise ConfigError("no training data to fit: give --data.train_files, --data.scored_train_files, or "
                                  "--data.corpus + --data.queries + --data.hard_negatives and/or "
                                  "--data.teacher_scores")
            errors: list[DataError] = []
            self.train_dataset = self._collect(errors, self._load_train)
            if errors:
                if self._eval_data["validate"] is None:  # report evaluation-set problems with the training ones
                    self._eval_data["validate"] = self._load_eval("validate", errors)
                raise DataErrors(errors)
        super().setup(stage)

    def _load_train(self):
        if self.train_files:
            return super()._load_train()
        self._loads += 1
        if self.scored_train_files:
            dataset = ScoredTextDataset.from_files(self.scored_train_files, self.num_negatives, self.score_range,
                                                   self.negative_sampling, self.seed, self.on_bad_record,
                                                   self.skipped_records)
        else:
            dataset = IdTrainDataset.from_files(
                self.corpus, self.queries, self.hard_negatives or None, self.teacher_scores or None,
                self.num_negatives, self.negative_systems, self.score_range, self.negative_sampling, self.seed,
                self.cache_dir, self.on_bad_record, self.skipped_records)
        if (message := dataset.skipped_message()) is not None:
            rank_zero_warn(message)
        return dataset
