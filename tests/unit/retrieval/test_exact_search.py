"""exact_search / stack_sparse: against a brute-force reference, ties by ascending index, chunking, layouts, errors."""

from __future__ import annotations

import pytest
import torch

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.retrieval import exact_search, stack_sparse


def reference_search(query_reps: torch.Tensor, doc_reps: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Brute force in float64 with a Python sort by (-score, index)."""
    scores = (query_reps.double() @ doc_reps.double().T).float().tolist()
    indices = [sorted(range(len(row)), key=lambda j: (-row[j], j))[:k] for row in scores]
    values = [[row[j] for j in idx] for row, idx in zip(scores, indices)]
    return torch.tensor(values, dtype=torch.float32), torch.tensor(indices, dtype=torch.int64)


def tie_heavy_reps(rows: int, width: int, seed: int) -> torch.Tensor:
    """Small integer weights on ~25% of dims: exact float sums and many tied scores (including 0)."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(rows, width, generator=gen) < 0.25
    return mask * torch.randint(1, 3, (rows, width), generator=gen).float()


LAYOUTS = {
    "dense": lambda x: x,
    "csr": lambda x: x.to_sparse_csr(),
    "coo": lambda x: x.to_sparse(),
}


def test_hand_computed_example():
    query_reps = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, 0.0]])
    doc_reps = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0], [2.0, 0.0, 1.0]])
    # q0: 1, 2, 4 -> docs 2, 1, 0.  q1: 1, 0, 0 -> doc 0, then the 0-score tie 1 < 2.
    scores, indices = exact_search(query_reps, doc_reps, k=3)
    assert indices.tolist() == [[2, 1, 0], [0, 1, 2]]
    assert scores.tolist() == [[4.0, 2.0, 1.0], [1.0, 0.0, 0.0]]
    assert scores.dtype == torch.float32 and indices.dtype == torch.int64


@pytest.mark.parametrize("query_layout", list(LAYOUTS))
@pytest.mark.parametrize("doc_layout", list(LAYOUTS))
@pytest.mark.parametrize("k", [1, 4, 9, 60, 500])
def test_matches_reference_for_every_layout_chunking_and_k(query_layout, doc_layout, k):
    query_reps, doc_reps = tie_heavy_reps(6, 30, seed=k), tie_heavy_reps(60, 30, seed=100 + k)
    expected_scores, expected_indices = reference_search(query_reps, doc_reps, k)
    for chunk in (7, 60, 65536):  # chunk size 1 is covered by the ties test below
        scores, indices = exact_search(LAYOUTS[query_layout](query_reps), LAYOUTS[doc_layout](doc_reps), k, chunk)
        assert torch.equal(indices, expected_indices), (chunk, indices, expected_indices)
        assert torch.equal(scores, expected_scores)


def test_ties_are_broken_by_ascending_doc_index_across_chunks():
    query_reps = torch.tensor([[1.0, 1.0]])
    doc_reps = torch.tensor([[1.0, 0.0]] * 5 + [[0.0, 0.0]] * 3 + [[0.0, 1.0]] * 4)
    for chunk in (1, 2, 3, 5, 12):
        scores, indices = exact_search(query_reps, doc_reps, k=10, doc_chunk_size=chunk)
        assert indices.tolist() == [[0, 1, 2, 3, 4, 8, 9, 10, 11, 5]]
        assert scores.tolist() == [[1.0] * 9 + [0.0]]


def test_query_without_overlap_returns_lowest_indices_with_zero_scores():
    doc_reps = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    scores, indices = exact_search(torch.tensor([[0.0, 0.0, 5.0]]), doc_reps, k=2)
    assert indices.tolist() == [[0, 1]] and scores.tolist() == [[0.0, 0.0]]


def test_k_larger_than_corpus_and_empty_inputs():
    scores, indices = exact_search(torch.ones(2, 4), torch.ones(3, 4), k=10)
    assert scores.shape == indices.shape == (2, 3)
    assert exact_search(torch.ones(0, 4), torch.ones(3, 4), k=10)[0].shape == (0, 3)
    assert exact_search(torch.ones(2, 4), torch.ones(0, 4), k=10)[1].shape == (2, 0)


def test_negative_weights_and_float64_inputs():
    gen = torch.Generator().manual_seed(0)
    query_reps, doc_reps = torch.randn(4, 16, generator=gen).double(), torch.randn(50, 16, generator=gen).double()
    expected_scores, expected_indices = reference_search(query_reps, doc_reps, 7)
    scores, indices = exact_search(query_reps.to_sparse_csr(), doc_reps, 7, doc_chunk_size=9)
    assert torch.equal(indices, expected_indices)
    torch.testing.assert_close(scores, expected_scores)


@pytest.mark.parametrize(
    ("query_reps", "doc_reps", "kwargs", "error", "match"),
    [
        (torch.ones(2, 3), torch.ones(4, 5), {"k": 1}, DataError, "same vocabulary"),
        (torch.ones(2, 3, 1), torch.ones(4, 3), {"k": 1}, DataError, "2-D"),
        (torch.ones(2, 3), torch.ones(4, 3, dtype=torch.int64), {"k": 1}, DataError, "floating"),
        (torch.tensor([[float("nan"), 1.0]]), torch.ones(4, 2), {"k": 1}, DataError, "NaN"),
        (torch.ones(2, 3), torch.ones(4, 3), {"k": 0}, ConfigError, "k must be a positive integer"),
        (torch.ones(2, 3), torch.ones(4, 3), {"k": 2, "doc_chunk_size": 0}, ConfigError, "doc_chunk_size"),
        ([[1.0]], torch.ones(4, 1), {"k": 1}, DataError, "torch.Tensor"),
    ],
)
def test_bad_inputs_are_rejected(query_reps, doc_reps, kwargs, error, match):
    with pytest.raises(error, match=match):
        exact_search(query_reps, doc_reps, **kwargs)


def test_stack_sparse_mixes_layouts_and_drops_zeros():
    dense = torch.tensor([[0.0, 1.5, 0.0], [0.0, 0.0, 0.0]])
    coo = torch.sparse_coo_tensor([[0, 0], [2, 2]], [1.0, 2.0], (1, 3), check_invariants=True)  # duplicate: summed
    csr = torch.sparse_csr_tensor([0, 2, 3], [0, 1, 2], [0.0, 4.0, 5.0], (2, 3), dtype=torch.float64,
                                  check_invariants=True)  # an explicit zero, dropped
    stacked = stack_sparse([dense, coo, csr])
    assert stacked.layout == torch.sparse_csr and stacked.device.type == "cpu" and stacked.dtype == torch.float32
    assert stacked.shape == (5, 3)
    assert stacked.values().tolist() == [1.5, 3.0, 4.0, 5.0]
    assert stacked.to_dense().tolist() == [[0, 1.5, 0], [0, 0, 0], [0, 0, 3], [0, 4, 0], [0, 0, 5]]


def test_stack_sparse_feeds_exact_search():
    batches = [tie_heavy_reps(7, 20, seed=s) for s in range(3)]
    expected = reference_search(tie_heavy_reps(3, 20, seed=9), torch.cat(batches), 5)
    got = exact_search(tie_heavy_reps(3, 20, seed=9), stack_sparse(batches), 5, doc_chunk_size=4)
    assert torch.equal(got[1], expected[1])


def test_stack_sparse_rejects_bad_batches():
    with pytest.raises(DataError, match="non-empty list"):
        stack_sparse([])
    with pytest.raises(DataError, match=r"batches\[1\] has width 4, expected V=3"):
        stack_sparse([torch.ones(1, 3), torch.ones(1, 4)])
