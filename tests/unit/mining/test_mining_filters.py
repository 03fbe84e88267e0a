"""The ST6 ``mine_hard_negatives`` filters and negative selection, on hand-computed score arrays."""

import numpy as np
import pytest

from splade_lightning.mining.filters import (
    MiningRule,
    absolute_margin_mask,
    apply_filters,
    default_range_max,
    max_score_mask,
    min_positive_scores,
    min_score_mask,
    mine_negatives,
    query_rng,
    relative_margin_mask,
    select_negatives,
    widens_range,
)

INF = np.inf


def test_absolute_margin_drops_s_plus_margin_above_p():
    scores = np.array([[5.0, 4.0, 3.0, 2.0]])
    # p = 4, m = 1: drop s + 1 > 4, i.e. s > 3; s = 3 is kept (3 + 1 = 4 is not > 4)
    assert absolute_margin_mask(scores, np.array([4.0]), 1.0).tolist() == [[True, True, False, False]]
    # margin 0: a negative must not score above the positive; equal is kept
    assert absolute_margin_mask(scores, np.array([4.0]), 0.0).tolist() == [[True, False, False, False]]


def test_relative_margin_positive_p():
    scores = np.array([[9.5, 9.0, 8.0]])
    # p = 10, m = 0.1: threshold 10 - 10 * 0.1 = 9, drop s > 9
    assert relative_margin_mask(scores, np.array([10.0]), 0.1).tolist() == [[True, False, False]]


def test_relative_margin_negative_p_is_st6_not_st5():
    scores = np.array([[-2.5, -3.0, -4.0]])
    p, m = np.array([-2.0]), 0.5
    # ST6: threshold p - |p| m = -2 - 1 = -3, drop s > -3: only -2.5
    assert relative_margin_mask(scores, p, m).tolist() == [[True, False, False]]
    st5 = scores > (p * (1 - m))[:, None]  # ST5: p (1 - m) = -1 would keep all three, even -2.5 > p
    assert st5.tolist() == [[False, False, False]]


def test_max_and_min_score():
    scores = np.array([[3.0, 2.0, 1.0, 0.5]])
    assert max_score_mask(scores, 2.0).tolist() == [[True, False, False, False]]
    assert min_score_mask(scores, 1.0).tolist() == [[False, False, False, True]]


def test_margins_use_the_minimum_positive_score():
    assert min_positive_scores([[10.0, 4.0], [3.0]]).tolist() == [4.0, 3.0]
    rule = MiningRule(absolute_margin=0.0)
    filtered, removed = apply_filters(np.array([[5.0, 4.0, 3.5]]), min_positive_scores([[10.0, 4.0]]), rule)
    assert filtered.tolist() == [[-INF, 4.0, 3.5]] and removed == {"absolute_margin": 1}


def test_apply_filters_order_and_counts():
    scores = np.array([[9.0, 7.0, 5.0, 3.0, 1.0, -INF]])
    rule = MiningRule(absolute_margin=1.0, relative_margin=0.2, max_score=4.5, min_score=2.0)
    filtered, removed = apply_filters(scores, np.array([10.0]), rule)
    # absolute: s > 9 -> none (9 + 1 = 10 is not > 10); relative: s > 8 -> 9; max: s > 4.5 -> 7, 5; min: s < 2 -> 1
    # the -inf candidate is never counted
    assert filtered.tolist() == [[-INF, -INF, -INF, 3.0, -INF, -INF]]
    assert removed == {"absolute_margin": 0, "relative_margin": 1, "max_score": 2, "min_score": 1}
    assert scores[0, 0] == 9.0  # the input is not modified


def test_default_range_max_is_sts_rule():
    assert default_range_max(0, 3, 1, widened=False) == 4
    assert default_range_max(2, 3, 2, widened=False) == 7
    assert default_range_max(0, 3, 1, widened=True) == 31
    assert default_range_max(5, 4, 2, widened=True) == 47
    assert widens_range(0.0, None, None) and widens_range(None, 0.1, None) and widens_range(None, None, 1.0)
    assert not widens_range(None, None, None)  # min_score alone widens only with a cross-encoder in ST


def test_select_range_min_and_range_max():
    scores = np.array([9.0, 8.0, 7.0, 6.0, 5.0, 4.0])
    rule = MiningRule(num_negatives=2, range_min=1, range_max=4)
    assert select_negatives(scores, rule).tolist() == [1, 2]
    rule = MiningRule(num_negatives=3, range_min=2, range_max=4)  # only ranks 2..3 are left
    assert select_negatives(scores, rule).tolist() == [2, 3]


def test_select_counts_ranges_after_filtering_like_st():
    # ST sorts the filtered scores (-inf last), then cuts range_max and drops range_min: ranks are among survivors
    scores = np.array([-INF, 9.0, -INF, 8.0, 7.0, 6.0])
    rule = MiningRule(num_negatives=2, range_min=1, range_max=3)
    assert select_negatives(scores, rule).tolist() == [3, 4]


