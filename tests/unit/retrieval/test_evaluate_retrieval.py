"""evaluate_retrieval end to end on a toy collection with known rankings, metrics and sparsity."""

from __future__ import annotations

from math import log2

import pytest
import torch

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.retrieval import RetrievalResult, evaluate_retrieval, stack_sparse

# Vocabulary: 0 "cat", 1 "mat", 2 "python", 3 "dog".
DOC_IDS = ["d1", "d2", "d3", "d4", "d5", "d6"]
DOC_REPS = torch.tensor([
    [2.0, 1.0, 0.0, 0.0],  # d1
    [0.0, 0.0, 0.0, 3.0],  # d2
    [0.0, 0.0, 2.0, 0.0],  # d3
    [0.0, 1.0, 0.0, 0.0],  # d4
    [0.0, 0.0, 1.0, 0.0],  # d5
    [0.0, 0.0, 0.0, 0.0],  # d6: empty
])
QUERY_IDS = ["q1", "q2", "q3"]
QUERY_REPS = torch.tensor([
    [1.0, 1.0, 0.0, 0.0],  # d1: 3, d4: 1, others 0
    [0.0, 0.0, 1.0, 0.0],  # d3: 2, d5: 1, others 0
    [0.0, 0.0, 0.0, 1.0],  # d2: 3, others 0
])
QRELS = {"q1": {"d1": 2, "d4": 1}, "q2": {"d3": 2, "d5": 1}, "q3": {"d1": 1}}


def test_toy_collection_end_to_end():
    result = evaluate_retrieval(QUERY_IDS, QUERY_REPS, DOC_IDS, DOC_REPS, QRELS)
    assert isinstance(result, RetrievalResult)
    # exact_search order: score descending, ties by ascending doc index.
    assert list(result.run["q1"].items()) == [("d1", 3.0), ("d4", 1.0), ("d2", 0.0), ("d3", 0.0), ("d5", 0.0),
                                              ("d6", 0.0)]
    # q3's relevant d1 has score 0; trec_eval orders the 0-score tie d6, d5, d4, d3, d1 after d2: rank 6.
    expected = {
        "ndcg@10": (1.0 + 1.0 + 1 / log2(7)) / 3,
        "mrr@10": (1.0 + 1.0 + 1 / 6) / 3,
        "recall@100": 1.0,
        "active_dims_query": 4 / 3,
        "active_dims_doc": 1.0,
        "flops": 1 / 3,  # 6 shared active dims over 18 query-doc pairs
        "zero_fraction_doc": 1 / 6,
    }
    assert result.metrics == pytest.approx(expected)


def test_min_relevance_and_sparse_chunked_inputs_give_the_same_answer():
    dense = evaluate_retrieval(QUERY_IDS, QUERY_REPS, DOC_IDS, DOC_REPS, QRELS, min_relevance=2, k=10,
                               measures=("ndcg@10", "mrr@10", "p@1"))
    sparse = evaluate_retrieval(QUERY_IDS, QUERY_REPS.to_sparse_csr(), DOC_IDS,
                                stack_sparse([DOC_REPS[:4], DOC_REPS[4:]]), QRELS, min_relevance=2, k=10,
                                measures=("ndcg@10", "mrr@10", "p@1"), doc_chunk_size=2)
    assert dense.metrics == sparse.metrics and dense.run == sparse.run
    assert dense.metrics["mrr@10"] == 1.0 and dense.metrics["p@1"] == 1.0  # q3 has no grade >= 2: not averaged


def test_k_must_reach_the_largest_cutoff():
    with pytest.raises(ConfigError, match=r"k=50 is smaller than the cut-off of measure 'recall@100'"):
        evaluate_retrieval(QUERY_IDS, QUERY_REPS, DOC_IDS, DOC_REPS, QRELS, k=50)
    result = evaluate_retrieval(QUERY_IDS, QUERY_REPS, DOC_IDS, DOC_REPS, QRELS, k=2, measures=("mrr@2", "map"))
    assert all(len(ranking) == 2 for ranking in result.run.values())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"query_ids": ["q1", "q2"]}, DataError, "query_ids must list one id per row of query_reps"),
        ({"doc_reps": DOC_REPS[:0]}, DataError, "doc_reps must be a non-empty 2-D"),
        ({"min_relevance": 0}, ConfigError, "min_relevance must be a positive integer"),
        ({"measures": ("ndcg@10", "success@5")}, ConfigError, "unknown measure 'success@5'"),
    ],
)
def test_bad_inputs_are_rejected_before_searching(kwargs, error, match):
    args = {"query_ids": QUERY_IDS, "query_reps": QUERY_REPS, "doc_ids": DOC_IDS, "doc_reps": DOC_REPS,
            "qrels": QRELS} | kwargs
    with pytest.raises(error, match=match):
        evaluate_retrieval(**args)


def test_no_collective_under_an_initialised_process_group(tmp_path, monkeypatch):
    """Under DDP every process evaluates complete reps: the sparsity statistics must not be gathered (with NCCL, a
    gather of their CPU states failed: "No backend type associated with device type cpu", on a single H200)."""
    import torch.distributed as dist

    def refuse(*args, **kwargs):
        raise AssertionError("evaluate_retrieval called a collective")

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        expected = None
        for name in ("all_gather", "all_reduce", "all_gather_object"):
            monkeypatch.setattr(dist, name, refuse)
        expected = evaluate_retrieval(QUERY_IDS, QUERY_REPS, DOC_IDS, DOC_REPS, QRELS).metrics
    finally:
        monkeypatch.undo()
        dist.destroy_process_group()
    assert expected == evaluate_retrieval(QUERY_IDS, QUERY_REPS, DOC_IDS, DOC_REPS, QRELS).metrics
