"""Paired significance tests against hand-computed small cases and scipy."""

import math

import numpy as np
import pytest
from scipy import stats

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.metrics.significance import compare_per_query, paired_t_test, randomisation_test


def test_randomisation_exact_enumeration_by_hand():
    # d = b - a = (1, 2, 3); observed |mean| = 2. Of the 8 sign patterns only (+,+,+) and (-,-,-) reach |mean| 2.
    assert randomisation_test([0, 0, 0], [1, 2, 3], permutations=8) == pytest.approx(2 / 8)
    # d = (1, -1): patterns give |mean| in {0, 0, 1, 1}... observed 0 -> every pattern is as extreme.
    assert randomisation_test([0, 1], [1, 0], permutations=4) == 1.0
    # d = (1, 1, 0, 2): |sum| values over the 16 patterns; observed sum 4 reached only by (+,+,±,+) and (-,-,±,-).
    assert randomisation_test([0, 0, 0, 0], [1, 1, 0, 2], permutations=16) == pytest.approx(4 / 16)


def test_randomisation_monte_carlo_close_to_exact_and_seeded():
    rng = np.random.default_rng(1)
    a = rng.random(12)
    b = a + rng.normal(0.1, 0.2, 12)
    exact = randomisation_test(a, b, permutations=2 ** 12)
    sampled = randomisation_test(a, b, permutations=4000, seed=3)
    assert sampled == pytest.approx(exact, abs=0.03)
    assert sampled == randomisation_test(a, b, permutations=4000, seed=3)
    assert 0 < sampled <= 1


def test_randomisation_identical_systems_p_is_one():
    assert randomisation_test([0.1, 0.5, 0.9], [0.1, 0.5, 0.9]) == 1.0
    assert randomisation_test(list(range(100)), list(range(100)), permutations=100) == 1.0


def test_t_test_matches_scipy_and_handles_degenerate_cases():
    a, b = [0.2, 0.4, 0.5, 0.9, 0.1], [0.3, 0.45, 0.7, 0.85, 0.3]
    assert paired_t_test(a, b) == pytest.approx(stats.ttest_rel(b, a).pvalue)
    # hand computation: d = (.1, .05, .2, -.05, .2), mean .1, sd, t = mean / (sd / sqrt(5))
    d = np.array(b) - np.array(a)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(5))
    assert paired_t_test(a, b) == pytest.approx(2 * stats.t.sf(abs(t), df=4))
    assert paired_t_test(a, a) == 1.0  # scipy gives nan here
    assert math.isnan(paired_t_test([0.1], [0.2]))


def test_bad_inputs():
    with pytest.raises(DataError, match="equal length"):
        paired_t_test([1, 2], [1])
    with pytest.raises(ConfigError, match="permutations"):
        randomisation_test([1, 2], [2, 1], permutations=0)


def test_compare_per_query_restricts_to_common_queries_and_marks_alpha():
    per_a = {"ndcg@10": {"q1": 0.1, "q2": 0.2, "q3": 0.3, "q4": 0.0}}
    per_b = {"ndcg@10": {"q1": 0.2, "q2": 0.4, "q3": 0.6, "q4": 1.0}}
    (row,) = compare_per_query(per_a, per_b, query_ids=["q1", "q2", "q3"], permutations=8, alpha=0.05)
    assert row.queries == 3 and row.mean_a == pytest.approx(0.2) and row.mean_b == pytest.approx(0.4)
    assert row.delta == pytest.approx(0.2)
    assert row.randomisation_p == pytest.approx(2 / 8)
    assert row.t_test_p == pytest.approx(stats.ttest_rel([0.2, 0.4, 0.6], [0.1, 0.2, 0.3]).pvalue)
    assert row.significant is False
    assert row.to_dict()["measure"] == "ndcg@10"
    with pytest.raises(DataError, match="no query"):
        compare_per_query(per_a, per_b, query_ids=["q9"])
