"""The candidate filters and negative selection of sentence-transformers' ``mine_hard_negatives``, as pure numpy.

Semantics follow sentence-transformers 6 (``sentence_transformers/util/hard_negatives.py`` of the PyPI package,
version 6.2.0):

1. ``range_max`` defaults to ``range_min + 10·num_negatives + max_positives`` when a margin or ``max_score`` is set,
   else ``range_min + num_negatives + max_positives``; the retriever returns ``range_max + max_positives`` candidates.
2. Positives are set to −inf, then, against the **minimum** positive score ``p`` of the query:
   absolute margin drops ``s + m > p``; relative margin drops ``s > p − |p|·m`` (ST6; ST5's ``s > p·(1 − m)`` raised
   the threshold for a negative ``p``); then ``max_score`` drops ``s > max`` and ``min_score`` drops ``s < min``.
3. The best ``range_max`` candidates are kept, the first ``range_min`` of them dropped; ``top`` takes the next
   ``num_negatives``, ``random`` samples ``num_negatives`` of the surviving (finite) ones and sorts them by score.

Dropped candidates are marked by −inf scores, as in ST. Ties keep the candidates' retrieval order. No torch here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

SamplingStrategy = Literal["top", "random"]
#: filter name -> the order in which ST applies it
FILTER_ORDER = ("absolute_margin", "relative_margin", "max_score", "min_score")


def widens_range(absolute_margin: float | None, relative_margin: float | None, max_score: float | None) -> bool:
    """Whether ST retrieves 10x more candidates by default: a margin or ``max_score`` is set (``min_score`` alone only
    counts with a cross-encoder, which we do not have)."""
    return absolute_margin is not None or relative_margin is not None or max_score is not None


def default_range_max(range_min: int, num_negatives: int, max_positives: int, widened: bool) -> int:
    """ST's ``range_max`` when none is given.

    Args:
        range_min: candidates skipped at the top.
        num_negatives: negatives wanted per query.
        max_positives: the largest number of (distinct) positives of any query.
        widened: :func:`widens_range` of the filters in use.
    """
    return range_min + (10 * num_negatives if widened else num_negatives) + max_positives


def min_positive_scores(positive_scores: Sequence[np.ndarray | Sequence[float]]) -> np.ndarray:
    """(Q,) minimum positive score of each query (the "harder" positive ST measures margins against)."""
    return np.array([np.min(np.asarray(s, dtype=np.float64)) for s in positive_scores], dtype=np.float64)


def positive_mask(candidates: np.ndarray, positives: Sequence[np.ndarray | Sequence[int]]) -> np.ndarray:
    """(Q, K) True where candidate ``candidates[q, j]`` is one of query q's positives."""
    if len(candidates) == 0:
        return np.zeros(np.shape(candidates), dtype=bool)
    return np.stack([np.isin(row, np.asarray(pos, dtype=np.int64)) for row, pos in zip(candidates, positives)])


def absolute_margin_mask(scores: np.ndarray, positive: np.ndarray, margin: float) -> np.ndarray:
    """(Q, K) True for candidates too close to the positive: ``s + margin > p`` (ST6 hard_negatives.py)."""
    return scores + margin > positive[:, None]


def relative_margin_mask(scores: np.ndarray, positive: np.ndarray, margin: float) -> np.ndarray:
    """(Q, K) True for candidates within ``margin·|p|`` of the positive: ``s > p − |p|·margin`` (ST6; sign-safe)."""
    return scores > (positive - np.abs(positive) * margin)[:, None]


def max_score_mask(scores: np.ndarray, max_score: float) -> np.ndarray:
    """(Q, K) True for candidates scoring above ``max_score``."""
    return scores > max_score


def min_score_mask(scores: np.ndarray, min_score: float) -> np.ndarray:
    """(Q, K) True for candidates scoring below ``min_score``."""
    return scores < min_score


@dataclass(frozen=True)
class MiningRule:
    """How negatives are chosen among the retrieved candidates (the options of ST's ``mine_hard_negatives``).

    Args:
        num_negatives: negatives per query.
        range_min: surviving candidates skipped at the top.
        range_max: candidates considered (resolved: never None here; see :func:`default_range_max`).
        absolute_margin: drop ``s + m > p`` (p = the query's minimum positive score).
        relative_margin: drop ``s > p − |p|·m``.
        max_score: drop ``s > max_score``.
        min_score: drop ``s < min_score``.
        sampling_strategy: ``top`` (the best survivors) or ``random`` (a seeded sample of them).
    """

    num_negatives: int = 3
    range_min: int = 0
    range_max: int = 3
    absolute_margin: float | None = None
    relative_margin: float | None = None
    max_score: float | None = None
    min_score: float | None = None
    sampling_strategy: SamplingStrategy = "top"


