"""``TextTriplets``: the training source of plain-text records (query, positives, hard negatives)."""

from __future__ import annotations

from typing import Literal

from splade_lightning.data.arguments import TRAIN, check_choice, check_counts, check_negatives, check_train_files
from splade_lightning.data.source import TrainSource
from splade_lightning.data.text.dataset import TrainDataset
from splade_lightning.data.text.records import read_train_records
from splade_lightning.problems import OnBadRecord, SkippedRecords
from splade_lightning.types import Route


class TextTriplets(TrainSource):
    """Plain-text training records: a query, one or more positives and optional hard negatives per record.

    Each epoch a record yields its query, one positive (chosen among its positives) and ``num_negatives`` distinct
    negatives; duplicate negatives and negatives equal to a positive are dropped, and records left with fewer than
    ``num_negatives`` are left out (an info line counts them).

    Args:
        files: training files: JSONL, TSV with a header row, ``.parquet``, or a HF ``datasets`` directory saved with
            ``save_to_disk``.
        query_column: column holding the query text.
        positive_column: column holding the positive text, or a list of positives (one is used per epoch).
        negative_columns: columns holding hard negatives (a text or a list of texts each); ``None`` for none.
        num_negatives: hard negatives per query and epoch (0 for (query, positive) pairs; needs no negative columns).
        sampling: how the positive and negatives are chosen each epoch: ``random`` (seeded) or ``first``.
        router_mapping: which route (encoder) of a query/document router each training column goes through, e.g.
            ``{query: query, pos: document, neg: document}`` (the default when ``None``). Give every column; the
            positive and negative columns must share one route. Evaluation always routes BEIR queries to ``query``
            and the corpus to ``document``. Models with a single encoder use it for both routes.
    """

    def __init__(self, files: list[str], query_column: str = "query", positive_column: str = "pos",
                 negative_columns: list[str] | None = None, num_negatives: int = 1,
                 sampling: Literal["random", "first"] = "random", router_mapping: dict[str, Route] | None = None):
        self.files = [str(f) for f in files] if isinstance(files, (list, tuple)) else files
        self.query_column, self.positive_column = query_column, positive_column
        self.negative_columns = list(negative_columns or [])
        self.num_negatives, self.sampling = num_negatives, sampling
        self.router_mapping = dict(router_mapping) if router_mapping is not None else None

    @property
    def route_keys(self) -> tuple[str, ...]:
        """The training columns: the query column, the positive column, the negative columns."""
        return (self.query_column, self.positive_column, *self.negative_columns)

    def problems(self) -> list[str]:
        """See :meth:`TrainSource.problems`."""
        problems = check_train_files(self.files) + check_counts({}, {"num_negatives": self.num_negatives}, TRAIN)
        problems += check_choice("sampling", self.sampling, ("random", "first"))
        problems += check_negatives(self.negative_columns, self.num_negatives)
        columns = list(self.route_keys)
        if len(set(columns)) != len(columns) or not all(isinstance(c, str) and c for c in columns):
            problems.append(f"{TRAIN}.query_column/positive_column/negative_columns: must be distinct non-empty names, "
                            f"got {columns}")
        return problems + super().problems()

    def load(self, seed: int, on_bad_record: OnBadRecord, skipped: SkippedRecords) -> TrainDataset:
        """Read the records (:func:`~splade_lightning.data.text.records.read_train_records`) into a
        :class:`~splade_lightning.data.text.dataset.TrainDataset`."""
        records = read_train_records(self.files, self.query_column, self.positive_column, self.negative_columns,
                                     on_bad_record, skipped)
        return TrainDataset(records, self.num_negatives, self.sampling, seed)
