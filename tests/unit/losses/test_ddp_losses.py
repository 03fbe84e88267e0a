"""Losses under DDP (2 CPU processes, gloo, float64): every rank's loss and DDP's averaged gradients equal one
process's loss and gradients on the concatenated batch, also with unequal local batch sizes.

One spawn runs every check (module fixture); the references are computed here, in the (non-distributed) test process.
Input gradients are compared as ``local.grad / world``: what DDP's averaging does to a parameter's gradient.
"""

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from splade_lightning.losses import FlopsRegularizer, InBatchNegativesLoss, L1Regularizer

WORLD = 2
VOCAB = 12
UNEQUAL = [4, 3]  # local batch sizes of rank 0 and rank 1
REGULARIZERS = {  # name -> (factory, local batch sizes)
    "flops": (lambda: FlopsRegularizer(), UNEQUAL),
    "flops_threshold": (lambda: FlopsRegularizer(threshold=3), UNEQUAL),
    "l1": (lambda: L1Regularizer(), UNEQUAL),
    "l1_threshold": (lambda: L1Regularizer(threshold=3), UNEQUAL),
    "l1_local_equal": (lambda: L1Regularizer(global_batch=False), [3, 3]),  # local mean: exact for equal sizes
    "flops_local": (lambda: FlopsRegularizer(global_batch=False), [3, 3]),  # the negative: not exact
}
RANKING = {  # name -> (loss factory, queries per rank, negatives per query)
    "ibn_dot": (lambda: InBatchNegativesLoss(gather_across_processes=True), [3, 2], 1),
    "ibn_cosine": (lambda: InBatchNegativesLoss(scale=20.0, similarity="cosine", gather_across_processes=True),
                   [2, 2], 2),
}
QUERIES_PER_RANK, NEGATIVES = [3, 2], 1  # the full-objective check


