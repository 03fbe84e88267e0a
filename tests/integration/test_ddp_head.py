"""The memory-efficient head under DistributedDataParallel (2 CPU processes, gloo): the synchronised gradients equal
the average of the single-process gradients of each rank's batch."""

import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from splade_lightning.models import SpladeEncoder


def _encoder(model_dir: str) -> SpladeEncoder:
    torch.manual_seed(0)
    encoder = SpladeEncoder(model_dir, head_chunk_tokens=8)
    for m in encoder.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return encoder


def _batch(rank: int):
    g = torch.Generator().manual_seed(100 + rank)
    ids = torch.randint(1000, 8000, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    weights = torch.rand(3, 30522, generator=g)
    return ids, mask, weights


def _loss(encoder, rank):
    ids, mask, weights = _batch(rank)
    return (encoder(ids, mask) * weights).sum()


def _worker(rank: int, world: int, init_file: str, model_dir: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    encoder = _encoder(model_dir)
    assert encoder.efficient_head
    ddp = torch.nn.parallel.DistributedDataParallel(encoder)
    ids, mask, weights = _batch(rank)
    (ddp(ids, mask) * weights).sum().backward()
    torch.save({n: p.grad for n, p in encoder.named_parameters() if p.grad is not None}, Path(out_dir) / f"{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_gradients_equal_single_process_average(tiny_bert_dir, tmp_path):
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), tiny_bert_dir, str(tmp_path)), nprocs=2, join=True)
    ddp_grads = [torch.load(tmp_path / f"{r}.pt") for r in range(2)]
    reference = {}
    for rank in range(2):
        encoder = _encoder(tiny_bert_dir)
        _loss(encoder, rank).backward()
        for name, p in encoder.named_parameters():
            if p.grad is not None:
                reference[name] = reference.get(name, 0) + p.grad / 2
    assert set(ddp_grads[0]) == set(reference)
    for name, expected in reference.items():
        scale = expected.abs().max().clamp_min(1e-12)
        for grads in ddp_grads:
            assert (grads[name] - expected).abs().max() <= 1e-5 * scale + 1e-7, name
