"""``RetrievalDataModule``: training triplets with no-duplicate batches, and BEIR evaluation sets (Lightning side)."""

from __future__ import annotations

from typing import Literal

from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import rank_zero_warn
from torch.utils.data import DataLoader

from splade_lightning.data import arguments as args
from splade_lightning.data.collate import EncodeCollator, EvalCollator, TrainCollator
from splade_lightning.data.datasets import EncodeDataset, TrainDataset
from splade_lightning.data.readers import read_train_records
from splade_lightning.data.resumable_loader import ResumableDataLoader
from splade_lightning.data.sampler import EvalBatchSampler, NoDuplicatesBatchSampler
from splade_lightning.errors import ConfigError, DataError, DataErrors
from splade_lightning.formats.beir import BeirSet, EvalData, load_beir_set
from splade_lightning.hub import load_tokenizer
from splade_lightning.problems import OnBadRecord, SkippedRecords, collect_errors
from splade_lightning.types import Route

EvalStage = Literal["validate", "test"]


class RetrievalDataModule(LightningDataModule):
    """Training data for learned sparse retrievers, and BEIR-format evaluation sets.

    Training batches come from :class:`~splade_lightning.data.sampler.NoDuplicatesBatchSampler` (no text twice in a
    batch) and :class:`~splade_lightning.data.collate.TrainCollator`. Each evaluation set gets one DataLoader that
    yields all its queries, then all its documents (longest first), as :class:`~splade_lightning.types.EncodeBatch`.
    Evaluation loaders are never sharded: under DDP every rank encodes every text.

    Args:
        train_files: training files: JSONL, TSV with a header row, ``.parquet``, or a HF ``datasets`` directory saved
            with ``save_to_disk``. Required to fit.
        query_column: column holding the query text.
        positive_column: column holding the positive text, or a list of positives (one is used per epoch).
        negative_columns: columns holding hard negatives (a text or a list of texts each); ``None`` for none.
        num_negatives: hard negatives per query and epoch (0 for (query, positive) pairs; needs no negative columns).
        sampling: how the positive and negatives are chosen each epoch: ``random`` (seeded) or ``first``.
        router_mapping: which route (encoder) of a query/document router each training column goes through, e.g.
            ``{query: query, pos: document, neg: document}`` (the default when ``None``). Give every column; the
            positive and negative columns must share one route. Evaluation always routes BEIR queries to ``query``
            and the corpus to ``document``. Models with a single encoder use it for both routes.
        val_sets: BEIR evaluation sets for validation, e.g. ``[{path: data/scifact, split: test}]``.
        test_sets: BEIR evaluation sets for ``test``.
        tokenizer: tokenizer alias, directory or hub id; ``None`` takes the model's ``tokenizer_name_or_path``.
        max_query_length: queries are truncated to this many tokens.
        max_doc_length: training documents are truncated to this many tokens.
        eval_max_doc_length: evaluation documents are truncated to this many tokens (``None``: ``max_doc_length``);
            also the document length a model exported after ``fit`` uses.
        batch_size: training queries per batch and device.
        eval_batch_size: texts per evaluation batch.
        num_workers: DataLoader worker processes.
        seed: seed of the batch order and of the per-epoch positive/negative choices.
        on_bad_record: ``raise`` (default): every problem of every data file (training files and evaluation sets) is
            raised together before training, each with its file:line. ``skip``: bad records are dropped and counted
            instead (a warning lists the counts per file and kind with the first examples; ``data/skipped_records`` is
            logged); problems of a whole file (missing file, bad header, no records) still raise. Evaluation sets:
            a bad corpus/query line or qrels row is dropped, and so is a qrels row whose query or document was dropped
            or never existed.
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
        on_bad_record: OnBadRecord = "raise",
    ):
        super().__init__()
        self.train_files = [str(f) for f in train_files] if train_files else []
        self.query_column, self.positive_column = query_column, positive_column
        self.negative_columns = list(negative_columns or [])
        self.num_negatives, self.sampling = num_negatives, sampling
        self.router_mapping = dict(router_mapping) if router_mapping is not None else None
        self.tokenizer = tokenizer
        self.max_query_length, self.max_doc_length = max_query_length, max_doc_length
        self.eval_max_doc_length = max_doc_length if eval_max_doc_length is None else eval_max_doc_length
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers, self.seed = num_workers, seed
        self.on_bad_record = on_bad_record
        self.skipped_records = SkippedRecords()
        self._loads, self._reported_loads = 0, 0  # file loads so far / at the last skip report
        problems: list[str] = []
        self.sets = {"validate": args.as_beir_sets(val_sets, "val_sets", problems),
                     "test": args.as_beir_sets(test_sets, "test_sets", problems)}
        problems += self._check_arguments()
        problems += args.check_paths(self.train_files, [("val_sets", self.sets["validate"]),
                                                        ("test_sets", self.sets["test"])])
        if problems:
            raise ConfigError("invalid RetrievalDataModule arguments:\n  " + "\n  ".join(problems))
        self.train_dataset: TrainDataset | None = None
        self._eval_data: dict[str, list[EvalData] | None] = {"validate": None, "test": None}
        self._tokenizer = None
        self._sampler: NoDuplicatesBatchSampler | None = None

    def _check_arguments(self) -> list[str]:
        positive = {"max_query_length": self.max_query_length, "max_doc_length": self.max_doc_length,
                    "eval_max_doc_length": self.eval_max_doc_length, "batch_size": self.batch_size,
                    "eval_batch_size": self.eval_batch_size}
        problems = args.check_counts(positive, {"num_negatives": self.num_negatives, "num_workers": self.num_workers})
        if self.sampling not in ("random", "first"):
            problems.append(f"--data.sampling: must be 'random' or 'first', got {self.sampling!r}")
        if self.on_bad_record not in ("raise", "skip"):
            problems.append(f"--data.on_bad_record: must be 'raise' or 'skip', got {self.on_bad_record!r}")
        if self.train_files:  # evaluation only: the training options are unused
            problems += args.check_negatives(self.negative_columns, self.num_negatives)
        columns = [self.query_column, self.positive_column, *self.negative_columns]
        if len(set(columns)) != len(columns) or not all(isinstance(c, str) and c for c in columns):
            problems.append(f"--data.query_column/positive_column/negative_columns: must be distinct non-empty names, "
                            f"got {columns}")
        return problems + args.check_router_mapping(self.router_mapping, columns)

    @property
    def routes(self) -> tuple[str, str]:
        """(route of the query column, route of the document columns)."""
        if self.router_mapping is None:
            return "query", "document"
        return self.router_mapping[self.query_column], self.router_mapping[self.positive_column]

    # -- setup ---------------------------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Parse and validate every file the stage needs; all problems are raised together before any step runs.

        Raises:
            DataErrors: problems in the data files.
            ConfigError: no training files to fit, no tokenizer, or a training set smaller than one global batch.
        """
        errors: list[DataError] = []
        if stage == "fit" and self.train_dataset is None:
            if not self.train_files:
                raise ConfigError("--data.train_files: required to fit, got none")
            self.train_dataset = self._collect(errors, self._load_train)
        for eval_stage in {"fit": ["validate"], "validate": ["validate"], "test": ["test"]}.get(stage, []):
            if self._eval_data[eval_stage] is None:
                self._eval_data[eval_stage] = self._load_eval(eval_stage, errors)
        if errors:
            raise DataErrors(errors)
        self._report_skipped()
        self._get_tokenizer()
        if stage == "fit":
            self._check_train_size()

    _collect = staticmethod(collect_errors)

    def _report_skipped(self) -> None:
        """With ``on_bad_record: skip``: warn with the skip summary and log ``data/skipped_records`` (each time a
        setup loaded something new)."""
        if self.on_bad_record != "skip" or self._reported_loads == self._loads:
            return
        self._reported_loads = self._loads
        if self.skipped_records.total:
            rank_zero_warn(self.skipped_records.summary())
        if self.trainer is not None:
            for logger in self.trainer.loggers:
                logger.log_metrics({"data/skipped_records": float(self.skipped_records.total)},
                                   step=self.trainer.global_step)

    def _load_train(self) -> TrainDataset:
        self._loads += 1
        records = read_train_records(self.train_files, self.query_column, self.positive_column, self.negative_columns,
                                     self.on_bad_record, self.skipped_records)
        dataset = TrainDataset(records, self.num_negatives, self.sampling, self.seed)
        if (message := dataset.skipped_message()) is not None:
            rank_zero_warn(message)
        return dataset

    def _load_eval(self, stage: EvalStage, errors: list[DataError]) -> list[EvalData]:
        self._loads += 1
        loaded = [self._collect(errors, load_beir_set, beir_set, self.on_bad_record, self.skipped_records)
                  for beir_set in self.sets[stage]]
        return [data for data in loaded if data is not None]

    def _world(self) -> tuple[int, int]:
        if self.trainer is None:
            return 1, 0
        return self.trainer.world_size, self.trainer.global_rank

    def _check_train_size(self) -> None:
        dataset, (world, _) = self.train_dataset, self._world()
        if len(dataset) < self.batch_size * world:
            skipped = f" ({len(dataset.skipped)} more were skipped for too few negatives)" if dataset.skipped else ""
            raise ConfigError(f"--data.batch_size: the training set has {len(dataset)} usable record(s){skipped}, "
                              f"fewer than one batch of {self.batch_size} x {world} device(s); add data or lower "
                              "batch_size")
        self._train_sampler().global_batches(dataset.epoch)  # raises DataError if batches cannot be filled

    def _get_tokenizer(self):
        name = self.tokenizer
        if name is None:
            module = self.trainer.lightning_module if self.trainer is not None else None
            name = getattr(module, "tokenizer_name_or_path", None)
            if name is None:
                raise ConfigError("--data.tokenizer: not set, and there is no LightningModule with a "
                                  "`tokenizer_name_or_path` to take it from; give an alias, a directory or a hub id")
        if self._tokenizer is None or self._tokenizer[0] != name:
            self._tokenizer = (name, load_tokenizer(name))
        return self._tokenizer[1]

    # -- dataloaders ---------------------------------------------------------------------------------------------------
    def _train_sampler(self) -> NoDuplicatesBatchSampler:
        # Built afresh on every call: Lightning can only re-instantiate (under DDP) a batch sampler created inside a
        # *_dataloader hook, where it records the __init__ arguments; one made in setup() would be rebuilt wrongly.
        world, rank = self._world()
        sampler = NoDuplicatesBatchSampler(self.train_dataset, self.batch_size, drop_last=True, seed=self.seed,
                                           num_replicas=world, rank=rank)
        if self._sampler is not None:
            sampler.copy_cache_from(self._sampler)  # the batches already computed by the check in setup()
        self._sampler = sampler
        return sampler

    def train_dataloader(self) -> ResumableDataLoader:
        """Training batches (:class:`~splade_lightning.types.TrainBatch`), duplicate-free, sharded by rank.

        The loader is a :class:`~splade_lightning.data.resumable_loader.ResumableDataLoader`: checkpoints record how
        many batches of the epoch were consumed, and a resumed run continues with the next batch of the same order.

        The epoch is set from ``trainer.current_epoch`` here because Lightning creates the first iterator (and so
        the worker processes) before it calls ``set_epoch``; this keeps a resumed run on the right epoch.
        ``persistent_workers`` stays off so that each epoch's workers copy the dataset after its epoch is set.
        """
        if self.train_dataset is None:
            self.setup("fit")
        if self.trainer is not None:
            self.train_dataset.set_epoch(self.trainer.current_epoch)
        query_route, doc_route = self.routes
        collate = TrainCollator(self._get_tokenizer(), self.max_query_length, self.max_doc_length,
                                query_route=query_route, doc_route=doc_route)
        return ResumableDataLoader(self.train_dataset, batch_sampler=self._train_sampler(), collate_fn=collate,
                                   num_workers=self.num_workers, persistent_workers=False)

    def _eval_loaders(self, stage: EvalStage) -> list[DataLoader]:
        tokenizer = self._get_tokenizer()
        loaders = []
        for data in self.eval_datasets(stage):
            dataset = EncodeDataset(data)
            collate = EvalCollator(EncodeCollator(tokenizer, self.max_query_length, "query", data.name),
                                   EncodeCollator(tokenizer, self.eval_max_doc_length, "doc", data.name))
            loaders.append(DataLoader(dataset, batch_sampler=EvalBatchSampler(dataset, self.eval_batch_size),
                                      collate_fn=collate, num_workers=self.num_workers))
        return loaders

    def val_dataloader(self) -> list[DataLoader]:
        """One loader per validation set: all queries, then all documents, as ``EncodeBatch`` (never sharded)."""
        return self._eval_loaders("validate")

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per test set: all queries, then all documents, as ``EncodeBatch`` (never sharded)."""
        return self._eval_loaders("test")

    # -- accessors for the LightningModule -----------------------------------------------------------------------------
    def eval_set_names(self, stage: EvalStage) -> list[str]:
        """Names of the evaluation sets of ``stage`` (``"validate"`` or ``"test"``), in dataloader order."""
        return [s.display_name for s in self._stage_sets(stage)]

    def eval_datasets(self, stage: EvalStage) -> list[EvalData]:
        """The loaded evaluation sets of ``stage``, in dataloader order (loaded on first use)."""
        self._stage_sets(stage)
        if self._eval_data[stage] is None:
            errors: list[DataError] = []
            self._eval_data[stage] = self._load_eval(stage, errors)
            if errors:
                self._eval_data[stage] = None
                raise DataErrors(errors)
        return self._eval_data[stage]

    def eval_data(self, stage: EvalStage, dataloader_idx: int) -> EvalData:
        """The evaluation set behind dataloader ``dataloader_idx`` of ``stage`` (``"validate"`` or ``"test"``)."""
        datasets = self.eval_datasets(stage)
        if not 0 <= dataloader_idx < len(datasets):
            raise IndexError(f"{stage} has {len(datasets)} evaluation set(s); no dataloader_idx {dataloader_idx}")
        return datasets[dataloader_idx]

    def _stage_sets(self, stage: str) -> list[BeirSet]:
        if stage not in self.sets:
            raise ValueError(f"stage must be 'validate' or 'test', got {stage!r}")
        return self.sets[stage]
