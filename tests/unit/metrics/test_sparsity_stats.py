"""SparsityStats and flops against hand-computed values; state merging as under DDP."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.metrics import SparsityStats, flops

REPS = torch.tensor([
    [0.0, 1.0, 2.0, 0.0],
    [0.0, 0.0, 0.0, 0.0],  # all-zero vector
    [3.0, 0.0, 0.0, 0.0],
])
EXPECTED = {"active_dims": 1.0, "active_dims_min": 0.0, "active_dims_max": 2.0, "zero_fraction": 1 / 3}
EXPECTED_FREQUENCY = [1 / 3, 1 / 3, 1 / 3, 0.0]


def _check(result: dict) -> None:
    assert {k: result[k] for k in EXPECTED} == pytest.approx(EXPECTED)
    assert result["dim_frequency"].shape == (4,)
    assert result["dim_frequency"].tolist() == pytest.approx(EXPECTED_FREQUENCY)


@pytest.mark.parametrize("layout", ["dense", "csr", "coo"])
def test_hand_computed_statistics(layout):
    reps = {"dense": REPS, "csr": REPS.to_sparse_csr(), "coo": REPS.to_sparse()}[layout]
    stats = SparsityStats(vocab_size=4)
    stats.update(reps)
    _check(stats.compute())


def test_explicit_zeros_and_duplicate_coo_entries_are_counted_once():
    csr = torch.sparse_csr_tensor([0, 3, 3, 4], [1, 2, 3, 0], [1.0, 2.0, 0.0, 3.0], (3, 4), check_invariants=True)
    coo = torch.sparse_coo_tensor([[0, 0, 0, 2], [1, 2, 2, 0]], [1.0, 1.0, 1.0, 3.0], (3, 4), check_invariants=True)
    for reps in (csr, coo):
        stats = SparsityStats(4)
        stats.update(reps)
        _check(stats.compute())


def test_several_updates_and_empty_batches_accumulate():
    stats = SparsityStats(4)
    stats.update(REPS[:1])
    stats.update(torch.zeros(0, 4))
    stats.update(REPS[1:].to_sparse_csr())
    _check(stats.compute())


def test_merged_states_equal_a_single_pass():
    left, right = SparsityStats(4), SparsityStats(4)
    left.update(REPS[1:2])  # only the zero vector: min 0, max 0
    right.update(REPS[[0, 2]])
    left.merge_state(right)
    _check(left.compute())


def _ddp_worker(rank: int, world_size: int, port: int, results: dict) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        stats = SparsityStats(4)
        stats.update(REPS[1:2] if rank == 0 else REPS[[0, 2]])
        out = stats.compute()
        results[rank] = {k: (v.tolist() if isinstance(v, torch.Tensor) else v) for k, v in out.items()}
    finally:
        dist.destroy_process_group()


def test_statistics_reduce_across_ddp_processes():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_ddp_worker, args=(2, port, results), nprocs=2, join=True)
        results = dict(results)
    for rank in (0, 1):
        assert {k: results[rank][k] for k in EXPECTED} == pytest.approx(EXPECTED)
        assert results[rank]["dim_frequency"] == pytest.approx(EXPECTED_FREQUENCY)


def test_flops_hand_computed_and_equal_to_mean_shared_active_dims():
    assert flops(torch.tensor([0.5, 1.0, 0.0]), torch.tensor([0.2, 0.5, 1.0])) == pytest.approx(0.5 * 0.2 + 1.0 * 0.5)
    gen = torch.Generator().manual_seed(0)
    queries = (torch.rand(7, 12, generator=gen) < 0.3).float()
    docs = (torch.rand(11, 12, generator=gen) < 0.5).float() * 2.5
    p_query, p_doc = SparsityStats(12), SparsityStats(12)
    p_query.update(queries)
    p_doc.update(docs.to_sparse_csr())
    shared = ((queries != 0).float() @ (docs != 0).float().T).mean()  # mean shared active dims over all pairs
    assert flops(p_query.compute()["dim_frequency"], p_doc.compute()["dim_frequency"]) == pytest.approx(float(shared))


def test_bad_inputs_are_rejected():
    with pytest.raises(ConfigError, match="vocab_size must be a positive integer"):
        SparsityStats(0)
    stats = SparsityStats(4)
    with pytest.raises(DataError, match=r"reps must be a \(N, 4\) tensor, got \(2, 5\)"):
        stats.update(torch.zeros(2, 5))
    with pytest.raises(DataError, match="before any vector"):
        stats.compute()
    with pytest.raises(DataError, match="expected the same vocabulary"):
        flops(torch.zeros(3), torch.zeros(4))
    with pytest.raises(DataError, match="1-D"):
        flops(torch.zeros(1, 3), torch.zeros(3))
