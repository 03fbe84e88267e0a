"""``TextPairs``: the training source of labelled text pairs, and ``PairDataset``, the dataset it builds."""

from __future__ import annotations

import math
from collections.abc import Sequence

from splade_lightning.data.arguments import TRAIN, check_choice, check_train_files
from splade_lightning.data.datasets import EpochDataset, TrainExample
from splade_lightning.data.pairs.records import LabelType, PairRecord, read_pair_records
from splade_lightning.data.source import TrainSource
from splade_lightning.problems import OnBadRecord, SkippedRecords
from splade_lightning.types import Route


class PairDataset(EpochDataset):
    """Labelled pairs as training examples ``TrainExample(text1, [text2], None, label / divide_labels_by)``: no
    negatives, the same every epoch.

    Args:
        records: the validated pairs.
        divide_labels_by: every label is divided by this (e.g. 5 to bring STS scores of 0..5 into [0, 1]).
    """

    skipped: list = []  # pairs have no negatives to run short of

    def __init__(self, records: Sequence[PairRecord], divide_labels_by: float = 1.0):
        self.records = list(records)
        self.divide_labels_by = float(divide_labels_by)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.records)

    def example(self, index: int, epoch: int | None = None) -> TrainExample:
        """The pair ``index`` (the same in every epoch)."""
        record = self.records[index]
        return TrainExample(record.text1, [record.text2], None, record.label / self.divide_labels_by)

    def __getitem__(self, index: int) -> TrainExample:
        return self.example(index)

    def texts(self, index: int, epoch: int | None = None) -> tuple[str, ...]:
        """The two texts of pair ``index``."""
        record = self.records[index]
        return record.text1, record.text2

    def skipped_message(self) -> str | None:
        """Nothing is left out of pair data: ``None``."""
        return None


class TextPairs(TrainSource):
    """Labelled text pairs, one per record: ``(text1, text2, score)`` (e.g. STS: a similarity score) or ``(text1,
    text2, label)`` (e.g. NLI or paraphrase pairs: an integer class), sentence-transformers' pair-score and
    pair-class dataset layouts.

    The first text goes through the query route, the second through the document route; batches carry the labels
    (``TrainBatch.labels``, (B,)) and no negatives. For the pair losses: ``CoSENTLoss``, ``AnglELoss``,
    ``CosineSimilarityLoss``.

    Args:
        files: training files: JSONL, TSV with a header row, ``.parquet``, or a HF ``datasets`` directory saved with
            ``save_to_disk``.
        text1_column: column of the first text (sentence-transformers' STS-B: ``sentence1``).
        text2_column: column of the second text.
        label_column: column of the score or label.
        label_type: ``score``: any finite number; ``label``: an integer class label (true/false count as 1/0).
        divide_labels_by: every label is divided by this positive number before training, e.g. 5 for STS scores of
            0..5 with ``CosineSimilarityLoss``, which regresses cosines on labels in [0, 1] (CoSENT and AnglE only use
            the order of the labels).
        router_mapping: which route (encoder) of a query/document router each text column goes through:
            ``{<text1_column>: <route>, <text2_column>: <route>}``; ``None`` for ``query`` and ``document``.
    """

    num_negatives = 0
    batch_fields = frozenset({"labels"})

    def __init__(self, files: list[str], text1_column: str = "sentence1", text2_column: str = "sentence2",
                 label_column: str = "score", label_type: LabelType = "score", divide_labels_by: float = 1.0,
                 router_mapping: dict[str, Route] | None = None):
        self.files = [str(f) for f in files] if isinstance(files, (list, tuple)) else files
        self.text1_column, self.text2_column, self.label_column = text1_column, text2_column, label_column
        self.label_type, self.divide_labels_by = label_type, divide_labels_by
        self.router_mapping = dict(router_mapping) if router_mapping is not None else None

    @property
    def route_keys(self) -> tuple[str, ...]:
        """The two text columns."""
        return self.text1_column, self.text2_column

    def problems(self) -> list[str]:
        """See :meth:`TrainSource.problems`."""
        problems = check_train_files(self.files) + check_choice("label_type", self.label_type, ("score", "label"))
        columns = [self.text1_column, self.text2_column, self.label_column]
        if len(set(columns)) != 3 or not all(isinstance(c, str) and c for c in columns):
            problems.append(f"{TRAIN}.text1_column/text2_column/label_column: must be three distinct non-empty names, "
                            f"got {columns}")
        divisor = self.divide_labels_by
        if isinstance(divisor, bool) or not isinstance(divisor, (int, float)) or not 0 < divisor < math.inf:
            problems.append(f"{TRAIN}.divide_labels_by: must be a positive finite number, got {divisor!r}")
        return problems + super().problems()

    def load(self, seed: int, on_bad_record: OnBadRecord, skipped: SkippedRecords) -> PairDataset:
        """Read the pairs (:func:`~splade_lightning.data.pairs.records.read_pair_records`) into a
        :class:`PairDataset` (``seed`` is unused: pairs involve no random choice)."""
        records = read_pair_records(self.files, self.text1_column, self.text2_column, self.label_column,
                                    self.label_type, on_bad_record, skipped)
        return PairDataset(records, self.divide_labels_by)
