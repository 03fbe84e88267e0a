"""similarity_scores, select_max_active_dims and intersection on hand-made vectors with known results."""

import pytest
import torch

from splade_lightning.errors import ConfigError
from splade_lightning.retrieval.sparse_ops import (
    check_max_active_dims,
    intersection,
    select_max_active_dims,
    similarity_scores,
)

A = torch.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]])
B = torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
A_DOT_B = torch.tensor([[3.0, 2.0, 0.0], [3.0, 0.0, 0.0]])


@pytest.mark.parametrize("layouts", [("dense", "dense"), ("coo", "coo"), ("coo", "dense"), ("dense", "coo"),
                                     ("csr", "coo")])
def test_similarity_is_the_dot_product_in_every_layout(layouts):
    convert = {"dense": lambda x: x, "coo": lambda x: x.to_sparse(), "csr": lambda x: x.to_sparse_csr()}
    scores = similarity_scores(convert[layouts[0]](A), convert[layouts[1]](B))
    assert scores.layout == torch.strided and scores.dtype == torch.float32
    torch.testing.assert_close(scores, A_DOT_B, rtol=0, atol=0)


def test_similarity_shapes_lists_and_precision():
    assert similarity_scores(A[0], B).shape == (1, 3)  # a vector counts as one row
    torch.testing.assert_close(similarity_scores(A, B[1].to_sparse()), A_DOT_B[:, 1:2], rtol=0, atol=0)
    torch.testing.assert_close(similarity_scores([a.to_sparse() for a in A], list(B)), A_DOT_B, rtol=0, atol=0)
    half = similarity_scores(A.half(), B.bfloat16())
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, A_DOT_B)
    assert similarity_scores(A.double(), B).dtype == torch.float64
    assert similarity_scores(A.long(), B.long()).dtype == torch.float32


@pytest.mark.parametrize(("a", "b", "message"), [
    (A, B[:, :2], "a has 3 dimensions but b has 2"),
    (A.reshape(1, 2, 3), B, r"a: got shape \(1, 2, 3\); expected a vector \(V,\) or a matrix \(N, V\)"),
    ([[1.0, 0.0]], B, "a: got list; expected a torch.Tensor"),
    (A, [], "b: got list; expected a torch.Tensor"),
])
def test_similarity_refuses_bad_inputs(a, b, message):
    with pytest.raises(ConfigError, match=message):
        similarity_scores(a, b)


@pytest.mark.parametrize(("row", "k", "expected"), [
    ([0.5, 3.0, 1.0, 2.5, 0.0, 2.0], 2, [0.0, 3.0, 0.0, 2.5, 0.0, 0.0]),
    ([0.5, 3.0, 1.0, 2.5, 0.0, 2.0], 1, [0.0, 3.0, 0.0, 0.0, 0.0, 0.0]),
    ([2.0, 1.0, 1.0, 1.0], 2, [2.0, 1.0, 0.0, 0.0]),  # a tie at the cut-off: the lower index stays
    ([1.0, 2.0, 0.0, 2.0], 1, [0.0, 2.0, 0.0, 0.0]),
    ([0.0, 1.0, 0.0, 2.0], 3, [0.0, 1.0, 0.0, 2.0]),  # fewer active than k: unchanged
    ([0.0, 1.0, 0.0, 2.0], 100, [0.0, 1.0, 0.0, 2.0]),  # k above the width
    ([-3.0, 1.0, 2.0], 1, [-3.0, 0.0, 0.0]),  # by absolute value, sign kept
])
def test_select_max_active_dims_known_rows(row, k, expected):
    reps = torch.tensor([row])
    out = select_max_active_dims(reps, k)
    torch.testing.assert_close(out, torch.tensor([expected]), rtol=0, atol=0)
    assert torch.equal(reps, torch.tensor([row]))  # the input is not modified


def test_select_max_active_dims_rows_are_independent_and_none_keeps_all():
    reps = torch.tensor([[[1.0, 5.0, 3.0], [4.0, 0.0, 2.0]], [[0.0, 0.0, 7.0], [1.0, 1.0, 1.0]]])  # (2, 2, V)
    expected = torch.tensor([[[0.0, 5.0, 3.0], [4.0, 0.0, 2.0]], [[0.0, 0.0, 7.0], [1.0, 1.0, 0.0]]])
    torch.testing.assert_close(select_max_active_dims(reps, 2), expected, rtol=0, atol=0)
    assert select_max_active_dims(reps, None) is reps


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2"])
def test_max_active_dims_must_be_none_or_a_positive_integer(bad):
    with pytest.raises(ConfigError, match=rf"encode_query: max_active_dims={bad!r}; expected None \(no limit\) or "
                                          "an integer >= 1"):
        check_max_active_dims(bad, "encode_query")
    with pytest.raises(ConfigError, match="max_active_dims"):
        select_max_active_dims(A, bad)
    assert check_max_active_dims(None, "x") is None and check_max_active_dims(3, "x") == 3


def test_intersection_keeps_shared_dimensions_with_the_products():
    query = torch.tensor([0.0, 2.0, 1.0, 0.0])
    docs = torch.tensor([[1.0, 1.5, 0.0, 3.0], [0.0, 0.0, 5.0, 0.0], [4.0, 0.0, 0.0, 4.0]])
    out = intersection(query.to_sparse(), docs)
    assert out.is_sparse and out.is_coalesced() and out.shape == docs.shape
    torch.testing.assert_close(out.to_dense(), torch.tensor([[0.0, 3.0, 0.0, 0.0], [0.0, 0.0, 5.0, 0.0],
                                                             [0.0, 0.0, 0.0, 0.0]]), rtol=0, atol=0)
    torch.testing.assert_close(out.to_dense().sum(dim=1), docs @ query, rtol=0, atol=0)  # the terms of the dot product
    one = intersection(query, docs[0].to_sparse())
    assert one.shape == (4,) and one.indices().tolist() == [[1]] and one.values().tolist() == [3.0]


def test_intersection_keeps_positive_products_only():
    out = intersection(torch.tensor([-1.0, 2.0, -3.0]), torch.tensor([-2.0, -1.0, 0.0]))
    assert out.indices().tolist() == [[0]] and out.values().tolist() == [2.0]  # (-1)(-2) > 0; 2(-1) < 0 dropped


@pytest.mark.parametrize(("query", "doc", "message"), [
    (torch.ones(1, 3), torch.ones(3), r"query has shape \(1, 3\); expected one vector \(V,\)"),
    (torch.ones(3), torch.ones(2, 4), "query has 3 dimensions but doc has 4"),
    (torch.ones(3), torch.ones(1, 1, 3), r"doc: got shape \(1, 1, 3\)"),
])
def test_intersection_refuses_bad_shapes(query, doc, message):
    with pytest.raises(ConfigError, match=message):
        intersection(query, doc)
