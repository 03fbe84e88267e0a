"""Sparse index store: shard round trip (float32/float16), validation, shard concatenation, top-k pruning."""

import json

import numpy as np
import pytest
import torch

from splade_lightning.errors import DataError
from splade_lightning.formats.index_store import (
    FORMAT_VERSION,
    load_index,
    shard_files,
    shard_is_complete,
    shard_ranges,
    write_index_json,
    write_shard,
)
from splade_lightning.tools.index_predict import sparse_rows


def _csr(dense: np.ndarray):
    indptr = np.concatenate([[0], np.cumsum((dense != 0).sum(1))])
    rows, cols = np.nonzero(dense)
    return indptr, cols, dense[rows, cols]


def _manifest(shards, vocab, dtype="float32"):
    return {"format_version": FORMAT_VERSION, "model": "m", "vocab_size": vocab, "count": sum(r for _, r in shards),
            "complete": True, "settings": {"value_dtype": dtype},
            "shards": [{"shard": s, "rows": r} for s, r in shards]}


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_round_trip_and_concatenation(tmp_path, dtype):
    rng = np.random.default_rng(0)
    dense = rng.random((7, 11)).astype(np.float32) * (rng.random((7, 11)) < 0.3)
    dense[3] = 0  # an empty document
    ids = [f"d{i}" for i in range(7)]
    for shard, (a, b) in enumerate(shard_ranges(7, 3)):
        write_shard(tmp_path, shard, ids[a:b], *_csr(dense[a:b]), value_dtype=dtype)
    write_index_json(tmp_path, _manifest([(0, 3), (1, 3), (2, 1)], 11, dtype))
    index = load_index(tmp_path)
    assert index.ids == ids
    assert index.values.dtype == np.dtype(dtype)
    expected = dense.astype(dtype).astype(np.float32)
    np.testing.assert_array_equal(index.to_torch().to_dense().numpy(), expected)


def test_single_shard_is_memory_mapped(tmp_path):
    write_shard(tmp_path, 0, ["a", "b"], *_csr(np.array([[0, 1.0], [2.0, 0]], np.float32)))
    write_index_json(tmp_path, _manifest([(0, 2)], 2))
    assert isinstance(load_index(tmp_path).indices, np.memmap)


def test_shard_validation_detects_truncation_and_missing_files(tmp_path):
    write_shard(tmp_path, 0, ["a", "b"], *_csr(np.array([[0, 1.0], [2.0, 0]], np.float32)))
    assert shard_is_complete(tmp_path, 0, 2, "float32")
    assert not shard_is_complete(tmp_path, 0, 3, "float32")
    assert not shard_is_complete(tmp_path, 0, 2, "float16")
    files = shard_files(tmp_path, 0)
    files["values"].write_bytes(files["values"].read_bytes()[:-2])
    assert not shard_is_complete(tmp_path, 0, 2, "float32")
    write_shard(tmp_path, 0, ["a", "b"], *_csr(np.array([[0, 1.0], [2.0, 0]], np.float32)))
    files["ids"].unlink()
    assert not shard_is_complete(tmp_path, 0, 2, "float32")


def test_load_refuses_unfinished_or_corrupt_index(tmp_path):
    with pytest.raises(DataError, match="no index.json"):
        load_index(tmp_path)
    write_shard(tmp_path, 0, ["a"], *_csr(np.array([[1.0, 0]], np.float32)))
    manifest = _manifest([(0, 1)], 2)
    write_index_json(tmp_path, {**manifest, "complete": False})
    with pytest.raises(DataError, match="unfinished"):
        load_index(tmp_path)
    write_index_json(tmp_path, manifest)
    shard_files(tmp_path, 0)["meta"].write_text(json.dumps({"rows": 1}))
    with pytest.raises(DataError, match="shard_00000 is missing or corrupt"):
        load_index(tmp_path)


def test_top_k_pruning_keeps_exactly_the_k_largest():
    reps = torch.tensor([[0.0, 3.0, 1.0, 2.0, 5.0], [1.0, 1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.0, 0.0]])
    counts, indices, values = sparse_rows(reps, top_k=2)
    assert counts.tolist() == [2, 2, 1]
    assert indices.tolist() == [1, 4, 0, 1, 2]  # ascending ids per row; ties keep the lowest ids
    assert values.tolist() == [3.0, 5.0, 1.0, 1.0, 0.5]
    counts, indices, values = sparse_rows(reps)
    assert counts.tolist() == [4, 3, 1]
    rng = torch.Generator().manual_seed(0)
    big = torch.rand(4, 50, generator=rng)
    counts, indices, values = sparse_rows(big, top_k=7)
    for row in range(4):
        kept = indices[row * 7:(row + 1) * 7]
        assert set(kept.tolist()) == set(torch.topk(big[row], 7).indices.tolist())
