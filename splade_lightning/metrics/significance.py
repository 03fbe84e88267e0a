"""Paired significance tests over per-query metric values of two systems (A and B) on the same queries.

- :func:`paired_t_test`: two-sided paired t-test (``scipy.stats.ttest_rel``) on the per-query values.
- :func:`randomisation_test`: two-sided paired randomisation (permutation) test by sign-flipping the per-query
  differences ``d = b - a``; the statistic is ``|mean(d)|``. With ``2**n <= permutations`` every sign pattern is
  enumerated (exact test, ``p = #{|mean(s*d)| >= |mean(d)|} / 2**n``); otherwise ``permutations`` random patterns
  are drawn and ``p = (1 + #{...}) / (1 + permutations)`` (Smucker, Allan & Carterette, CIKM 2007; the +1 keeps the
  Monte-Carlo p-value valid).

Identical systems (all differences 0) get ``p = 1`` from both tests (scipy's t-test would return nan there). No torch.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from splade_lightning.errors import ConfigError, DataError

__all__ = ["SignificanceRow", "compare_per_query", "paired_t_test", "randomisation_test"]

#: relative tolerance when comparing a permuted statistic with the observed one (float summation noise)
_TOL = 1e-12
#: sign patterns evaluated per numpy block
_BLOCK = 1024


def _differences(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    a_arr, b_arr = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a_arr.ndim != 1 or a_arr.shape != b_arr.shape or a_arr.size == 0:
        raise DataError(f"expected two non-empty 1-D sequences of equal length (paired per-query values), got "
                        f"shapes {a_arr.shape} and {b_arr.shape}")
    if not (np.isfinite(a_arr).all() and np.isfinite(b_arr).all()):
        raise DataError("per-query values must be finite numbers")
    return b_arr - a_arr


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided paired t-test p-value of ``b`` against ``a``.

    Args:
        a: per-query values of system A.
        b: per-query values of system B, paired with ``a``.

    Returns:
        The p-value of ``scipy.stats.ttest_rel(b, a)``; 1.0 when every difference is 0 (scipy gives nan). With a
        single query (no variance estimate) the result is nan.
    """
    diff = _differences(a, b)
    if not diff.any():
        return 1.0
    if diff.size < 2:
        return math.nan
    return float(stats.ttest_rel(np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64)).pvalue)


def _count_extreme(diff: np.ndarray, signs: np.ndarray, observed: float) -> int:
    """How many rows of ``signs`` (P, n) give ``|mean(signs * diff)| >= observed`` (up to float noise)."""
    permuted = np.abs(signs @ diff) / diff.size
    return int(np.count_nonzero(permuted >= observed - _TOL * max(1.0, observed)))


def randomisation_test(a: Sequence[float], b: Sequence[float], permutations: int = 10000, seed: int = 0) -> float:
    """Two-sided paired randomisation (sign-flip permutation) test p-value of ``b`` against ``a``.

    Args:
        a: per-query values of system A.
        b: per-query values of system B, paired with ``a``.
        permutations: random sign patterns drawn; if ``2**n <= permutations`` all ``2**n`` are enumerated instead.
        seed: seed of the random sign patterns (numpy ``default_rng``).

    Returns:
        The p-value (1.0 when every difference is 0).

    Raises:
        ConfigError: if ``permutations`` is not a positive integer.
    """
    if isinstance(permutations, bool) or not isinstance(permutations, int) or permutations < 1:
        raise ConfigError(f"permutations must be a positive integer, got {permutations!r}")
    diff = _differences(a, b)
    observed = abs(float(diff.mean()))
    n = diff.size
    if n < 63 and 2 ** n <= permutations:
        total, count = 2 ** n, 0
        for start in range(0, total, _BLOCK):
            codes = np.arange(start, min(start + _BLOCK, total), dtype=np.int64)
            signs = 1.0 - 2.0 * ((codes[:, None] >> np.arange(n, dtype=np.int64)) & 1)
            count += _count_extreme(diff, signs, observed)
        return count / total
    rng = np.random.default_rng(seed)
    count = 0
    for start in range(0, permutations, _BLOCK):
        size = min(_BLOCK, permutations - start)
        signs = rng.integers(0, 2, size=(size, n), dtype=np.int8) * 2.0 - 1.0
        count += _count_extreme(diff, signs, observed)
    return (1 + count) / (1 + permutations)


@dataclass(frozen=True)
class SignificanceRow:
    """One measure compared between runs A and B over their common queries.

    Attributes:
        measure: e.g. ``"ndcg@10"``.
        queries: number of paired queries.
        mean_a: mean of A over those queries.
        mean_b: mean of B over those queries.
        delta: ``mean_b - mean_a``.
        t_test_p: two-sided paired t-test p-value.
        randomisation_p: two-sided paired randomisation test p-value.
        significant: both p-values below ``alpha`` (None when no ``alpha`` was given).
    """

    measure: str
    queries: int
    mean_a: float
    mean_b: float
    delta: float
    t_test_p: float
    randomisation_p: float
    significant: bool | None = None

    def to_dict(self) -> dict:
        """A JSON-ready dict (nan p-values become None)."""
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def compare_per_query(per_query_a: Mapping[str, Mapping[str, float]], per_query_b: Mapping[str, Mapping[str, float]],
                      query_ids: Sequence[str] | None = None, permutations: int = 10000, seed: int = 0,
                      alpha: float | None = None) -> list[SignificanceRow]:
    """Paired tests of every measure of ``per_query_a`` between the two systems.

    Args:
        per_query_a: ``{measure: {query_id: value}}`` of system A (as from
            :func:`~splade_lightning.metrics.ir.per_query_metrics`).
        per_query_b: the same for system B, with the same measures.
        query_ids: restrict each measure to these queries (e.g. the queries both runs cover); default: all.
        permutations: see :func:`randomisation_test`.
        seed: see :func:`randomisation_test`.
        alpha: if given, mark rows whose t-test and randomisation p-values are both below it.

    Returns:
        One :class:`SignificanceRow` per measure, in ``per_query_a`` order.

    Raises:
        DataError: if a measure is missing from B, or no query is shared for some measure.
    """
    keep = None if query_ids is None else set(query_ids)
    rows = []
    for measure, values_a in per_query_a.items():
        if measure not in per_query_b:
            raise DataError(f"measure {measure!r} is missing from the second system's per-query values")
        values_b = per_query_b[measure]
        common = [q for q in values_a if q in values_b and (keep is None or q in keep)]
        if not common:
            raise DataError(f"no query has a {measure!r} value for both systems; nothing to compare")
        a, b = [values_a[q] for q in common], [values_b[q] for q in common]
        t_p, r_p = paired_t_test(a, b), randomisation_test(a, b, permutations, seed)
        significant = None if alpha is None else bool(t_p < alpha and r_p < alpha)
        mean_a, mean_b = float(np.mean(a)), float(np.mean(b))
        rows.append(SignificanceRow(measure, len(common), mean_a, mean_b, mean_b - mean_a, t_p, r_p, significant))
    return rows
