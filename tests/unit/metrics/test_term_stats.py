"""Top expanded terms, document frequencies, example selection, active-dims percentiles (hand-computed values)."""

import math

import numpy as np
import pytest
import torch

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.metrics.active_dims import (
    ActiveDimsDistribution,
    active_dims_per_text,
    check_percentiles,
    percentiles,
)
from splade_lightning.metrics.term_stats import document_frequency, example_pairs, histogram_bins, log10_df, top_terms

REPS = torch.tensor([[0.0, 2.0, 0.5, 0.0, 2.0],
                     [1.0, 0.0, 0.0, 0.0, 0.0],
                     [0.0, 3.0, 0.0, 0.0, 0.0],
                     [0.0, 0.0, 0.0, 0.0, 0.0]])


@pytest.mark.parametrize("layout", ["dense", "coo", "csr"])
def test_document_frequency_and_active_dims(layout):
    reps = {"dense": REPS, "coo": REPS.to_sparse(), "csr": REPS.to_sparse_csr()}[layout]
    assert document_frequency(reps).tolist() == [1, 2, 1, 0, 1]
    assert active_dims_per_text(reps).tolist() == [3, 1, 1, 0]


def test_log10_df_keeps_active_terms_only():
    df = torch.tensor([1, 0, 10, 100, 0])
    assert log10_df(df).tolist() == pytest.approx([0.0, 1.0, 2.0])
    with pytest.raises(DataError):
        log10_df(torch.ones(2, 2))


def test_top_terms_orders_by_weight_then_dimension():
    assert top_terms(REPS, 2) == [[(1, 2.0), (4, 2.0)], [(0, 1.0)], [(1, 3.0)], []]
    assert top_terms(REPS.to_sparse(), 10)[0] == [(1, 2.0), (4, 2.0), (2, 0.5)]
    with pytest.raises(ConfigError, match="k=0"):
        top_terms(REPS, 0)
    with pytest.raises(DataError):
        top_terms(torch.ones(3), 1)


def test_example_pairs_pick_the_most_relevant_document_in_the_corpus():
    qrels = {"q1": {"d9": 3, "d1": 1, "d2": 2, "d3": 2}, "q2": {"d4": 0}, "q3": {"d5": 1}}
    corpus = {"d1": "", "d2": "", "d3": "", "d4": "", "d5": ""}
    # d9 is not in the corpus; d2 and d3 tie at grade 2: first in qrels order; q2's only document is non-relevant
    assert example_pairs(["q1", "q2", "q3"], qrels, corpus, 2) == [("q1", "d2"), ("q2", None)]
    assert example_pairs(["q1", "q3"], qrels, set(corpus), 5, min_relevance=2) == [("q1", "d2"), ("q3", None)]


def test_percentiles_match_numpy():
    values = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])
    expected = np.percentile(values.numpy(), [10, 50, 90])
    assert list(percentiles(values, [10, 50, 90]).values()) == pytest.approx(expected.tolist())
    assert percentiles(torch.tensor([7]), [0, 100]) == {0: 7.0, 100: 7.0}
    with pytest.raises(DataError):
        percentiles(torch.tensor([]), [50])


@pytest.mark.parametrize("bad", [[10, 101], [50, 50], [0.5], "50", [True]])
def test_check_percentiles_rejects(bad):
    with pytest.raises(ConfigError, match="percentiles"):
        check_percentiles(bad)


@pytest.mark.filterwarnings("ignore:The ``compute`` method")
def test_active_dims_distribution_accumulates_and_resets():
    metric = ActiveDimsDistribution()
    with pytest.raises(DataError):
        metric.compute()
    metric.update(REPS)
    metric.update(REPS[:2].to_sparse_csr())
    assert metric.compute().tolist() == [3, 1, 1, 0, 3, 1]
    metric.reset()
    metric.update(REPS[2:])
    assert metric.compute().tolist() == [1, 0]


def test_histogram_bins_cover_every_value():
    values = torch.tensor([0.0, 0.0, 0.5, math.log10(6)])
    counts, edges = histogram_bins(values, 4)
    assert sum(counts) == 4 and len(edges) == 5
    assert edges[0] == 0.0 and edges[-1] == pytest.approx(math.log10(6))
    assert counts[0] == 2 and counts[-1] == 1
    assert histogram_bins(torch.tensor([2.0, 2.0]), 3)[0] == [0, 2, 0]  # one distinct value: a unit-wide range
    assert histogram_bins(torch.tensor([]), 3) == ([], [])
