"""Row-sparse gradients for the (V, H) vocabulary matrix: the input embedding and the MLM decoder weight.

One training step touches few rows of the vocabulary matrix: the input embedding's gradient is non-zero only in the
rows of the batch's token ids, and the SPLADE head's only in the rows of terms active in some text (a few thousand of
V = 250,002 for a multilingual vocabulary). Autograd builds each of these contributions as a dense (V, H) tensor and
sums them in place, so two such tensors are alive at once, and a third when a sum cannot be done in place (a step of
the V = 250k, 6-layer / hidden-384 benchmark model peaked about 0.75 GiB above its saved activations, where H = 384
makes one (V, H) matrix 366 MiB; ``benchmarks/README.md``).

With row-sparse gradients each contribution is a sparse COO tensor of its rows only, autograd sums those, and a hook
run when the parameter's gradient is accumulated (``register_post_accumulate_grad_hook``) turns the sum into the dense
``.grad`` that optimisers, clipping and logging expect: one (V, H) tensor per step. Under
``models/row_sparse_adamw.py``'s optimiser (the Lightning modules' default) the sum stays sparse, coalesced, and the
optimiser updates the matrix block by block: no (V, H) gradient tensor at all. The embedding side is PyTorch's
own ``nn.Embedding(sparse=True)`` backward, switched on for the duration of a forward call; the head side is
``models/sparse_head.py``'s backward (``weight_grad``). The values are the same sums in another order (float
rounding, ~1e-7 relative).

The dense path runs unchanged under ``torch.distributed`` (DDP decides at wrap time whether a parameter's gradient is
sparse, and NCCL cannot reduce sparse tensors), for weights that are not leaf tensors (computed weights, as with
``torch.func.functional_call``: only leaves accumulate a ``.grad``), for the head when more than V / 8 rows are
active (an untrained head) and for a lookup of more than V / 2 real tokens (its sparse gradient has one row per
token). ``torch.autograd.grad`` (which accumulates nothing) returns the sparse sums themselves.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from torch import nn

from splade_lightning.models.row_sparse_adamw import takes_row_sparse_grad

_SPARSE_TOKENS_FRACTION = 2  # a lookup's gradient is built sparse when the call has at most V / 2 real tokens


def row_sparse_grads_available() -> bool:
    """Whether row-sparse gradients may be used now: not inside a ``torch.distributed`` process group."""
    return not (torch.distributed.is_available() and torch.distributed.is_initialized())


def can_take_sparse_grad(param: torch.Tensor) -> bool:
    """A trainable leaf parameter: only leaves accumulate ``.grad`` (and take the densify hook)."""
    return param.requires_grad and param.is_leaf


def _densify(param: torch.Tensor) -> None:
    """Post-accumulate-grad hook: a sparse ``.grad`` becomes dense (duplicate rows summed), or, when a
    :class:`~splade_lightning.models.row_sparse_adamw.RowSparseAdamW` updates the parameter, coalesced (one row per
    index, duplicates summed) and left sparse.

    Off the CPU the sum is coalesced first: densifying an uncoalesced tensor there adds with atomics, in a varying
    order.
    """
    grad = param.grad
    if grad is None or grad.layout == torch.strided:
        return
    if takes_row_sparse_grad(param):
        param.grad = grad.coalesce()
    else:
        param.grad = (grad if grad.device.type == "cpu" else grad.coalesce()).to_dense()


def _has_densify_hook(param: torch.Tensor) -> bool:
    hooks = getattr(param, "_post_accumulate_grad_hooks", None) or {}  # torch's own registry on the tensor
    return any(hook is _densify for hook in hooks.values())


def ensure_densify_hook(param: torch.Tensor) -> None:
    """Register :func:`_densify` on the leaf ``param`` unless it has it (a copy of a parameter has no hooks)."""
    if can_take_sparse_grad(param) and not _has_densify_hook(param):
        param.register_post_accumulate_grad_hook(_densify)


def embedding_grads_can_be_sparse(embedding: nn.Module, real_tokens: int) -> bool:
    """Whether ``embedding``'s lookup of ``real_tokens`` tokens should return a sparse gradient.

    A sparse lookup gradient has one row per token (duplicates are summed only when the gradient is made dense), so
    beyond about V tokens per step it would outgrow the dense (V, H) tensor; one call may use up to V / 2.
    """
    return isinstance(embedding, nn.Embedding) and can_take_sparse_grad(embedding.weight) \
        and real_tokens * _SPARSE_TOKENS_FRACTION <= embedding.num_embeddings


@contextmanager
def sparse_embedding_grads(embedding: nn.Module | None):
    """Within the block, ``embedding`` (an ``nn.Embedding``, or None for no change) returns a sparse COO gradient
    for its weight. The weight gets the densify hook first, so its ``.grad`` is dense again once accumulated."""
    if embedding is None or embedding.sparse:
        yield
        return
    ensure_densify_hook(embedding.weight)
    embedding.sparse = True
    try:
        yield
    finally:
        embedding.sparse = False

