"""Differentiable collectives for losses computed over the global batch of all processes (DDP): pure torch.

Gradient convention. Every rank computes the *same* global loss ``L(x_1, ..., x_W)`` from its local activations
``x_r`` through the collectives below, whose backward *sums* the gradients of all ranks (the adjoint of a sum-reduce /
gather). Rank r therefore back-propagates ``Σ_{r'} ∂L/∂x_r = W·∂L/∂x_r`` into its own graph, and DDP's averaging of
parameter gradients (``1/W · Σ_r``) gives exactly ``dL/dθ``: the single-process gradient on the concatenated batch.

The semantics are those of ``torch.distributed.nn.functional.all_reduce`` / ``all_gather`` (``_AllReduce``,
``_AllGather`` in torch 2.x). They are re-implemented here on the public ``torch.distributed`` calls because torch
2.13 deprecates that module (a ``FutureWarning``) and its ``all_gather`` needs equal shapes on every rank, while the
last batch of an epoch may be smaller on some ranks. All ranks must call these functions in the same order (as they
do in a training step); a call on one rank only blocks forever.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def is_distributed() -> bool:
    """True when ``torch.distributed`` is initialised with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks; backward sums the incoming gradients over ranks (each rank's output depends on every input)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)
        return grad


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Differentiable sum of ``tensor`` over all processes (any shape, same on every rank).

    Args:
        tensor: the local tensor.

    Returns:
        The sum over ranks, same shape; backward sums the gradients over ranks.
    """
    return _AllReduceSum.apply(tensor)


def gather_sizes(rows: int, device: torch.device) -> list[int]:
    """The local row counts of every rank, in rank order (a non-differentiable all_gather of one integer)."""
    local = torch.tensor([rows], dtype=torch.long, device=device)
    sizes = [torch.empty_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, local)
    return [int(s.item()) for s in sizes]


def _pad_rows(tensor: torch.Tensor, rows: int) -> torch.Tensor:
    """Zero-pad the first dimension of ``tensor`` to ``rows``."""
    missing = rows - tensor.shape[0]
    if missing == 0:
        return tensor.contiguous()
    return F.pad(tensor, (0, 0) * (tensor.dim() - 1) + (0, missing)).contiguous()


class _GatherRows(torch.autograd.Function):
    """Concatenate every rank's (n_r, ...) rows; backward returns, to each rank, the sum over ranks of the gradient
    of its own rows (a reduce-scatter; emulated by all_reduce where the backend has none, e.g. gloo)."""

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        ctx.sizes = sizes
        padded = _pad_rows(tensor, max(sizes))
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded)
        return torch.cat([part[:n] for part, n in zip(parts, sizes)])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        sizes, rank = ctx.sizes, dist.get_rank()
        longest = max(sizes)
        stacked = torch.cat([_pad_rows(part, longest) for part in grad.split(sizes)])  # (W·M, ...)
        if dist.get_backend() == dist.Backend.NCCL:
            own = torch.empty_like(stacked[:longest])
            dist.reduce_scatter_tensor(own, stacked)
        else:
            dist.all_reduce(stacked)
            own = stacked[rank * longest:(rank + 1) * longest]
        return own[:sizes[rank]], None


def gather_rows(tensor: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """Differentiable all_gather along the first dimension; local row counts may differ between ranks.

    Args:
        tensor: (n_r, ...) local rows.

    Returns:
        ``((Σ_r n_r, ...) rows of all ranks in rank order, [n_0, ..., n_{W-1}])``. Gradients reach every rank's rows.
    """
    sizes = gather_sizes(tensor.shape[0], tensor.device)
    return _GatherRows.apply(tensor, sizes), sizes


def global_sum_and_count(local_sum: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sum a per-rank partial sum and a row count over all processes in one collective.

    Args:
        local_sum: a partial sum of any shape (e.g. (V,) column sums), differentiable.
        count: the number of local rows it sums over.

    Returns:
        ``(global sum, same shape as local_sum, differentiable; global count, a 0-dim tensor without gradient)``.
    """
    packed = torch.cat([local_sum.reshape(-1), local_sum.new_tensor([float(count)])])
    reduced = all_reduce_sum(packed)
    return reduced[:-1].view_as(local_sum), reduced[-1].detach()
