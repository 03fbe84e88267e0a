"""Index compression schemes on hand-made vectors: exact values, dropped zeros, index sizes, layouts and errors."""

from __future__ import annotations

import pytest
import torch

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.retrieval import exact_search
from splade_lightning.retrieval.quantize import (
    IndexSize,
    impact_values,
    index_size,
    integer_impacts,
    to_float16,
    top_k_per_doc,
    uniform_bits,
)
from splade_lightning.serialization.anserini import impacts

LAYOUTS = {"dense": lambda x: x, "csr": lambda x: x.to_sparse_csr(), "coo": lambda x: x.to_sparse()}


def _check_clean_csr(reps: torch.Tensor) -> None:
    assert reps.layout == torch.sparse_csr and reps.dtype == torch.float32
    assert bool((reps.values() != 0).all())


@pytest.mark.parametrize("layout", LAYOUTS)
def test_integer_impacts_round_half_to_even_and_drop_zeros(layout):
    docs = torch.tensor([[0.0, 0.124, 1.0, 2.5], [0.3, 0.0, 0.05, 0.0]])
    out = integer_impacts(LAYOUTS[layout](docs), scale=10)
    _check_clean_csr(out.reps)
    # 1.24 -> 1, 10 -> 10, 25 -> 25; 3 -> 3, 0.5 -> 0 (half to even) is dropped
    assert out.reps.to_dense().tolist() == [[0.0, 1.0, 10.0, 25.0], [3.0, 0.0, 0.0, 0.0]]
    assert out.size == IndexSize(postings=4, value_bits=5)  # 25 needs 5 bits
    assert out.size.bytes == 19  # ceil(4 * (32 + 5) / 8) = ceil(18.5)


def test_integer_impacts_sign_bit_and_the_anserini_export_use_the_same_rounding():
    out = integer_impacts(torch.tensor([[-3.0, 0.2, 0.0]]), scale=1)
    assert out.reps.to_dense().tolist() == [[-3.0, 0.0, 0.0]]
    assert out.size == IndexSize(postings=1, value_bits=3)  # 2 bits for 3, 1 for the sign
    reps = torch.tensor([[0.0, 0.124, 1.0, 2.5], [0.3, 0.0, 0.05, 0.0]])
    assert impacts(reps, 10) == [{1: 1, 2: 10, 3: 25}, {0: 3}]
    assert impact_values(reps, 10).tolist() == [[0, 1, 10, 25], [3, 0, 0, 0]]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_uniform_bits_uses_one_collection_step(layout):
    # max 3.0 and 2 bits: step 3 / (2**2 - 1) = 1.0; codes round(w / 1.0): 0.4 -> 0, 1.6 -> 2, 0.5 -> 0, 2.5 -> 2
    docs = torch.tensor([[0.0, 0.4, 1.6, 3.0], [0.5, 0.0, 2.5, 0.0]])
    out = uniform_bits(LAYOUTS[layout](docs), bits=2)
    _check_clean_csr(out.reps)
    assert out.reps.to_dense().tolist() == [[0.0, 0.0, 2.0, 3.0], [0.0, 0.0, 2.0, 0.0]]
    assert out.size == IndexSize(postings=3, value_bits=2)
    assert out.size.bytes == 13  # ceil(3 * 34 / 8) = ceil(12.75)


def test_uniform_bits_dequantises_with_a_fractional_step():
    out = uniform_bits(torch.tensor([[0.3, 1.5], [0.9, 0.0]]), bits=3)  # step 1.5 / 7
    step = 1.5 / 7  # codes round(0.3 / step) = round(1.4) = 1, 7 and round(4.2) = 4
    assert out.reps.to_dense().flatten().tolist() == pytest.approx([1 * step, 7 * step, 4 * step, 0.0], abs=1e-7)


def test_float16_rounds_and_drops_underflow():
    out = to_float16(torch.tensor([[1.0, 1e-9, 0.1]]))
    _check_clean_csr(out.reps)
    assert out.reps.to_dense().tolist() == [[1.0, 0.0, 0.0999755859375]]  # 1e-9 underflows to 0 and is dropped
    assert out.size == IndexSize(postings=2, value_bits=16)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_top_k_per_doc_keeps_the_heaviest_and_the_lower_dimension_in_ties(layout):
    docs = torch.tensor([[0.5, 2.0, 2.0, 1.0], [0.0, 3.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    out = top_k_per_doc(LAYOUTS[layout](docs), k=2)
    _check_clean_csr(out.reps)
    assert out.reps.to_dense().tolist() == [[0.0, 2.0, 2.0, 0.0], [0.0, 3.0, 0.0, 0.0], [1.0, 1.0, 0.0, 0.0],
                                            [0.0, 0.0, 0.0, 0.0]]
    assert out.size == IndexSize(postings=5, value_bits=32)
    assert out.size.bytes == 40


def test_index_size_counts_nonzeros_and_results_are_searchable():
    docs = torch.tensor([[0.0, 0.4, 1.6, 3.0], [0.5, 0.0, 2.5, 0.0]])
    assert index_size(docs, 32) == IndexSize(postings=5, value_bits=32)
    assert index_size(docs, 32).bytes == 40
    scores, indices = exact_search(torch.tensor([[0.0, 0.0, 1.0, 1.0]]), uniform_bits(docs, 2).reps, k=2)
    assert scores.tolist() == [[5.0, 2.0]] and indices.tolist() == [[0, 1]]


@pytest.mark.parametrize("call", [
    lambda d: integer_impacts(d, 0), lambda d: integer_impacts(d, float("inf")), lambda d: uniform_bits(d, 0),
    lambda d: uniform_bits(d, 17), lambda d: top_k_per_doc(d, 0), lambda d: top_k_per_doc(d, True),
    lambda d: index_size(d, 0),
])
def test_bad_parameters_raise_config_error(call):
    with pytest.raises(ConfigError):
        call(torch.ones(1, 3))


def test_bad_weights_raise_data_error():
    with pytest.raises(DataError, match="non-negative"):
        uniform_bits(torch.tensor([[-1.0, 2.0]]), 8)
    with pytest.raises(DataError, match="65504"):
        to_float16(torch.tensor([[1e5]]))
    with pytest.raises(DataError, match="NaN"):
        integer_impacts(torch.tensor([[float("nan")]]), 100)