def _reps(rows: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    dense = torch.relu(torch.randn(rows, VOCAB, generator=g, dtype=torch.float64))
    return dense * (torch.rand(rows, VOCAB, generator=g, dtype=torch.float64) > 0.4)


def _rows(sizes: list[int], rank: int) -> slice:
    return slice(sum(sizes[:rank]), sum(sizes[:rank + 1]))


def _ranking_inputs(sizes: list[int], negatives: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Queries (B, V) and the document columns [positives, negatives_1..n], each (B, V)."""
    batch = sum(sizes)
    return _reps(batch, 10), [_reps(batch, 11 + c) for c in range(1 + negatives)]


class _Encoder(nn.Module):
    """Linear -> log(1 + relu): a stand-in for SPLADE with a few parameters; forward encodes queries and docs."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.proj = nn.Linear(6, VOCAB).double()

    def forward(self, query_x: torch.Tensor, doc_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.log1p(torch.relu(self.proj(x))) for x in (query_x, doc_x))


def _features(sizes: list[int], negatives: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
    g = torch.Generator().manual_seed(7)
    batch = sum(sizes)
    return torch.randn(batch, 6, generator=g, dtype=torch.float64), [
        torch.randn(batch, 6, generator=g, dtype=torch.float64) for _ in range(1 + negatives)]


def _objective(regularizer_global_batch: bool):
    from splade_lightning.systems import SpladeModule

    regularizer = FlopsRegularizer(global_batch=regularizer_global_batch)
    return SpladeModule(_Encoder(), loss=InBatchNegativesLoss(gather_across_processes=True),
                        query_regularizer=regularizer, doc_regularizer=regularizer,
                        query_reg_weight=0.5, doc_reg_weight=0.3)


def _objective_grads(module, encoder: nn.Module, sizes: list[int], rank: int | None) -> dict:
    """Loss terms and parameter gradients of the SpladeModule objective on rank ``rank``'s rows (None: all rows)."""
    query_x, doc_cols = _features(sizes, NEGATIVES)
    rows = slice(None) if rank is None else _rows(sizes, rank)
    query_reps, doc_reps = encoder(query_x[rows], torch.cat([col[rows] for col in doc_cols]))
    terms = module.compute_loss(query_reps, doc_reps, NEGATIVES)
    terms["loss"].backward()
    return {"loss": terms["loss"].detach(), "flops_doc": terms["flops_doc"].detach(),
            "grads": {n: p.grad.clone() for n, p in module.encoder.named_parameters()}}


def _run_checks(rank: int) -> dict:
    out = {}
    for name, (factory, sizes) in REGULARIZERS.items():
        local = _reps(sum(sizes), 0)[_rows(sizes, rank)].clone().requires_grad_(True)
        loss = factory()(local)
        loss.backward()
        out[name] = (loss.detach(), local.grad / WORLD)
    for name, (factory, sizes, negatives) in RANKING.items():
        queries, cols = _ranking_inputs(sizes, negatives)
        rows = _rows(sizes, rank)
        query = queries[rows].clone().requires_grad_(True)
        docs = [col[rows].clone().requires_grad_(True) for col in cols]
        loss = factory()(query, torch.cat(docs), negatives)
        loss.backward()
        out[name] = (loss.detach(), [query.grad / WORLD] + [d.grad / WORLD for d in docs])
    for global_batch in (True, False):
        module = _objective(global_batch)
        ddp = nn.parallel.DistributedDataParallel(module.encoder)  # averages the parameter gradients
        out[f"objective_{global_batch}"] = _objective_grads(module, ddp, QUERIES_PER_RANK, rank)
    return out


def _worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    torch.set_num_threads(1)
    try:
        torch.save(_run_checks(rank), Path(out_dir) / f"{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory) -> list[dict]:
    out_dir = tmp_path_factory.mktemp("ddp")
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(_worker, args=(str(out_dir / "init"), str(out_dir)), nprocs=WORLD, join=True)
    return [torch.load(out_dir / f"{rank}.pt") for rank in range(WORLD)]


def _close(actual, expected) -> None:
    torch.testing.assert_close(actual, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["flops", "flops_threshold", "l1", "l1_threshold"])
def test_global_batch_regularizers_equal_single_process(ddp_results, name):
    factory, sizes = REGULARIZERS[name]
    full = _reps(sum(sizes), 0).requires_grad_(True)
    expected = factory()(full)
    expected.backward()
    if "threshold" in name:  # the threshold masks some rows, not all
        active = (full != 0).sum(dim=1)
        assert (active <= 3).any() and (active > 3).any()
    for rank, result in enumerate(ddp_results):
        loss, grad = result[name]
        _close(loss, expected.detach())  # every rank logs the global value
        _close(grad, full.grad[_rows(sizes, rank)])


def test_l1_local_mean_is_exact_for_equal_batch_sizes(ddp_results):
    factory, sizes = REGULARIZERS["l1_local_equal"]
    full = _reps(sum(sizes), 0).requires_grad_(True)
    expected = factory()(full)
    expected.backward()
    _close(sum(r["l1_local_equal"][0] for r in ddp_results) / WORLD, expected.detach())
    for rank, result in enumerate(ddp_results):
        _close(result["l1_local_equal"][1], full.grad[_rows(sizes, rank)])


def test_local_flops_gradients_differ_from_single_process(ddp_results):
    factory, sizes = REGULARIZERS["flops_local"]
    full = _reps(sum(sizes), 0).requires_grad_(True)
    factory()(full).backward()
    diff = max((r["flops_local"][1] - full.grad[_rows(sizes, rank)]).abs().max() for rank, r in enumerate(ddp_results))
    assert diff > 0.05 * full.grad.abs().max()


@pytest.mark.parametrize("name", list(RANKING))
def test_gathered_in_batch_negatives_equal_single_process(ddp_results, name):
    factory, sizes, negatives = RANKING[name]
    queries, cols = _ranking_inputs(sizes, negatives)
    queries.requires_grad_(True)
    for col in cols:
        col.requires_grad_(True)
    expected = factory()(queries, torch.cat(cols), negatives)  # not distributed here: the ordinary loss
    expected.backward()
    for rank, result in enumerate(ddp_results):
        loss, grads = result[name]
        rows = _rows(sizes, rank)
        _close(loss, expected.detach())
        for grad, full in zip(grads, [queries, *cols]):
            _close(grad, full.grad[rows])


def _reference_objective() -> dict:
    module = _objective(True)
    return _objective_grads(module, module.encoder, QUERIES_PER_RANK, None)


def test_splade_objective_under_ddp_equals_single_process(ddp_results):
    expected = _reference_objective()
    assert expected["flops_doc"] > 0 and set(expected["grads"]) == {"proj.weight", "proj.bias"}
    for result in ddp_results:
        got = result["objective_True"]
        _close(got["loss"], expected["loss"])
        for name, grad in expected["grads"].items():
            _close(got["grads"][name], grad)


def test_splade_objective_with_local_flops_differs(ddp_results):
    expected = _reference_objective()["grads"]["proj.weight"]
    got = ddp_results[0]["objective_False"]["grads"]["proj.weight"]
    assert (got - expected).abs().max() > 1e-3 * expected.abs().max()


def test_flags_are_ignored_in_one_process():
    reps = _reps(5, 3)
    _close(FlopsRegularizer(global_batch=True)(reps), FlopsRegularizer(global_batch=False)(reps))
    queries, cols = _ranking_inputs([5], 1)
    _close(InBatchNegativesLoss(gather_across_processes=True)(queries, torch.cat(cols), 1),
           InBatchNegativesLoss()(queries, torch.cat(cols), 1))