def apply_filters(scores: np.ndarray, positive: np.ndarray, rule: MiningRule) -> tuple[np.ndarray, dict[str, int]]:
    """Set the candidates each filter of ``rule`` removes to −inf, in ST's order.

    Args:
        scores: (Q, K) candidate scores, −inf for candidates already excluded (positives, padding).
        positive: (Q,) minimum positive score of each query.
        rule: the filters to apply (None = off).

    Returns:
        ``(scores, removed)``: a filtered copy, and per filter the number of finite candidates it removed.
    """
    scores = np.array(scores, dtype=np.float64)
    masks = {
        "absolute_margin": lambda v: absolute_margin_mask(scores, positive, v),
        "relative_margin": lambda v: relative_margin_mask(scores, positive, v),
        "max_score": lambda v: max_score_mask(scores, v),
        "min_score": lambda v: min_score_mask(scores, v),
    }
    removed: dict[str, int] = {}
    for name in FILTER_ORDER:
        value = getattr(rule, name)
        if value is None:
            continue
        drop = masks[name](value) & np.isfinite(scores)
        scores[drop] = -np.inf
        removed[name] = int(drop.sum())
    return scores, removed


def query_rng(seed: int, qid: str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and the query id, so sampling does not depend on batching or on
    where a resumed run restarted."""
    digest = int.from_bytes(hashlib.sha256(qid.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng([seed, digest])


def select_negatives(scores: np.ndarray, rule: MiningRule, rng: np.random.Generator | None = None) -> np.ndarray:
    """Positions of one query's negatives among its filtered candidates, best first.

    Args:
        scores: (K,) filtered scores of one query's candidates (−inf = excluded), in retrieval order.
        rule: ``range_min``, ``range_max``, ``num_negatives`` and ``sampling_strategy``.
        rng: the generator for ``random`` sampling (see :func:`query_rng`).

    Returns:
        (n,) int64 positions into ``scores``, n <= ``num_negatives``, only finite candidates, sorted by score
        descending (ties in retrieval order).
    """
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[: rule.range_max][rule.range_min:]
    order = order[np.isfinite(scores[order])]
    if rule.sampling_strategy == "top" or len(order) <= rule.num_negatives:
        return order[: rule.num_negatives].astype(np.int64)
    if rng is None:
        raise ValueError("select_negatives: sampling_strategy='random' needs an rng")
    picked = np.sort(rng.choice(len(order), size=rule.num_negatives, replace=False))
    return order[picked].astype(np.int64)


@dataclass
class MinedNegatives:
    """The negatives of a batch of queries.

    Attributes:
        rows: per query, (n,) candidate ids (e.g. corpus rows) of its negatives, best first.
        scores: per query, (n,) their scores.
        removed: per filter, the number of finite candidates it removed over the batch.
    """

    rows: list[np.ndarray]
    scores: list[np.ndarray]
    removed: dict[str, int]


def mine_negatives(scores: np.ndarray, candidates: np.ndarray, positives: Sequence[np.ndarray | Sequence[int]],
                   positive_scores: Sequence[np.ndarray | Sequence[float]], rule: MiningRule,
                   rngs: Sequence[np.random.Generator] | None = None) -> MinedNegatives:
    """Choose each query's negatives among its retrieved candidates, as ST's ``mine_hard_negatives`` does.

    Args:
        scores: (Q, K) candidate scores, in retrieval order (K = ``range_max + max_positives`` in ST).
        candidates: (Q, K) candidate ids; −1 marks padding (fewer than K retrieved), whose score is ignored.
        positives: per query, the ids of its positives (never returned; at least one each).
        positive_scores: per query, the scores of its positives (margins use the minimum).
        rule: filters, range and sampling.
        rngs: per query, the generator for ``random`` sampling.

    Returns:
        The chosen :class:`MinedNegatives`.
    """
    scores = np.array(scores, dtype=np.float64)
    candidates = np.asarray(candidates, dtype=np.int64)
    scores[(candidates < 0) | positive_mask(candidates, positives)] = -np.inf
    scores, removed = apply_filters(scores, min_positive_scores(positive_scores), rule)
    rows, kept = [], []
    for q in range(scores.shape[0]):
        picked = select_negatives(scores[q], rule, rngs[q] if rngs is not None else None)
        rows.append(candidates[q, picked])
        kept.append(scores[q, picked])
    return MinedNegatives(rows, kept, removed)
