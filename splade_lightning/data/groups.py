"""``GroupDataset``: per-epoch choice of one positive and ``num_negatives`` negatives per training group.

The base of :class:`~splade_lightning.data.ids.dataset.IdTrainDataset` and
:class:`~splade_lightning.data.scored.dataset.ScoredTextDataset`; candidates come from
:func:`~splade_lightning.data.negatives.select_candidates`. Both follow the protocol
:class:`~splade_lightning.data.datasets.TrainingData` that
:class:`~splade_lightning.data.sampler.NoDuplicatesBatchSampler` relies on. ``texts()`` returns stable
keys instead of texts -- ``"q:<row>"`` for a query, ``"d:<row>"`` for a document, one row per distinct id (or per
distinct text for ``ScoredTextDataset``) -- so the sampler keeps the same id out of a batch without reading any
text. Two different ids with identical text are not detected (deduplicate the corpus for that).
"""

from __future__ import annotations

import math
import random

import numpy as np

from splade_lightning.data.datasets import EpochDataset, TrainExample
from splade_lightning.data.negatives import NegativeSampling, Selection


def check_options(num_negatives: object, negative_sampling: object, score_range: object) -> list[str]:
    """Problems with the sampling options (argument names as in the constructors)."""
    problems = []
    if not isinstance(num_negatives, int) or isinstance(num_negatives, bool) or num_negatives < 0:
        problems.append(f"num_negatives must be an int >= 0, got {num_negatives!r}")
    if negative_sampling not in ("random", "top"):
        problems.append(f"negative_sampling must be 'random' or 'top', got {negative_sampling!r}")
    if score_range is not None:
        ok = isinstance(score_range, (list, tuple)) and len(score_range) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in score_range)
        if not ok or score_range[0] > score_range[1]:
            problems.append(f"score_range must be [min, max] with finite min <= max, got {score_range!r}")
    return problems


class GroupDataset(EpochDataset):
    """Per-epoch choice of one positive and ``num_negatives`` candidates per group (the base of both datasets).

    The choice is a deterministic function of ``(seed, epoch, index)`` (``random``) or fixed (``top``: the first
    ``num_negatives`` candidates, highest teacher score first); the positive is drawn at random in both modes.
    """

    def __init__(self, query_texts, doc_texts, query: np.ndarray, pos_offsets: np.ndarray, pos: np.ndarray,
                 pos_scores: np.ndarray | None, selection: Selection, num_negatives: int,
                 negative_sampling: NegativeSampling, seed: int, skipped: list[str], unscored: int = 0):
        self.query_texts, self.doc_texts = query_texts, doc_texts
        self.query, self.pos_offsets, self.pos, self.pos_scores = query, pos_offsets, pos, pos_scores
        self.cand_offsets, self.cand, self.cand_scores = selection.cand_offsets, selection.cand, selection.cand_scores
        self.num_negatives, self.negative_sampling, self.seed = num_negatives, negative_sampling, seed
        self.skipped, self.unscored = skipped, unscored
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.query)

    def choose(self, index: int, epoch: int | None = None) -> tuple[int, list[int], list[float] | None]:
        """``(query row, [positive row, negative rows...], scores or None)`` of group ``index`` in ``epoch``."""
        p0, p1 = int(self.pos_offsets[index]), int(self.pos_offsets[index + 1])
        c0, c1 = int(self.cand_offsets[index]), int(self.cand_offsets[index + 1])
        n = self.num_negatives
        needs_rng = p1 - p0 > 1 or (self.negative_sampling == "random" and c1 - c0 > n)
        rng = random.Random(f"{self.seed}:{self.epoch if epoch is None else epoch}:{index}") if needs_rng else None
        positive = p0 if p1 - p0 == 1 else p0 + rng.randrange(p1 - p0)
        if self.negative_sampling == "top" or c1 - c0 == n:
            picks = list(range(c0, c0 + n))
        else:
            picks = [c0 + i for i in rng.sample(range(c1 - c0), n)]
        docs = [int(self.pos[positive]), *self.cand[picks].tolist()]
        if self.pos_scores is None:
            return int(self.query[index]), docs, None
        return int(self.query[index]), docs, [float(self.pos_scores[positive]), *self.cand_scores[picks].tolist()]

    def texts(self, index: int, epoch: int | None = None) -> tuple[str, ...]:
        """Keys of the query and chosen docs of group ``index`` in ``epoch`` (same key = same id): ``"q:<row>"``,
        ``"d:<row>"``. Reads no text."""
        query, docs, _ = self.choose(index, epoch)
        return (f"q:{query}", *(f"d:{d}" for d in docs))

    def example(self, index: int, epoch: int | None = None) -> TrainExample:
        """The example of group ``index`` in ``epoch`` (default: the current epoch), texts read from the stores."""
        return self._examples([self.choose(index, epoch)])[0]

    def __getitem__(self, index: int) -> TrainExample:
        return self.example(index)

    def __getitems__(self, indices: list[int]) -> list[TrainExample]:
        """A whole batch at once (the DataLoader uses this): one read per store."""
        return self._examples([self.choose(i) for i in indices])

    def _examples(self, choices: list[tuple[int, list[int], list[float] | None]]) -> list[TrainExample]:
        queries = self.query_texts.texts_at([c[0] for c in choices])
        docs = self.doc_texts.texts_at([d for c in choices for d in c[1]])
        width = 1 + self.num_negatives
        return [TrainExample(query, docs[i * width:(i + 1) * width], choice[2])
                for i, (query, choice) in enumerate(zip(queries, choices))]

    def skipped_message(self, shown: int = 5) -> str | None:
        """A one-line summary of the skipped groups (count and the first ``shown`` file:line) and of negatives that
        can never be chosen for want of a teacher score; ``None`` when there is neither."""
        parts = []
        if len(self.skipped):
            more = f" and {len(self.skipped) - shown} more" if len(self.skipped) > shown else ""
            parts.append(f"skipped {len(self.skipped)} training group(s) with fewer than num_negatives="
                         f"{self.num_negatives} usable negatives (after dropping positives, repeats, and negatives "
                         f"outside negative_systems / score_range or without a teacher score): "
                         f"{', '.join(self.skipped[:shown])}{more}")
        if self.unscored:
            parts.append(f"{self.unscored} hard negative(s) have no teacher score and are never chosen")
        return "; ".join(parts) or None


NO_NEGATIVES = ("no negatives left after removing the positives; num_negatives > 0 needs at least one (remove the "
                "record or set num_negatives: 0)")