def test_select_top_returns_fewer_when_few_survive():
    scores = np.array([-INF, 2.0, -INF, -INF])
    assert select_negatives(scores, MiningRule(num_negatives=3, range_max=4)).tolist() == [1]
    assert select_negatives(np.full(4, -INF), MiningRule(num_negatives=3, range_max=4)).tolist() == []


def test_select_ties_keep_retrieval_order():
    scores = np.array([5.0, 7.0, 5.0, 7.0])
    assert select_negatives(scores, MiningRule(num_negatives=4, range_max=4)).tolist() == [1, 3, 0, 2]


def test_random_sampling_is_seeded_per_query():
    scores = np.arange(20.0, 0.0, -1.0)
    rule = MiningRule(num_negatives=4, range_min=2, range_max=15, sampling_strategy="random")
    first = select_negatives(scores, rule, query_rng(7, "q1"))
    assert first.tolist() == select_negatives(scores, rule, query_rng(7, "q1")).tolist()
    assert len(first) == 4 and len(set(first.tolist())) == 4
    assert all(2 <= i < 15 for i in first)  # within [range_min, range_max)
    assert np.all(np.diff(scores[first]) < 0)  # re-sorted by score, as ST does
    others = {tuple(select_negatives(scores, rule, query_rng(seed, "q1")).tolist()) for seed in range(8)}
    assert len(others) > 1
    by_query = {tuple(select_negatives(scores, rule, query_rng(7, f"q{i}")).tolist()) for i in range(8)}
    assert len(by_query) > 1  # each query draws its own sample


def test_random_sampling_only_draws_survivors():
    scores = np.array([9.0, -INF, 8.0, -INF, 7.0, -INF, 6.0])
    rule = MiningRule(num_negatives=2, range_max=7, sampling_strategy="random")
    for seed in range(20):
        picked = select_negatives(scores, rule, query_rng(seed, "q"))
        assert np.isfinite(scores[picked]).all() and len(picked) == 2
    few = MiningRule(num_negatives=6, range_max=7, sampling_strategy="random")
    assert select_negatives(scores, few, query_rng(0, "q")).tolist() == [0, 2, 4, 6]


def test_random_sampling_does_not_depend_on_the_batch():
    rule = MiningRule(num_negatives=2, range_max=6, sampling_strategy="random")
    scores = np.array([[6.0, 5.0, 4.0, 3.0, 2.0, 1.0], [16.0, 15.0, 14.0, 13.0, 12.0, 11.0]])
    rows = np.array([[10, 11, 12, 13, 14, 15], [20, 21, 22, 23, 24, 25]])
    both = mine_negatives(scores, rows, [[99], [99]], [[100.0], [100.0]], rule,
                          [query_rng(3, "a"), query_rng(3, "b")])
    alone = mine_negatives(scores[1:], rows[1:], [[99]], [[100.0]], rule, [query_rng(3, "b")])
    assert both.rows[1].tolist() == alone.rows[0].tolist()


def test_mine_negatives_excludes_positives_and_padding():
    scores = np.array([[10.0, 9.0, 8.0, 7.0, 6.0, 5.0]])
    rows = np.array([[3, 7, 1, -1, 4, 2]])  # row 3 and 1 are positives; -1 is padding with a (bogus) score
    mined = mine_negatives(scores, rows, [[3, 1]], [[10.0, 8.0]], MiningRule(num_negatives=3, range_max=6))
    assert mined.rows[0].tolist() == [7, 4, 2]
    assert mined.scores[0].tolist() == [9.0, 6.0, 5.0]
    assert mined.removed == {}


def test_mine_negatives_relative_margin_against_harder_positive():
    scores = np.array([[10.0, 9.0, 8.0, 7.0, 6.0]])
    rows = np.array([[0, 1, 2, 3, 4]])
    rule = MiningRule(num_negatives=2, range_max=5, relative_margin=0.1)
    # positives 0 (score 10) and 5 (score 8, not retrieved): p = 8, threshold 7.2 -> 9 and 8 dropped
    mined = mine_negatives(scores, rows, [[0, 5]], [[10.0, 8.0]], rule)
    assert mined.rows[0].tolist() == [3, 4]
    assert mined.removed == {"relative_margin": 2}


def test_mine_negatives_empty_batch():
    mined = mine_negatives(np.zeros((0, 4)), np.zeros((0, 4), dtype=np.int64), [], [], MiningRule())
    assert mined.rows == [] and mined.scores == []


def test_select_random_needs_rng():
    with pytest.raises(ValueError, match="rng"):
        select_negatives(np.arange(10.0), MiningRule(num_negatives=2, range_max=10, sampling_strategy="random"))
