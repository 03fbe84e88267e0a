"""Row-sparse gradients for the (V, H) vocabulary matrix: the input embedding and the MLM decoder weight.

One training step touches few rows of the vocabulary matrix: the input embedding's gradient is non-zero only in the
rows of the batch's token ids, and the SPLADE head's only in the rows of terms active in some text (a few thousand of
V = 250,002 for a multilingual vocabulary). Autograd builds each of these contributions as a dense (V, H) tensor and
sums them in place, so two such tensors are alive at once, and a third when a sum cannot be done in place (a step of
the V = 250k, 6-layer / hidden-384 benchmark model peaked about 0.75 GiB above its saved activations, where H = 384
makes one (V, H) matrix 366 MiB; ``benchmarks/README.md``).

With row-sparse gradients each contribution is a sparse COO tensor of its rows only, autograd sums those, and a hook
run when the parameter's gradient is accumulated (``register_post_accumulate_grad_hook``) turns the sum into the dense
``.grad`` that optimisers, clipping and logging expect: one (V, H) tensor per step. The embedding side is PyTorch's
own ``nn.Embedding(sparse=True)`` backward, switched on for the duration of a forward call; the head side is
``models/sparse_head.py``'s backward. The values are the same sums in another order (float rounding, ~1e-7 relative).

Not used under ``torch.distributed`` (DDP decides at wrap time whether a parameter's gradient is sparse, and NCCL
cannot reduce sparse tensors): there the dense path runs unchanged.
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager

import torch
from torch import nn

_SPARSE_ROWS_FRACTION = 8  # the head's gradient is built sparse when at most V / 8 rows are non-zero
_HOOKED: dict[int, weakref.ref] = {}  # id -> parameter carrying the densify hook (tensors compare elementwise)


def row_sparse_grads_available() -> bool:
    """Whether row-sparse gradients may be used now: not inside a ``torch.distributed`` process group."""
    return not (torch.distributed.is_available() and torch.distributed.is_initialized())


def _densify(param: torch.Tensor) -> None:
    """Post-accumulate-grad hook: a sparse ``.grad`` becomes dense (duplicate rows summed)."""
    if param.grad is not None and param.grad.layout != torch.strided:
        param.grad = param.grad.to_dense()


def ensure_densify_hook(param: torch.Tensor) -> None:
    """Register :func:`_densify` on ``param`` once (a copy of the parameter, a new object, gets its own)."""
    if not param.requires_grad:
        return
    key = id(param)
    known = _HOOKED.get(key)
    if known is not None and known() is param:
        return
    param.register_post_accumulate_grad_hook(_densify)
    _HOOKED[key] = weakref.ref(param, lambda _, key=key: _HOOKED.pop(key, None))


@contextmanager
def sparse_embedding_grads(embedding: nn.Module | None, enabled: bool):
    """Within the block, ``embedding`` (an ``nn.Embedding``) returns a sparse COO gradient for its weight.

    The weight gets the densify hook first, so ``.grad`` is dense again once accumulated. Anything but an
    ``nn.Embedding`` with a trainable weight, or ``enabled=False``, leaves the module unchanged.
    """
    if not enabled or not isinstance(embedding, nn.Embedding) or not embedding.weight.requires_grad \
            or embedding.sparse:
        yield
        return
    ensure_densify_hook(embedding.weight)
    embedding.sparse = True
    try:
        yield
    finally:
        embedding.sparse = False


def weight_grad(csr_of_rows, v: torch.Tensor, cols: torch.Tensor, g: torch.Tensor, inputs: torch.Tensor,
                vocab: int, sparse: bool) -> torch.Tensor:
    """``dL/dW`` (V, H) of the head: row ``r`` sums ``g[k] * inputs[cols[k]]`` over the entries with ``v[k] == r``.

    Args:
        csr_of_rows: ``(rows, cols, values, shape) -> CSR matrix`` (``sparse_head._csr``).
        v: (K,) vocabulary row of each active entry.
        cols: (K,) row of ``inputs`` (the arg-max position, flattened) of each entry.
        g: (K,) upstream gradient of each entry.
        inputs: (N, H) the head's flattened inputs.
        vocab: V.
        sparse: build a sparse COO result of the non-zero rows when they are at most V / 8 (the caller has put the
            densify hook on the weight).

    Returns:
        (V, H) dense, or sparse COO (coalesced) with the non-zero rows only; each row's sum is computed the same way.
    """
    if sparse:
        rows, local = torch.unique(v, return_inverse=True)  # sorted: the COO tensor is coalesced
        if rows.numel() * _SPARSE_ROWS_FRACTION <= vocab:
            values = csr_of_rows(local, cols, g, (rows.numel(), inputs.shape[0])) @ inputs  # (R, H)
            return torch.sparse_coo_tensor(rows.unsqueeze(0), values, (vocab, inputs.shape[1]), is_coalesced=True,
                                           check_invariants=False)
    return csr_of_rows(v, cols, g, (vocab, inputs.shape[0])) @ inputs
