"""``RetrievalDataModule``: training batches from an injected source, and BEIR evaluation sets (Lightning side)."""

from __future__ import annotations

from typing import Literal

from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch.utils.data import DataLoader

from splade_lightning.data.arguments import DATA, as_beir_sets, check_choice, check_counts, check_eval_paths
from splade_lightning.data.collate import TrainCollator
from splade_lightning.data.datasets import TrainingData
from splade_lightning.data.eval_loaders import eval_loader
from splade_lightning.data.eval_set_types import register_eval_set_types
from splade_lightning.data.resumable_loader import ResumableDataLoader
from splade_lightning.data.sampler import NoDuplicatesBatchSampler
from splade_lightning.data.source import TrainSource
from splade_lightning.data.sts_arguments import as_sts_sets
from splade_lightning.data.sts_loader import sts_loader
from splade_lightning.errors import ConfigError, DataError, DataErrors
from splade_lightning.formats.beir import BeirSet, EvalData, load_beir_set
from splade_lightning.formats.sts import StsData, StsSet, load_sts_set
from splade_lightning.formats.suite import SuiteRef
from splade_lightning.hub import load_tokenizer
from splade_lightning.problems import OnBadRecord, SkippedRecords, collect_errors
from splade_lightning.prompts import check_prompts

register_eval_set_types()  # a list of sets given later replaces the earlier list whole (see the module)

EvalStage = Literal["validate", "test"]
#: the evaluation sets each Lightning stage loads
STAGE_SETS = {"fit": ["validate"], "validate": ["validate"], "test": ["test"]}
NO_TOKENIZER = (f"{DATA}.tokenizer: not set; `splade-lightning fit` fills it from the model "
                "(model.tokenizer_name_or_path), a data module built in Python needs it: give an alias, a directory "
                "or a hub id")
NO_TRAIN = (f"{DATA}.train: required to fit, got none; give a training source, e.g. {{class_path: "
            "splade_lightning.data.TextTriplets, init_args: {files: [train.jsonl], negative_columns: [neg]}}")


