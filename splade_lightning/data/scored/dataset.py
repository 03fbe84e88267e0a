"""``ScoredTextDataset``: text-inline scored groups, held in memory. Texts are keyed ``"q:<row>"``/``"d:<row>"``
with one row per distinct text (see :mod:`splade_lightning.data.groups`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from splade_lightning.data.groups import NO_NEGATIVES, GroupDataset, check_options
from splade_lightning.data.negatives import NegativeSampling, select_candidates, take_groups
from splade_lightning.data.scored.records import ScoredLayout, ScoredRecord, read_scored_records
from splade_lightning.errors import ConfigError, DataError, DataErrors
from splade_lightning.problems import OnBadRecord, SkippedRecords


class _ListTexts:
    """In-memory texts with the ``texts_at(rows)`` interface of a TextStore."""

    def __init__(self, texts: list[str]):
        self.items = texts

    def texts_at(self, rows: Sequence[int]) -> list[str]:
        return [self.items[r] for r in rows]


class ScoredTextDataset(GroupDataset):
    """Text-inline scored groups; each example carries the teacher scores of its docs (positive first).

    Negatives equal to a positive and repeated negatives are dropped; ``score_range`` keeps only negatives whose
    score lies in ``[min, max]``; ``top`` picks the highest-scored negatives. Groups with fewer than ``num_negatives``
    negatives left are skipped (:attr:`skipped`).

    Args:
        records: validated groups (:func:`read_scored_records`).
        num_negatives: negatives per example (0 for scored pairs).
        score_range: ``[min, max]`` teacher-score range of usable negatives; ``None`` for all.
        negative_sampling: ``"random"`` (seeded per epoch) or ``"top"`` (highest teacher score).
        seed: seed of the per-epoch choices.

    Raises:
        ConfigError: bad options.
        DataErrors: a group with no negative at all while ``num_negatives > 0``.
    """

    def __init__(self, records: Sequence[ScoredRecord], num_negatives: int = 1,
                 score_range: Sequence[float] | None = None, negative_sampling: NegativeSampling = "random",
                 seed: int = 42):
        problems = check_options(num_negatives, negative_sampling, score_range)
        if problems:
            raise ConfigError("ScoredTextDataset: " + "; ".join(problems))
        queries: dict[str, int] = {}
        docs: dict[str, int] = {}
        query, pos, pos_scores, negs, neg_scores = [], [], [], [], []
        pos_counts, neg_counts = [], []
        for r in records:
            query.append(queries.setdefault(r.query, len(queries)))
            pos += [docs.setdefault(t, len(docs)) for t in r.positives]
            negs += [docs.setdefault(t, len(docs)) for t in r.negatives]
            pos_scores += r.positive_scores
            neg_scores += r.negative_scores
            pos_counts.append(len(r.positives))
            neg_counts.append(len(r.negatives))
        pos_offsets = np.concatenate([[0], np.cumsum(pos_counts, dtype=np.int64)]).astype(np.int64)
        neg_offsets = np.concatenate([[0], np.cumsum(neg_counts, dtype=np.int64)]).astype(np.int64)
        negs_arr, neg_scores_arr = np.asarray(negs, np.int64), np.asarray(neg_scores, np.float32)
        selection = select_candidates(pos_offsets, np.asarray(pos, np.int64), neg_offsets, negs_arr, neg_scores_arr,
                                      np.ones(len(negs), bool), num_negatives, negative_sampling, score_range)
        where = [r.where for r in records]
        if selection.empty.size:
            raise DataErrors([DataError(NO_NEGATIVES, records[g].source, records[g].line, "neg")
                              for g in selection.empty.tolist()])
        kept = selection.kept
        kept_pos_offsets, (kept_pos, kept_pos_scores) = take_groups(pos_offsets, kept, np.asarray(pos, np.int64),
                                                                    np.asarray(pos_scores, np.float32))
        super().__init__(_ListTexts(list(queries)), _ListTexts(list(docs)), np.asarray(query, np.int64)[kept],
                         kept_pos_offsets, kept_pos, kept_pos_scores, selection, num_negatives, negative_sampling,
                         seed, [where[g] for g in selection.skipped.tolist()])

    @classmethod
    def from_files(cls, paths: Sequence[str | Path], num_negatives: int = 1,
                   score_range: Sequence[float] | None = None, negative_sampling: NegativeSampling = "random",
                   seed: int = 42, on_bad_record: OnBadRecord = "raise",
                   skipped: SkippedRecords | None = None, layout: ScoredLayout = "pos_neg") -> ScoredTextDataset:
        """Read ``paths`` with :func:`read_scored_records` (``on_bad_record``, ``skipped``, ``layout``: see there) and
        build the dataset."""
        return cls(read_scored_records(paths, on_bad_record, skipped, layout), num_negatives, score_range,
                   negative_sampling, seed)

