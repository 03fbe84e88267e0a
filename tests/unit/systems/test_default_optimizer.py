"""The default optimiser: fused AdamW where torch has the kernel, the for-loop AdamW otherwise, same updates."""

from __future__ import annotations

import torch

from splade_lightning.systems.optim import default_optimizer


def groups_of(params: list[torch.nn.Parameter]) -> list[dict]:
    return [{"params": params[:1], "weight_decay": 0.01, "name": "backbone"},
            {"params": params[1:], "weight_decay": 0.0, "name": "backbone_no_decay"}]


def test_cpu_parameters_get_the_fused_kernel():
    params = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(3))]
    optimizer = default_optimizer(groups_of(params), lr=1e-3)
    assert isinstance(optimizer, torch.optim.AdamW)
    assert all(group["fused"] for group in optimizer.param_groups)
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.01, 0.0]


def test_fused_updates_equal_the_for_loop_ones_to_rounding():
    torch.manual_seed(0)
    start = [torch.randn(64, 16), torch.randn(16)]
    results = []
    for fused in (True, False):
        params = [torch.nn.Parameter(t.clone()) for t in start]
        optimizer = default_optimizer(groups_of(params), lr=1e-2) if fused else \
            torch.optim.AdamW(groups_of(params), lr=1e-2)
        assert optimizer.param_groups[0]["fused"] is (True if fused else None)
        for step in range(5):
            loss = sum(((p - step) ** 2).sum() for p in params)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        results.append([p.detach() for p in params])
    moved = max((a - s).abs().max().item() for a, s in zip(results[0], start))
    assert moved > 1e-2  # the five steps did update the parameters
    for fused, loop in zip(*results):
        torch.testing.assert_close(fused, loop, rtol=1e-6, atol=1e-6)


def test_parameters_without_a_fused_kernel_get_the_for_loop_adamw():
    for params in ([torch.nn.Parameter(torch.randn(4, 3, dtype=torch.complex64)), torch.nn.Parameter(torch.randn(3))],
                   [torch.nn.Parameter(torch.empty(4, 3, device="meta")), torch.nn.Parameter(torch.empty(3))]):
        optimizer = default_optimizer(groups_of(params), lr=1e-3)
        assert isinstance(optimizer, torch.optim.AdamW)
        assert not any(group["fused"] for group in optimizer.param_groups)
    params = [torch.nn.Parameter(torch.randn(4, 3, dtype=torch.complex64)), torch.nn.Parameter(torch.randn(3))]
    optimizer = default_optimizer(groups_of(params), lr=1e-3)
    sum((p.abs() ** 2).sum() for p in params).backward()
    optimizer.step()  # the for-loop AdamW takes complex parameters; the fused one would raise here
