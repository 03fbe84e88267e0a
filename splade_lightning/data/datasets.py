"""What every training dataset shares: the example type it yields and the epoch it samples for.

Each training source (:mod:`.text`, :mod:`.scored`, :mod:`.ids`) builds a dataset with the interface of
:class:`TrainingData`, the one :class:`~splade_lightning.data.sampler.NoDuplicatesBatchSampler` relies on.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from torch.utils.data import Dataset


class TrainExample(NamedTuple):
    """One training example: the query and its documents, positive first.

    Attributes:
        query: the query text.
        docs: ``[positive, negative_1, ..., negative_n]`` (length ``1 + num_negatives``).
        scores: teacher scores of ``docs`` (same order), for distillation; ``None`` when the data has none.
        label: the gold label of a (text1, text2) pair (``query``, ``docs[0]``): a similarity score or a class label,
            for the pair losses; ``None`` when the data has none.
    """

    query: str
    docs: list[str]
    scores: list[float] | None = None
    label: float | None = None


class EpochDataset(Dataset):
    """A dataset whose examples depend on the epoch (the per-epoch choice of positive and negatives).

    The epoch lives here, set by :meth:`set_epoch` (the batch sampler calls it): the DataLoader copies the dataset into
    its worker processes when an epoch's iterator is created, after Lightning has set the epoch.
    """

    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose positive/negative choices ``__getitem__`` returns."""
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative int, got {epoch!r}")
        self.epoch = epoch


class TrainingData(Protocol):
    """The interface of a training dataset (``TrainDataset``, ``ScoredTextDataset``, ``IdTrainDataset``)."""

    epoch: int
    skipped: list  # the records (or their file:line) left out for too few usable negatives

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int) -> None: ...

    def example(self, index: int, epoch: int | None = None) -> TrainExample:
        """The example of ``index`` in ``epoch`` (default: the current epoch)."""

    def texts(self, index: int, epoch: int | None = None) -> tuple[str, ...]:
        """Keys of the query and chosen documents of ``index`` in ``epoch``: two examples that share a key share a
        text (the batch sampler keeps them out of one batch)."""

    def skipped_message(self) -> str | None:
        """One line about the records left out for too few usable negatives, or ``None``."""
