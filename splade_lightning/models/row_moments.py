"""AdamW moments stored for the rows of a (V, ...) parameter that ever had a gradient, and the block-by-block update.

A row of AdamW's moments stays exactly zero until the row's gradient is non-zero (``exp_avg`` decays towards the
gradient, ``exp_avg_sq`` towards its square), and a row whose moments are zero gets only the decoupled weight decay:
the update ``exp_avg / (sqrt(exp_avg_sq) + eps)`` is zero there. So the moments of a vocabulary matrix need rows only
for the terms a run has touched, a few thousand of V = 250,002 in a step, where a dense ``exp_avg`` and ``exp_avg_sq``
are two (V, H) tensors from the first step (733 MiB at H = 384, nine tenths of the first step's tensor peak in
``benchmarks/step_memory_categories.py``).

The moments are kept as coalesced sparse COO tensors of the parameter's shape (``state["exp_avg"]``, sorted rows, the
same rows for both), so ``state_dict``, ``torch.save`` and moving to a device work as for dense ones, and a
checkpoint holds the touched rows only. Each step adds the gradient's rows; once the sparse moments would take half
of the dense moments' memory (half of the rows of a matrix) they are made dense for good (a sparse row costs as much
as a dense one, plus its index and the copy on growth).

The update itself is torch's fused AdamW kernel on one block of rows at a time, on dense block buffers: the block's
gradient and, for sparse moments, the block's moments scattered in, stepped, and the touched rows gathered back. Rows
without stored moments enter the kernel with zero moments, as they are in a dense run, and leave them zero, so the
result is bit for bit the dense run's (``tests/unit/models/test_row_sparse_adamw.py``).
"""

from __future__ import annotations

import math

import torch

# The fused CPU kernel splits a tensor into cache-line units for its threads and runs a vectorised loop over each,
# with scalar code for a remainder (aten/src/ATen/native/cpu/FusedAdamKernel.cpp); the two round differently (FMA).
# Blocks that start and end at multiples of 64 elements (a cache line of any float dtype, a whole number of vectors)
# meet the vectorised loop exactly where the whole-tensor call does, so the result is the same bit for bit.
_ALIGN_ELEMENTS = 64

#: sparse moments are made dense once they would take more than 1 / this of the dense moments' memory
DENSE_FRACTION = 2