class RetrievalDataModule(LightningDataModule):
    """Training data for learned sparse retrievers, from one injected source, and BEIR-format evaluation sets.

    Training batches (:class:`~splade_lightning.types.TrainBatch`) never repeat a text (or an id) within a global
    batch (:class:`~splade_lightning.data.sampler.NoDuplicatesBatchSampler`), are sharded by rank under DDP, and
    resume exactly mid-epoch (:class:`~splade_lightning.data.resumable_loader.ResumableDataLoader`). Each evaluation
    set gets one DataLoader that yields all its queries, then all its documents (longest first), as
    :class:`~splade_lightning.types.EncodeBatch` carrying the set itself (``batch.eval_set``). Evaluation loaders are
    never sharded: under DDP every rank encodes every text.

    Args:
        train: where the training examples come from (required to fit; ``None`` to only validate or test):
            :class:`~splade_lightning.data.TextTriplets` (plain-text query/positive/negative records),
            :class:`~splade_lightning.data.ScoredGroups` (text-inline groups with teacher scores) or
            :class:`~splade_lightning.data.IdGroups` (hard negatives and/or teacher scores by id over a BEIR
            corpus, MS MARCO scale). In YAML: ``train: {class_path: splade_lightning.data.TextTriplets, init_args:
            {files: [train.jsonl], negative_columns: [neg]}}``.
        val_sets: BEIR evaluation sets for validation, e.g. ``[{path: data/scifact, split: test}]``; add
            ``max_queries: 200`` to a set for quick runs on a fixed sample of its queries (approximate metrics; the
            rule is in ``--data.val_sets.help``). ``path: hf://BeIR/scifact`` names a hub dataset (BEIR hub layout,
            through ``datasets.load_dataset``). An entry ``{suite: data/suites/bundled.yaml}`` (or a preset name,
            ``{suite: bundled}``) stands for every set of that suite file, each with its own split and
            ``min_relevance``; the suite's mean is logged as ``val/<suite>/mean/ndcg@10`` etc.
        test_sets: BEIR evaluation sets (or suites) for ``test``.
        tokenizer: tokenizer alias, directory or hub id. ``splade-lightning fit`` (and ``validate``/``test``) fills it
            from the model (``model.tokenizer_name_or_path``); give it when building the data module in Python.
        max_query_length: training queries are truncated to this many tokens.
        max_doc_length: training documents are truncated to this many tokens.
        eval_max_query_length: evaluation queries are truncated to this many tokens (``None``: ``max_query_length``);
            also the query length a model exported after ``fit`` uses. Set it above ``max_query_length`` when the
            model will see longer queries than it trained on: a query cut at training length loses its tail.
        eval_max_doc_length: evaluation documents are truncated to this many tokens (``None``: ``max_doc_length``);
            also the document length a model exported after ``fit`` uses.
        batch_size: training queries per batch and device.
        eval_batch_size: texts per evaluation batch.
        num_workers: DataLoader worker processes.
        seed: seed of the batch order and of the per-epoch positive/negative choices.
        on_bad_record: ``raise`` (default): every problem of every data file (training files and evaluation sets) is
            raised together before training, each with its file:line. ``skip``: bad records are dropped and counted
            instead (a warning lists the counts per file and kind with the first examples; ``data/skipped_records`` is
            logged); problems of a whole file (missing file, bad header, no records) still raise. Scored files also
            skip NaN/inf scores and wrong score-list lengths; for id files see ``IdGroups``. Evaluation sets: a bad
            corpus/query line or qrels row is dropped, and so is a qrels row whose query or document was dropped or
            never existed.
        prompts: ``{route: text}`` prepended to the queries (``query``) and documents (``document``) of training and
            evaluation batches before tokenisation (:mod:`splade_lightning.prompts`). ``splade-lightning fit`` (and
            ``validate``/``test``) fills it from the model (``model.init_args.prompts``, which the exported model
            keeps); give it when building the data module in Python.
        val_sts_sets: STS sets for validation (sentence pairs with gold scores,
            :class:`~splade_lightning.formats.sts.StsSet`), e.g. ``[{path: data/stsb-cc/dev.jsonl}]``: both
            sentences are encoded as documents, and ``val/<name>/spearman``, ``pearson``, ``active_dims`` and
            ``sparsity_ratio`` are logged (their loaders come after the BEIR sets'). A list of its own, not entries
            of ``val_sets``: jsonargparse merges a list given on the command line into the config's list item by
            item, so one list of two kinds could not be overridden.
        test_sts_sets: STS sets for ``test``.
        pad_to_multiple_of: training queries and documents are padded to a multiple of this many tokens (never beyond
            their max length; ``None``: to the longest text of the batch, as sentence-transformers does). The
            padding is masked (eval-mode representations change by float rounding only; in training, dropout's
            masks are drawn over the wider batch, as with another seed); it makes the batches
            come in a few shapes, which keeps glibc's heap from fragmenting (the quickstart ``fit``'s peak RSS
            drops by about 8%, ``docs/splade.md``) and bounds the shapes a compiled model sees.
    """

    def __init__(
        self,
        train: TrainSource | None = None,
        val_sets: list[BeirSet | SuiteRef] | None = None,
        test_sets: list[BeirSet | SuiteRef] | None = None,
        tokenizer: str | None = None,
        max_query_length: int = 32,
        max_doc_length: int = 256,
        eval_max_doc_length: int | None = None,
        eval_max_query_length: int | None = None,
        batch_size: int = 32,
        eval_batch_size: int = 64,
        num_workers: int = 0,
        seed: int = 42,
        on_bad_record: OnBadRecord = "raise",
        prompts: dict[str, str] | None = None,
        val_sts_sets: list[StsSet] | None = None,
        test_sts_sets: list[StsSet] | None = None,
        pad_to_multiple_of: int | None = 16,
    ):
        super().__init__()
        self.train = train
        self.tokenizer = tokenizer
        self.max_query_length, self.max_doc_length = max_query_length, max_doc_length
        self.eval_max_doc_length = max_doc_length if eval_max_doc_length is None else eval_max_doc_length
        self.eval_max_query_length = max_query_length if eval_max_query_length is None else eval_max_query_length
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.num_workers, self.seed = num_workers, seed
        self.pad_to_multiple_of = pad_to_multiple_of
        self.on_bad_record = on_bad_record
        self.skipped_records = SkippedRecords()
        self.prompts = check_prompts(prompts, f"{DATA}.prompts")
        self._loads, self._reported_loads = 0, 0  # file loads so far / at the last skip report
        problems: list[str] = []
        self.sets = {"validate": as_beir_sets(val_sets, "val_sets", problems),
                     "test": as_beir_sets(test_sets, "test_sets", problems)}
        problems += self._check_arguments()
        problems += check_eval_paths([("val_sets", self.sets["validate"]), ("test_sets", self.sets["test"])])
        for stage, argument, sts_sets in (("validate", "val_sts_sets", val_sts_sets),
                                          ("test", "test_sts_sets", test_sts_sets)):
            taken = [s.display_name for s in self.sets[stage]]
            self.sets[stage] = self.sets[stage] + as_sts_sets(sts_sets, argument, problems, DATA, taken)
        if problems:
            raise ConfigError("invalid RetrievalDataModule arguments:\n  " + "\n  ".join(problems))
        self.train_dataset: TrainingData | None = None
        self._eval_data: dict[str, list[EvalData] | None] = {"validate": None, "test": None}
        self._tokenizer = None
        self._sampler: NoDuplicatesBatchSampler | None = None

    def _check_arguments(self) -> list[str]:
        positive = {"max_query_length": self.max_query_length, "max_doc_length": self.max_doc_length,
                    "eval_max_doc_length": self.eval_max_doc_length,
                    "eval_max_query_length": self.eval_max_query_length,
                    "batch_size": self.batch_size, "eval_batch_size": self.eval_batch_size}
        if self.pad_to_multiple_of is not None:
            positive["pad_to_multiple_of"] = self.pad_to_multiple_of
        problems = check_counts(positive, {"num_workers": self.num_workers})
        problems += check_choice("on_bad_record", self.on_bad_record, ("raise", "skip"), DATA)
        if self.train is not None and not isinstance(self.train, TrainSource):
            problems.append(f"{DATA}.train: expected a training source (TextTriplets, ScoredGroups or IdGroups), got "
                            f"{type(self.train).__name__} {self.train!r}")
        elif self.train is not None:
            problems += self.train.problems()
        return problems

    # -- setup ---------------------------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Parse and validate every file the stage needs (caches are built on first use); all problems are raised
        together before any step runs.

        Raises:
            ConfigError: no training source to fit, no tokenizer, or a training set smaller than one global batch.
            DataErrors: problems in the data files.
        """
        missing = [NO_TRAIN] if stage == "fit" and self.train is None and self.train_dataset is None else []
        if self.tokenizer is None:
            missing.append(NO_TOKENIZER)
        if missing:
            raise ConfigError("\n".join(missing))
        errors: list[DataError] = []
        if stage == "fit" and self.train_dataset is None:
            self.train_dataset = collect_errors(errors, self._load_train)
        for eval_stage in STAGE_SETS.get(stage, []):
            if self._eval_data[eval_stage] is None:
                self._eval_data[eval_stage] = self._load_eval(eval_stage, errors)
        if errors:
            raise DataErrors(errors)
        self._report_skipped()
        if stage == "fit":
            self._check_train_size()

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

    def _load_train(self) -> TrainingData:
        self._loads += 1
        dataset = self.train.load(self.seed, self.on_bad_record, self.skipped_records)
        if (message := dataset.skipped_message()) is not None:
            rank_zero_info(message)  # a property of the data (e.g. questions without negatives), not an error
        return dataset

    def _load_eval(self, stage: EvalStage, errors: list[DataError]) -> list[EvalData]:
        self._loads += 1
        loaded = [collect_errors(errors, load_sts_set if isinstance(entry, StsSet) else load_beir_set, entry,
                                 self.on_bad_record, self.skipped_records) for entry in self.sets[stage]]
        return [data for data in loaded if data is not None]

    def _world(self) -> tuple[int, int]:
        if self.trainer is None:
            return 1, 0
        return self.trainer.world_size, self.trainer.global_rank

    def _check_train_size(self) -> None:
        dataset, (world, _) = self.train_dataset, self._world()
        if len(dataset) < self.batch_size * world:
            skipped = f" ({len(dataset.skipped)} more were skipped for too few negatives)" if dataset.skipped else ""
            raise ConfigError(f"{DATA}.batch_size: the training set has {len(dataset)} usable record(s){skipped}, "
                              f"fewer than one batch of {self.batch_size} x {world} device(s); add data or lower "
                              "batch_size")
        self._train_sampler().global_batches(dataset.epoch)  # raises DataError if batches cannot be filled

    def _get_tokenizer(self):
        if self.tokenizer is None:
            raise ConfigError(NO_TOKENIZER)
        if self._tokenizer is None or self._tokenizer[0] != self.tokenizer:
            self._tokenizer = (self.tokenizer, load_tokenizer(self.tokenizer))
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
        query_route, doc_route = self.train.routes
        collate = TrainCollator(self._get_tokenizer(), self.max_query_length, self.max_doc_length,
                                query_route=query_route, doc_route=doc_route, prompts=self.prompts,
                                pad_to_multiple_of=self.pad_to_multiple_of)
        return ResumableDataLoader(self.train_dataset, batch_sampler=self._train_sampler(), collate_fn=collate,
                                   num_workers=self.num_workers, persistent_workers=False)

    def _eval_loaders(self, stage: EvalStage) -> list[DataLoader]:
        tokenizer = self._get_tokenizer()
        return [sts_loader(data, tokenizer, self.eval_max_doc_length, self.eval_batch_size, self.num_workers,
                           self.prompts) if isinstance(data, StsData) else
                eval_loader(data, tokenizer, self.eval_max_query_length, self.eval_max_doc_length, self.eval_batch_size,
                            self.num_workers, self.prompts) for data in self.eval_datasets(stage)]

    def val_dataloader(self) -> list[DataLoader]:
        """One loader per validation set: all queries, then all documents, as ``EncodeBatch`` (never sharded)."""
        return self._eval_loaders("validate")

    def test_dataloader(self) -> list[DataLoader]:
        """One loader per test set: all queries, then all documents, as ``EncodeBatch`` (never sharded)."""
        return self._eval_loaders("test")

    # -- evaluation sets -----------------------------------------------------------------------------------------------
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
        """The evaluation set behind dataloader ``dataloader_idx`` of ``stage`` (``"validate"`` or ``"test"``); the
        same object as ``batch.eval_set`` of that loader's batches."""
        datasets = self.eval_datasets(stage)
        if not 0 <= dataloader_idx < len(datasets):
            raise IndexError(f"{stage} has {len(datasets)} evaluation set(s); no dataloader_idx {dataloader_idx}")
        return datasets[dataloader_idx]

    def _stage_sets(self, stage: str) -> list[BeirSet]:
        if stage not in self.sets:
            raise ValueError(f"stage must be 'validate' or 'test', got {stage!r}")
        return self.sets[stage]
