"""``TrainSource``: where the training examples come from; injected into
:class:`~splade_lightning.data.datamodule.RetrievalDataModule` as ``train``.

The concrete sources live with their data: :class:`~splade_lightning.data.text.source.TextTriplets` (plain-text
records), :class:`~splade_lightning.data.scored.source.ScoredGroups` (text-inline groups with teacher scores) and
:class:`~splade_lightning.data.ids.source.IdGroups` (id-based hard negatives and teacher scores over a BEIR corpus).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from splade_lightning.data.arguments import check_router_mapping
from splade_lightning.data.datasets import TrainingData
from splade_lightning.problems import OnBadRecord, SkippedRecords
from splade_lightning.types import Route


class TrainSource(ABC):
    """A source of training examples: its typed options (the ``init_args`` of ``--data.init_args.train``), their
    checks, and how to read the files into a training dataset.

    Constructors only store their arguments: :meth:`problems` lists what is wrong with them and the data module
    raises those together with its own, before any file is read. :meth:`load` reads and validates the files.
    """

    #: negatives per query and epoch (0 for (query, positive) pairs)
    num_negatives: int
    #: the training column or field -> route (see ``router_mapping`` in the subclasses); ``None``: the defaults
    router_mapping: dict[str, Route] | None = None
    #: what the training batches carry besides the texts: ``"teacher_scores"`` (distillation), ``"labels"`` (pair
    #: labels); a loss that needs one checks it before training (``systems.loss_inputs.check_loss_data``)
    batch_fields: frozenset[str] = frozenset()

    @property
    def route_keys(self) -> tuple[str, ...]:
        """The keys of ``router_mapping``: the query's first, then the documents'."""
        return ("query", "pos")

    def problems(self) -> list[str]:
        """Every problem with the arguments, each naming its flag (``--data.init_args.train.init_args.<name>``)."""
        return check_router_mapping(self.router_mapping, list(self.route_keys))

    @property
    def routes(self) -> tuple[Route, Route]:
        """(route of the queries, route of the documents) that the training batches are stamped with."""
        if self.router_mapping is None:
            return "query", "document"
        query, doc = self.route_keys[:2]
        return self.router_mapping[query], self.router_mapping[doc]

    @abstractmethod
    def load(self, seed: int, on_bad_record: OnBadRecord, skipped: SkippedRecords) -> TrainingData:
        """Read and validate the files into a training dataset.

        Args:
            seed: seed of the per-epoch choice of positive and negatives.
            on_bad_record: ``"raise"``, or ``"skip"``: bad records are dropped and counted in ``skipped``.
            skipped: receives the skipped records.

        Raises:
            DataErrors: every problem in the files, each naming its file:line.
        """
