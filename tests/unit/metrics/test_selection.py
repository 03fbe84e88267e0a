"""The best-of-both selection score: in-domain quality, subject to an out-of-domain floor against zero-shot."""

from __future__ import annotations

import pytest

from splade_lightning.callbacks import SelectionCriterion
from splade_lightning.errors import ConfigError
from splade_lightning.metrics.selection import selection_score

ZERO = {"in": {"ndcg@10": 0.50}, "oodA": {"ndcg@10": 0.40}, "oodB": {"ndcg@10": 0.60}, "mean": {"ndcg@10": 0.5}}


def score(in_value: float, ood_a: float, ood_b: float, max_drop: float = 0.005):
    metrics = {"in": {"ndcg@10": in_value}, "oodA": {"ndcg@10": ood_a}, "oodB": {"ndcg@10": ood_b}}
    return selection_score(metrics, ZERO, ["in"], ["oodA", "oodB"], "ndcg@10", max_drop)


def test_a_feasible_candidate_scores_its_in_domain_value():
    result = score(0.56, 0.41, 0.59)  # out-of-domain mean unchanged
    assert result.feasible and result.score == pytest.approx(0.56)
    assert result.in_domain_change == pytest.approx(0.06) and result.out_of_domain_change == pytest.approx(0.0)


def test_the_floor_is_on_the_mean_change_and_inclusive():
    assert score(0.6, 0.39, 0.60, max_drop=0.005).feasible  # mean change -0.005: at the floor
    assert not score(0.6, 0.38, 0.60, max_drop=0.005).feasible  # -0.010
    assert score(0.6, 0.38, 0.60, max_drop=0.01).feasible


def test_every_feasible_candidate_beats_every_infeasible_one_and_less_violation_wins():
    best_in_domain_but_forgets = score(0.90, 0.20, 0.40)
    modest = score(0.51, 0.40, 0.60)
    slightly_over = score(0.70, 0.38, 0.60)  # violation 0.005
    far_over = score(0.95, 0.10, 0.10)
    assert modest.score > slightly_over.score > best_in_domain_but_forgets.score > far_over.score
    assert slightly_over.score == pytest.approx(-1 - 0.005)


def test_several_in_domain_sets_are_averaged():
    metrics = {"a": {"m": 0.2}, "b": {"m": 0.4}, "c": {"m": 0.5}}
    zero = {"a": {"m": 0.1}, "b": {"m": 0.3}, "c": {"m": 0.5}}
    result = selection_score(metrics, zero, ["a", "b"], ["c"], "m", 0.0)
    assert result.score == pytest.approx(0.3) and result.in_domain_change == pytest.approx(0.1)


def test_missing_sets_are_named():
    with pytest.raises(KeyError, match=r"candidate evaluation has no ndcg@10 for \['oodB'\]"):
        selection_score({"in": {"ndcg@10": 1.0}, "oodA": {"ndcg@10": 1.0}}, ZERO, ["in"], ["oodA", "oodB"],
                        "ndcg@10", 0.0)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"in_domain": [], "out_of_domain": ["b"]}, "in_domain: got no set names"),
    ({"in_domain": ["a"], "out_of_domain": []}, "out_of_domain: got no set names"),
    ({"in_domain": ["a"], "out_of_domain": ["a"]}, r"both in_domain and out_of_domain: \['a'\]"),
    ({"in_domain": ["a"], "out_of_domain": ["b"], "max_drop": -0.1}, "max_drop: got -0.1"),
    ({"in_domain": ["a"], "out_of_domain": ["b"], "name": "x/y"}, "name: got 'x/y'"),
])
def test_bad_arguments_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        SelectionCriterion(**kwargs)
