"""Statistics over seeds (mean, std, Student-t interval), seed-pooled paired test and Holm, on hand-computed cases."""

import math

import pytest

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.metrics.seed_stats import baseline_p_value, holm, pool_over_seeds, summarise, t_quantile


@pytest.mark.parametrize(("df", "expected"), [(1, 12.706205), (2, 4.302653), (4, 2.776445), (9, 2.262157)])
def test_t_quantile_matches_published_table(df, expected):
    assert t_quantile(0.975, df) == pytest.approx(expected, abs=1e-6)


def test_summarise_three_seeds_by_hand():
    # values 1, 2, 3: mean 2, s^2 = (1 + 0 + 1) / 2 = 1, half-width = t_{0.975,2} * 1 / sqrt(3) = 4.302653 / 1.732051
    summary = summarise([1.0, 2.0, 3.0])
    half = 4.302653 / math.sqrt(3)
    assert (summary.n, summary.mean, summary.std) == (3, 2.0, pytest.approx(1.0))
    assert summary.ci_low == pytest.approx(2.0 - half, abs=1e-6)
    assert summary.ci_high == pytest.approx(2.0 + half, abs=1e-6)
    assert summary.half_width == pytest.approx(half, abs=1e-6)


def test_summarise_five_seeds_by_hand():
    # 0.5, 0.6, 0.7, 0.8, 0.9: mean 0.7, s^2 = (0.04 + 0.01 + 0 + 0.01 + 0.04) / 4 = 0.025
    summary = summarise([0.5, 0.6, 0.7, 0.8, 0.9])
    s = math.sqrt(0.025)
    assert summary.mean == pytest.approx(0.7) and summary.std == pytest.approx(s)
    assert summary.half_width == pytest.approx(2.776445 * s / math.sqrt(5), abs=1e-6)


def test_summarise_single_seed_has_no_spread():
    summary = summarise([0.42])
    assert (summary.n, summary.mean, summary.std, summary.ci_low, summary.ci_high, summary.half_width) == (
        1, 0.42, None, None, None, None)


def test_summarise_rejects_bad_input():
    with pytest.raises(DataError):
        summarise([])
    with pytest.raises(DataError):
        summarise([0.1, math.nan])
    with pytest.raises(ConfigError):
        summarise([0.1, 0.2], confidence=1.0)


def test_pool_over_seeds_averages_each_query_over_seeds_it_has_in_common():
    pooled = pool_over_seeds([{"q1": 0.2, "q2": 0.4, "q3": 1.0}, {"q1": 0.4, "q2": 0.8}])
    assert pooled == {"q1": pytest.approx(0.3), "q2": pytest.approx(0.6)}
    with pytest.raises(DataError):
        pool_over_seeds([])
    with pytest.raises(DataError, match="no query"):
        pool_over_seeds([{"q1": 1.0}, {"q2": 1.0}])


def test_baseline_p_value_exact_case_by_hand():
    # baseline seeds average to (0, 0, 0); the point's to (1, 2, 3) -> d = (1, 2, 3): only (+,+,+) and (-,-,-) of
    # the 8 sign patterns reach |mean d| = 2, so p = 2 / 8.
    baseline = [{"a": 0.0, "b": 0.5, "c": -1.0}, {"a": 0.0, "b": -0.5, "c": 1.0}]
    point = [{"a": 0.5, "b": 2.0, "c": 3.0}, {"a": 1.5, "b": 2.0, "c": 3.0}]
    assert baseline_p_value(point, baseline, permutations=8) == pytest.approx(2 / 8)
    assert baseline_p_value(baseline, baseline) == 1.0
    with pytest.raises(DataError, match="share no query"):
        baseline_p_value([{"x": 1.0}], [{"y": 1.0}])


def test_holm_by_hand():
    adjusted = holm({"a": 0.02, "b": 0.04, "c": 0.01, "d": 0.5})
    assert list(adjusted) == ["a", "b", "c", "d"]
    # m = 4: c 0.01*4 = 0.04; a 0.02*3 = 0.06; b 0.04*2 = 0.08; d 0.5*1 = 0.5
    assert adjusted == pytest.approx({"a": 0.06, "b": 0.08, "c": 0.04, "d": 0.5})


def test_holm_is_monotone_and_capped():
    # sorted 0.01 (x3 = 0.03), 0.011 (x2 = 0.022 -> raised to 0.03), 0.6 (x1 = 0.6); and a cap at 1
    assert holm({"x": 0.011, "y": 0.01, "z": 0.6}) == pytest.approx({"x": 0.03, "y": 0.03, "z": 0.6})
    assert holm({"x": 0.4, "y": 0.5}) == pytest.approx({"x": 0.8, "y": 0.8})
    assert holm({"x": 0.6, "y": 0.7}) == {"x": 1.0, "y": 1.0}
    assert holm({}) == {}
    with pytest.raises(DataError):
        holm({"x": 1.5})
