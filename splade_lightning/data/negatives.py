"""Candidate negatives of training groups, vectorised over CSR-style arrays (``offsets`` + flat row arrays).

A group ``g`` owns ``values[offsets[g]:offsets[g + 1]]``. Everything is numpy over whole arrays, processed in chunks
of about ``CHUNK`` elements to bound the temporary arrays, so selection over millions of groups needs no Python loop
per group. Used by the group datasets (:class:`~splade_lightning.data.groups.GroupDataset`): text-inline scored
(:mod:`.scored`) and id-based (:mod:`.ids`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

NegativeSampling = Literal["random", "top"]
CHUNK = 4_000_000


def csr_owner(offsets: np.ndarray) -> np.ndarray:
    """Group index of every flat element of a CSR array."""
    return np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))


def take_groups(offsets: np.ndarray, groups: np.ndarray, *values: np.ndarray | None):
    """CSR arrays restricted to ``groups`` (sorted): ``(new offsets, [values...])``."""
    wanted = np.zeros(len(offsets) - 1, bool)
    wanted[groups] = True
    flat = wanted[csr_owner(offsets)]
    new_offsets = np.concatenate([[0], np.cumsum(np.diff(offsets)[groups])]).astype(np.int64)
    return new_offsets, [None if v is None else v[flat] for v in values]


@dataclass
class Selection:
    """The kept groups' candidate negatives, as CSR arrays (see :func:`select_candidates`)."""

    kept: np.ndarray
    cand_offsets: np.ndarray
    cand: np.ndarray
    cand_scores: np.ndarray | None
    empty: np.ndarray
    skipped: np.ndarray


def group_chunks(offsets: np.ndarray, size: int | None = None):
    """``(first, end)`` group ranges whose elements total about ``size`` (default :data:`CHUNK`; at least one group
    each)."""
    size = size or CHUNK
    first, n_groups = 0, len(offsets) - 1
    while first < n_groups:
        end = int(np.searchsorted(offsets, offsets[first] + size, side="right")) - 1
        end = min(max(end, first + 1), n_groups)
        yield first, end
        first = end


def select_candidates(pos_offsets: np.ndarray, pos: np.ndarray, doc_offsets: np.ndarray, docs: np.ndarray,
                      doc_scores: np.ndarray | None, usable: np.ndarray, num_negatives: int,
                      negative_sampling: NegativeSampling, score_range: Sequence[float] | None) -> Selection:
    """Candidate negatives of every group, vectorised (in chunks of groups, to bound the temporary arrays).

    A group's raw negatives are its docs minus its positives. Candidates are the raw negatives that are ``usable``
    (e.g. from a selected system), have a finite score when there are scores, and lie in ``score_range``; a doc
    listed twice counts once (its first usable listing). With ``"top"`` they are sorted by descending score (stable:
    file order breaks ties).

    Returns:
        A :class:`Selection`: ``empty`` lists groups with no raw negative at all, ``skipped`` groups with fewer than
        ``num_negatives`` candidates (``empty`` excluded), ``kept`` the others, whose candidates are in ``cand``.
    """
    n_groups = len(doc_offsets) - 1
    raw_count = np.zeros(n_groups, np.int64)
    count = np.zeros(n_groups, np.int64)
    chosen_parts = []
    for first, end in group_chunks(doc_offsets):
        d0, d1, p0, p1 = doc_offsets[first], doc_offsets[end], pos_offsets[first], pos_offsets[end]
        scores = None if doc_scores is None else doc_scores[d0:d1]
        chosen, raw_count[first:end], count[first:end] = _select_chunk(
            pos_offsets[first:end + 1] - p0, pos[p0:p1], doc_offsets[first:end + 1] - d0, docs[d0:d1], scores,
            usable[d0:d1], negative_sampling, score_range)
        chosen_parts.append(chosen + d0)
    chosen = np.concatenate(chosen_parts) if chosen_parts else np.zeros(0, np.int64)
    empty = np.flatnonzero(raw_count == 0) if num_negatives > 0 else np.zeros(0, np.int64)
    ok = count >= num_negatives
    ok[empty] = False
    kept = np.flatnonzero(ok)
    chosen = chosen[np.repeat(ok, count)]
    cand_offsets = np.concatenate([[0], np.cumsum(count[kept])]).astype(np.int64)
    return Selection(kept, cand_offsets, docs[chosen], None if doc_scores is None else doc_scores[chosen], empty,
                     np.setdiff1d(np.flatnonzero(~ok), empty))


def _select_chunk(pos_offsets: np.ndarray, pos: np.ndarray, doc_offsets: np.ndarray, docs: np.ndarray,
                  doc_scores: np.ndarray | None, usable: np.ndarray, negative_sampling: NegativeSampling,
                  score_range: Sequence[float] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`select_candidates` on a few groups: (candidate positions, grouped, in order; raw count; count)."""
    n_groups = len(doc_offsets) - 1
    size = int(max(docs.max(initial=-1), pos.max(initial=-1))) + 1
    group = csr_owner(doc_offsets)
    keys = group * size + docs
    positive_keys = np.sort(csr_owner(pos_offsets) * size + pos)
    at = np.minimum(np.searchsorted(positive_keys, keys), max(len(positive_keys) - 1, 0))
    raw = positive_keys[at] != keys if len(positive_keys) else np.ones(len(keys), bool)
    keep = raw & usable
    if doc_scores is not None:
        keep &= np.isfinite(doc_scores)
        if score_range is not None:
            keep &= (doc_scores >= score_range[0]) & (doc_scores <= score_range[1])
    kept_at = np.flatnonzero(keep)  # a doc listed twice (e.g. by two systems) counts once: its first usable listing
    chosen = np.sort(kept_at[np.unique(keys[kept_at], return_index=True)[1]])
    if negative_sampling == "top" and doc_scores is not None:
        chosen = chosen[np.lexsort((-doc_scores[chosen], group[chosen]))]
    return (chosen, np.bincount(group[raw], minlength=n_groups), np.bincount(group[chosen], minlength=n_groups))
