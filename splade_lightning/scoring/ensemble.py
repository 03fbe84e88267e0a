"""Combine the scores of several teachers for one query: per-query min-max normalisation, mean, scale.

The OpenSearch ensemble teacher (GitHub zhichao-aws/opensearch-sparse-model-tuning-sample at 7cbe004,
``scripts/train/bi_encoder_wrapper.py`` lines 94-146) normalises each
teacher's scores of one query's candidates to ŝ = (s − min s) / (max s − min s + 1e-6), averages ŝ over the
teachers and multiplies by ``score_scale`` (30 there). Pure numpy: no torch, no model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from splade_lightning.errors import ConfigError

Normalization = Literal["none", "minmax"]
NORMALIZATIONS: tuple[str, ...] = ("none", "minmax")
#: added to the denominator of the min-max normalisation, as OpenSearch does: a constant row maps to zeros
MINMAX_EPS = 1e-6


def minmax_normalize(scores: np.ndarray | Sequence[float], eps: float = MINMAX_EPS) -> np.ndarray:
    """Min-max normalise along the last axis: ``(s − min) / (max − min + eps)``.

    Args:
        scores: (..., N) scores of N candidates (one row per query, or a single 1-D row); N >= 1.
        eps: added to the range, so a constant row (or a single candidate) maps to 0s instead of NaN.

    Returns:
        float64 array of the same shape, values in [0, 1).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim == 0 or scores.shape[-1] == 0:
        raise ConfigError(f"minmax_normalize: expected at least one score per row, got shape {scores.shape}")
    low = scores.min(axis=-1, keepdims=True)
    high = scores.max(axis=-1, keepdims=True)
    return (scores - low) / (high - low + eps)


def ensemble_scores(teacher_scores: Sequence[np.ndarray | Sequence[float]], normalize: Normalization = "minmax",
                    scale: float = 1.0) -> np.ndarray:
    """Ensemble the scores that T teachers gave one query's N candidates.

    ``scale · mean_t norm(s_t)``, where ``norm`` is :func:`minmax_normalize` (``"minmax"``) or the identity
    (``"none"``). OpenSearch's ensemble teacher is ``normalize="minmax", scale=30``.

    Args:
        teacher_scores: T rows of N raw scores each (same candidate order in every row).
        normalize: ``"minmax"`` (per teacher, over this query's candidates) or ``"none"``.
        scale: multiplies the mean.

    Returns:
        (N,) float64 ensemble scores.
    """
    if normalize not in NORMALIZATIONS:
        raise ConfigError(f"ensemble_scores: normalize={normalize!r}; expected one of {list(NORMALIZATIONS)}")
    rows = [np.asarray(row, dtype=np.float64) for row in teacher_scores]
    if not rows:
        raise ConfigError("ensemble_scores: expected the scores of at least one teacher")
    shapes = {row.shape for row in rows}
    if len(shapes) != 1 or rows[0].ndim != 1:
        raise ConfigError(f"ensemble_scores: every teacher must score the same N candidates (1-D rows), got shapes "
                          f"{[row.shape for row in rows]}")
    stacked = np.stack(rows)  # (T, N)
    if normalize == "minmax":
        stacked = minmax_normalize(stacked)
    return stacked.mean(axis=0) * float(scale)
