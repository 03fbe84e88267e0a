"""``TrainDataset``: plain-text training records (query, positives, negatives) with a per-epoch choice."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

from splade_lightning.data.datasets import EpochDataset, TrainExample
from splade_lightning.data.text.records import TrainRecord
from splade_lightning.errors import ConfigError


class TrainDataset(EpochDataset):
    """Training records as plain strings, with a per-epoch choice of positive and negatives.

    When a record has several positives one is chosen per epoch; ``num_negatives`` distinct negatives are chosen per
    epoch without replacement. With ``sampling="random"`` the choice is a deterministic function of
    ``(seed, epoch, index)``, so it is identical in every DataLoader worker and process and after a resume.
    Duplicate negatives and negatives equal to one of the record's positives are dropped; records left with fewer than
    ``num_negatives`` negatives are skipped and listed in :attr:`skipped`.

    The current epoch lives here (see :class:`~splade_lightning.data.datasets.EpochDataset`).

    Args:
        records: the validated training records.
        num_negatives: hard negatives per example (0 for (query, positive) pairs).
        sampling: ``"random"`` (seeded per epoch) or ``"first"`` (always the first positive and first negatives).
        seed: seed of the per-epoch random choices.
    """

    def __init__(self, records: Sequence[TrainRecord], num_negatives: int = 1,
                 sampling: Literal["random", "first"] = "random", seed: int = 42):
        if num_negatives < 0:
            raise ConfigError(f"num_negatives must be >= 0, got {num_negatives}")
        if sampling not in ("random", "first"):
            raise ConfigError(f"sampling must be 'random' or 'first', got {sampling!r}")
        self.num_negatives = num_negatives
        self.sampling = sampling
        self.seed = seed
        self.epoch = 0
        self.records: list[TrainRecord] = []
        self.skipped: list[TrainRecord] = []
        self._negatives: list[tuple[str, ...]] = []
        for record in records:
            positives = set(record.positives)
            negatives = tuple(dict.fromkeys(n for n in record.negatives if n not in positives))
            if len(negatives) < num_negatives:
                self.skipped.append(record)
                continue
            self.records.append(record)
            self._negatives.append(negatives)

    def __len__(self) -> int:
        return len(self.records)

    def example(self, index: int, epoch: int | None = None) -> TrainExample:
        """The example of record ``index`` in ``epoch`` (default: the current epoch)."""
        record, negatives = self.records[index], self._negatives[index]
        n = self.num_negatives
        if self.sampling == "first":
            return TrainExample(record.query, [record.positives[0], *negatives[:n]])
        rng = random.Random(f"{self.seed}:{self.epoch if epoch is None else epoch}:{index}")
        positive = record.positives[0] if len(record.positives) == 1 else rng.choice(record.positives)
        chosen = list(negatives[:n]) if len(negatives) == n else rng.sample(negatives, n)
        return TrainExample(record.query, [positive, *chosen])

    def texts(self, index: int, epoch: int | None = None) -> tuple[str, ...]:
        """Every text of record ``index`` in ``epoch``: the query, the chosen positive and negatives."""
        example = self.example(index, epoch)
        return (example.query, *example.docs)

    def __getitem__(self, index: int) -> TrainExample:
        return self.example(index)

    def skipped_message(self, shown: int = 5) -> str | None:
        """A one-line summary of the skipped records (count and the first ``shown`` file:line), or ``None``."""
        if not self.skipped:
            return None
        where = ", ".join(r.where for r in self.skipped[:shown])
        more = f" and {len(self.skipped) - shown} more" if len(self.skipped) > shown else ""
        return (f"skipped {len(self.skipped)} training record(s) with fewer than num_negatives={self.num_negatives} "
                f"distinct negatives (after dropping duplicates and negatives equal to a positive): {where}{more}")
