"""Statistics over repeated runs (seeds) of one configuration, and tests of configurations against a baseline.

- :func:`summarise`: mean, sample standard deviation (``ddof=1``) and a two-sided Student-t confidence interval
  ``mean ± t_{(1+confidence)/2, n-1} · s / √n`` of one figure over ``n`` seeds. With ``n = 1`` there is no spread
  estimate: std and the interval are ``None``.
- :func:`pool_over_seeds`: each query's score averaged over the seeds of one configuration.
- :func:`baseline_p_value`: the paired randomisation test
  (:func:`~splade_lightning.metrics.significance.randomisation_test`; Smucker, Allan & Carterette, CIKM 2007) of a
  configuration against a baseline on those seed-averaged per-query scores.
- :func:`holm`: Holm–Bonferroni step-down adjusted p-values over a family of comparisons (Holm, "A simple
  sequentially rejective multiple test procedure", Scand. J. Statistics 6(2), 1979).

Why pool by averaging over seeds: the test's unit is the query (the queries are the sample drawn from the population
the conclusion is about), and the seeds of one configuration are repeated measurements of the same query. Averaging
them gives one score per query and configuration, so the pairs stay independent and the test keeps its size, while
seed noise shrinks by ``1/n_seeds``. Concatenating ``(seed, query)`` pairs instead would treat the same query as
several independent samples and overstate significance. No torch, no Lightning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.metrics.significance import randomisation_test

__all__ = ["SeedSummary", "baseline_p_value", "holm", "pool_over_seeds", "summarise", "t_quantile"]


@dataclass(frozen=True)
class SeedSummary:
    """One figure summarised over the seeds of one configuration.

    Attributes:
        n: number of seeds (runs).
        mean: mean over the seeds.
        std: sample standard deviation (``ddof=1``); None when ``n == 1``.
        ci_low: lower end of the Student-t confidence interval; None when ``n == 1``.
        ci_high: upper end of the interval; None when ``n == 1``.
    """

    n: int
    mean: float
    std: float | None
    ci_low: float | None
    ci_high: float | None

    @property
    def half_width(self) -> float | None:
        """Half the width of the confidence interval (``t · s / √n``); None when ``n == 1``."""
        return None if self.ci_high is None else self.ci_high - self.mean


def t_quantile(probability: float, df: int) -> float:
    """The ``probability`` quantile of Student's t distribution with ``df`` degrees of freedom.

    Args:
        probability: in (0, 1), e.g. 0.975 for a two-sided 95% interval.
        df: degrees of freedom (>= 1).

    Returns:
        ``scipy.stats.t.ppf(probability, df)`` (e.g. 4.302653 for ``(0.975, 2)``, 2.776445 for ``(0.975, 4)``).

    Raises:
        ConfigError: on a probability outside (0, 1) or ``df < 1``.
    """
    if not 0.0 < probability < 1.0 or isinstance(df, bool) or not isinstance(df, int) or df < 1:
        raise ConfigError(f"t_quantile: expected 0 < probability < 1 and an integer df >= 1, got {probability!r}, "
                          f"{df!r}")
    return float(stats.t.ppf(probability, df))


def summarise(values: Sequence[float], confidence: float = 0.95) -> SeedSummary:
    """Mean, sample std and Student-t confidence interval of one figure over seeds.

    The interval is ``mean ± t_{(1+confidence)/2, n-1} · s / √n`` with ``s`` the sample standard deviation
    (``ddof=1``): it assumes the per-seed values are independent draws from a normal distribution.

    Args:
        values: the figure of each seed (one value per run), at least one.
        confidence: coverage of the two-sided interval (0.95: a 95% interval).

    Returns:
        A :class:`SeedSummary`; with a single value std and the interval are None (no spread can be estimated).

    Raises:
        ConfigError: if ``confidence`` is not in (0, 1).
        DataError: if ``values`` is empty or holds a non-finite number.
    """
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence!r}")
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0 or not np.isfinite(array).all():
        raise DataError(f"expected a non-empty 1-D sequence of finite values (one per seed), got {list(values)!r}")
    n, mean = int(array.size), float(array.mean())
    if n == 1:
        return SeedSummary(1, mean, None, None, None)
    std = float(array.std(ddof=1))
    half = t_quantile((1.0 + confidence) / 2.0, n - 1) * std / math.sqrt(n)
    return SeedSummary(n, mean, std, mean - half, mean + half)


def pool_over_seeds(per_seed: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Each query's score averaged over the seeds of one configuration.

    Args:
        per_seed: one ``{query_id: score}`` per seed (e.g. nDCG@10 per query of each run).

    Returns:
        ``{query_id: mean score over the seeds}`` for the queries every seed scored (in the first seed's order).

    Raises:
        DataError: if ``per_seed`` is empty or no query is scored by every seed.
    """
    if not per_seed:
        raise DataError("pool_over_seeds: expected the per-query scores of at least one seed")
    common = [q for q in per_seed[0] if all(q in scores for scores in per_seed[1:])]
    if not common:
        raise DataError("pool_over_seeds: no query is scored by every seed")
    return {q: float(np.mean([scores[q] for scores in per_seed])) for q in common}


def baseline_p_value(per_seed: Sequence[Mapping[str, float]], baseline_per_seed: Sequence[Mapping[str, float]],
                          permutations: int = 10000, seed: int = 0) -> float:
    """Two-sided paired randomisation test p-value of a configuration against a baseline, pooled over seeds.

    Each side's per-query scores are first averaged over its seeds (:func:`pool_over_seeds`; the two sides may have
    different seeds), then the queries both sides score are compared with
    :func:`~splade_lightning.metrics.significance.randomisation_test` (Smucker, Allan & Carterette, CIKM 2007).

    Args:
        per_seed: one ``{query_id: score}`` per seed of the configuration.
        baseline_per_seed: the same for the baseline.
        permutations: random sign patterns (all ``2**n`` are enumerated when that is fewer).
        seed: seed of the random sign patterns.

    Returns:
        The p-value.

    Raises:
        DataError: if either side has no scores or no query is shared.
    """
    pooled, baseline = pool_over_seeds(per_seed), pool_over_seeds(baseline_per_seed)
    common = [q for q in baseline if q in pooled]
    if not common:
        raise DataError("baseline_p_value: the configuration and the baseline share no query")
    return randomisation_test([baseline[q] for q in common], [pooled[q] for q in common], permutations, seed)


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm–Bonferroni adjusted p-values of a family of ``m`` comparisons (Holm 1979).

    Sort the p-values ascending, ``p_(1) <= ... <= p_(m)``; the adjusted value of the ``i``-th is
    ``min(1, max_{j <= i} (m - j + 1) · p_(j))``. Rejecting every comparison whose adjusted value is below ``alpha``
    controls the family-wise error rate at ``alpha`` under any dependence between the tests.

    Args:
        p_values: ``{comparison name: raw p-value}``; the family is every entry.

    Returns:
        ``{comparison name: adjusted p-value}`` in the input order.

    Raises:
        DataError: on a p-value outside [0, 1] (or nan).
    """
    bad = {k: p for k, p in p_values.items() if not 0.0 <= p <= 1.0}
    if bad:
        raise DataError(f"holm: p-values must lie in [0, 1], got {bad}")
    m = len(p_values)
    adjusted: dict[str, float] = {}
    running = 0.0
    for rank, (name, p) in enumerate(sorted(p_values.items(), key=lambda item: item[1])):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[name] = running
    return {name: adjusted[name] for name in p_values}