def aligned_block_rows(block_rows: int, row_numel: int) -> int:
    """``block_rows`` rounded up so that a block holds a multiple of 64 elements."""
    unit = _ALIGN_ELEMENTS // math.gcd(row_numel, _ALIGN_ELEMENTS)
    return -(-block_rows // unit) * unit


def is_sparse(moment: torch.Tensor) -> bool:
    """Whether a moment is stored by rows (a sparse COO tensor)."""
    return moment.layout == torch.sparse_coo


def _rows_tensor(rows: torch.Tensor, values: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    return torch.sparse_coo_tensor(rows[None], values, shape, is_coalesced=True, check_invariants=False)


def empty_moments(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``exp_avg`` and ``exp_avg_sq`` of ``p`` (V, ...) with no rows stored (all zero)."""
    rows = torch.zeros(0, dtype=torch.long, device=p.device)
    return tuple(_rows_tensor(rows, p.new_zeros((0, *p.shape[1:])), p.shape) for _ in range(2))


def dense_moments(state: dict, p: torch.Tensor) -> None:
    """Make ``state``'s sparse moments dense, in ``p``'s memory layout (a no-op for dense ones). Each sparse moment
    is scattered into zeros and dropped before the next is made dense: at most one dense moment more than the dense
    state holds."""
    for key in ("exp_avg", "exp_avg_sq"):
        if is_sparse(state[key]):
            moment = state.pop(key).coalesce()
            dense = torch.zeros_like(p, memory_format=torch.preserve_format)
            dense.index_put_((moment.indices()[0],), moment.values().to(p.dtype))
            del moment
            state[key] = dense


def nonzero_rows(grad: torch.Tensor, block_rows: int) -> torch.Tensor:
    """The rows of the dense, contiguous ``grad`` (V, ...) that hold a non-zero (or NaN) value, as a coalesced sparse
    COO tensor; found ``block_rows`` rows at a time, so the only temporary is a block's mask."""
    flat = grad.reshape(grad.shape[0], -1)
    rows = [start + (flat[start:start + block_rows] != 0).any(dim=1).nonzero().flatten()
            for start in range(0, grad.shape[0], block_rows)]
    rows = torch.cat(rows) if rows else torch.zeros(0, dtype=torch.long, device=grad.device)
    return _rows_tensor(rows, grad.index_select(0, rows), grad.shape)


def _sparse_bytes(rows: int, p: torch.Tensor) -> int:
    """Bytes of both moments of ``rows`` rows stored by rows (values and one int64 index each)."""
    return 2 * rows * (math.prod(p.shape[1:]) * p.element_size() + 8)


def add_rows(state: dict, p: torch.Tensor, rows: torch.Tensor) -> None:
    """Store zero moments for those of ``rows`` (sorted, unique) not stored yet; the moments become dense when they
    would take more than 1 / ``DENSE_FRACTION`` of the dense moments' memory (half of the rows of a matrix).

    Adding rows copies the stored ones into tensors one size larger (sorted rows keep the COO tensors coalesced): while
    the moments are sparse that is at most the dense moments' memory, and a step that adds rows to many stored ones
    costs a copy of them (tens of milliseconds at 100,000 rows of 128)."""
    if not all(is_sparse(state[key]) for key in ("exp_avg", "exp_avg_sq")):  # a hand-edited state: one layout
        dense_moments(state, p)
        return
    for key in ("exp_avg", "exp_avg_sq"):
        state[key] = state[key].coalesce()  # a no-op for the optimiser's own; a loaded tensor may not say so
    stored = state["exp_avg"].indices()[0]
    if not torch.equal(stored, state["exp_avg_sq"].indices()[0]):  # one row set for both (a hand-made state)
        dense_moments(state, p)
        return
    new = rows[~torch.isin(rows, stored)]
    if new.numel() == 0:
        return
    if _sparse_bytes(stored.numel() + new.numel(), p) * DENSE_FRACTION > 2 * p.numel() * p.element_size():
        dense_moments(state, p)
        return
    union = torch.sort(torch.cat([stored, new])).values
    at = torch.searchsorted(union, stored)
    for key in ("exp_avg", "exp_avg_sq"):
        values = state[key].values()
        grown = values.new_zeros((union.numel(), *values.shape[1:])).index_copy_(0, at, values)
        state[key] = _rows_tensor(union, grown, p.shape)


def blockwise_step(p: torch.Tensor, grad: torch.Tensor, state: dict, block_rows: int, options: dict,
                   grad_scale: torch.Tensor | None, found_inf: torch.Tensor | None) -> None:
    """One fused AdamW update of the contiguous ``p`` (V, ...) from its coalesced row-sparse ``grad``, block by block.

    Args:
        p: the parameter, contiguous.
        grad: coalesced sparse COO gradient of ``p``'s shape, one sparse dimension.
        state: the parameter's AdamW state; ``step`` is incremented; moments dense or sparse (:func:`add_rows` has
            added ``grad``'s rows to sparse ones).
        block_rows: rows per block (rounded up to a multiple of 64 elements).
        options: the keyword arguments of ``torch._fused_adamw_`` (lr, betas, eps, weight decay, ...).
        grad_scale: GradScaler's scale, or None.
        found_inf: GradScaler's inf flag, or None.
    """
    rows, values = grad.indices()[0], grad.values().to(p.dtype)
    sparse = is_sparse(state["exp_avg"])
    stored = state["exp_avg"].indices()[0] if sparse else rows[:0]
    moments = [state[key].values() for key in ("exp_avg", "exp_avg_sq")] if sparse else None
    per_block = aligned_block_rows(block_rows, math.prod(p.shape[1:]))
    starts = list(range(0, p.shape[0], per_block)) + [p.shape[0]]
    edges = torch.tensor(starts, device=rows.device)
    bounds = torch.stack([torch.searchsorted(rows, edges), torch.searchsorted(stored, edges)]).tolist()  # one sync
    buffers = [p.new_zeros((min(per_block, p.shape[0]), *p.shape[1:])) for _ in range(3 if sparse else 1)]
    for b, (start, stop) in enumerate(zip(starts, starts[1:])):
        n, (g_lo, g_hi), (s_lo, s_hi) = stop - start, bounds[0][b:b + 2], bounds[1][b:b + 2]
        g_local = rows[g_lo:g_hi] - start
        block_grad = buffers[0][:n].index_copy_(0, g_local, values[g_lo:g_hi])
        if sparse:
            s_local = stored[s_lo:s_hi] - start
            block_moments = [buf[:n].index_copy_(0, s_local, m[s_lo:s_hi]) for buf, m in zip(buffers[1:], moments)]
        else:
            block_moments = [state[key][start:stop] for key in ("exp_avg", "exp_avg_sq")]
        torch._fused_adamw_([p[start:stop]], [block_grad], *([m] for m in block_moments), [], [state["step"]],
                            grad_scale=grad_scale, found_inf=found_inf, **options)
        if sparse:  # the touched rows back into storage; the buffers zero again for the next block
            for buf, m in zip(block_moments, moments):
                torch.index_select(buf, 0, s_local, out=m[s_lo:s_hi])
                buf.index_fill_(0, s_local, 0)
        block_grad.index_fill_(0, g_local, 0)
