"""Memory-efficient SPLADE max-pooling head: never materialises the (B, L, V) MLM logits.

For max pooling, ``w_v = act(max_l (h_l · W_v + b_v))`` because the SPLADE activation is monotone. Forward computes the
logits tile by tile (a few positions of the rows with real tokens there x 1024 vocabulary columns) and keeps a running
maximum (B, V); when gradients are needed it also records which chunk of positions won each (b, v). Backward needs the
gradient only where the pooled logit is active (``act'`` is 0 wherever the max is <= 0), and each such entry depends on
one position, the arg-max, which backward recomputes for the K active entries alone, within the winning chunk
(K·c·H multiply-adds for chunks of c positions, against B·L·V·H for the logits), then applies
``dL/dh[b, l*] += g[b,v]·W_v``, ``dL/dW_v += g[b,v]·h[b, l*]``, ``dL/db_v += g[b,v]`` as two sparse (CSR) x dense
products. Backward cost is proportional to the number of active terms (~100-300 per text once trained), and stays
well below the logits' cost when nearly every term is active (an untrained MLM head).

With ``sparse_weight_grad`` the decoder weight's gradient is returned as a sparse COO tensor of the rows of active
terms, when they are at most V / 8, and made dense once accumulated (``models/vocab_grad.py``).

On an accelerator (CUDA) the loop is launch-bound rather than cache-bound, so the tiles span up to 32,768 vocabulary
columns, and the forward records the exact arg-max position of each (b, v) (the tile's ``max`` with indices) instead of
the winning chunk: backward then reads the positions and recomputes nothing. On the CPU, ``max`` with indices made
the sparse SPLADE-tiny training step 1.4x slower than recomputing, but with dense activations (more than 1/8 of a
sample of the entries active: the screen's sample, or :func:`dense_sample`'s) it is the cheaper one, as backward
would search the chunks of all B x V entries: the MiniLM-shaped head's forward and backward took 1.8 s instead of
2.4-2.7 s (benchmarks/README.md), so dense activations take that path on the CPU too. There the positions come from
:func:`~splade_lightning.models.head_tiles.first_max` (``amax`` and the first position equal to it), since the CPU's
``max`` with indices over a tile's positions is unvectorised (1.16 s instead of 1.42 s for that head).

With ``screen`` (on a CPU with bf16 dot-product instructions, by default) the forward of a sparse head goes through
``models/head_screen.py`` instead: bf16 logits and an error bound rule out the inactive entries, and the others are
recomputed in float32 with their exact arg-max positions, which backward then reads as on an accelerator.
"""

from __future__ import annotations

import warnings

import torch

from splade_lightning.models.head_screen import HeadScreen, screen_applies, screened_max
from splade_lightning.models.head_tiles import (
    DENSE_FRACTION,
    chunk_positions,
    first_max,
    padding_bias,
    position_chunks,
    position_dtype,
)
from splade_lightning.models.vocab_grad import can_take_sparse_grad, ensure_densify_hook

_VOCAB_BLOCK = 1024  # vocabulary columns per matmul on the CPU: a (rows, block) logits tile stays in cache
_VOCAB_BLOCK_ACCELERATOR = 32768  # on a GPU: fewer, larger matmuls (launch-bound, not cache-bound)
_SPARSE_ROWS_FRACTION = 8  # the weight's gradient is built sparse when at most V / 8 rows are non-zero
_DENSE_SAMPLE_STRIDE = 64  # the density check's sample: every 64th vocabulary entry


def _vocab_block(device: torch.device) -> int:
    return _VOCAB_BLOCK if device.type == "cpu" else _VOCAB_BLOCK_ACCELERATOR


def default_chunk_tokens(device: torch.device) -> int:
    """Rows x positions per chunk when none is given: 512 on the CPU (fastest on a 2-core AVX2 EPYC), 8192 on an
    accelerator (a BERT-base-shaped bf16 step on an H200 ran 1.12-1.21x faster than with 512; benchmarks/README.md)."""
    return 512 if device.type == "cpu" else 8192


def _running_max(hidden, weight, bias, mask, chunk_tokens, track: bool = False, exact: bool = False,
                 padding_as_bias: bool | None = None):
    """(B, V) masked maximum over positions of ``hidden @ weight.T + bias`` (-inf for rows without tokens).

    The logits are computed in (chunk rows x 1024 columns) tiles, each against a (1024, H) row block of the weight
    read in place (BLAS takes the transposed operand as it is; no (H, V) copy, which at V = 250k, H = 384 was 384 MB
    and 70 ms per call), and each tile is reduced over its positions while it is still in cache: on a 2-core AVX2
    CPU, encoding ran 1.33-1.45x faster than with one (rows x V) product per chunk (benchmarks/README.md). The bias is
    constant over positions, so it is added once to the (B, V) maximum instead of to every logit.

    Returns ``(best, winner)``: ``winner`` (B, V) holds the first position of the chunk that holds the maximum (the
    earliest such chunk on ties), or None unless ``track``. Recording it costs two small ops on each reduced tile.
    With ``exact`` it holds the arg-max position itself (the first on ties), from each tile (:func:`first_max`).

    Padding is excluded with ``padding_as_bias`` (default: on the CPU) by a (rows, 1) bias of 0 and -inf that the
    product adds as it writes the tile (``addmm``; padded rows of the block are zeroed first, so whatever the
    backbone left there, even NaN, comes out -inf; the real rows' logits are bitwise those of ``mm``, tested in
    float32, bfloat16 and float64), else by a masked fill of each tile, which cost 4% of encoding long MEDLINE
    abstracts on a 2-core AVX2 CPU.
    """
    batch, length, _ = hidden.shape
    vocab = weight.shape[0]
    weight = weight.to(hidden.dtype)  # a no-op unless autocast
    best = torch.full((batch, vocab), float("-inf"), dtype=hidden.dtype, device=hidden.device)
    winner = None
    if track:
        winner = torch.zeros((batch, vocab), dtype=position_dtype(length), device=hidden.device)
    block_columns = _vocab_block(hidden.device)
    for start, rows, block, padded in position_chunks(hidden, mask, chunk_tokens):
        width = batch if rows is None else rows.numel()
        pad_bias = None
        if padded is not None and (hidden.device.type == "cpu" if padding_as_bias is None else padding_as_bias):
            block, pad_bias = padding_bias(block, padded)
        for lo in range(0, vocab, block_columns):
            hi = min(vocab, lo + block_columns)
            if pad_bias is not None:
                logits = torch.addmm(pad_bias, block, weight[lo:hi].t()).view(-1, width, hi - lo)  # (c, R, hi-lo)
            else:
                logits = (block @ weight[lo:hi].t()).view(-1, width, hi - lo)
                if padded is not None:
                    logits.masked_fill_(padded, float("-inf"))
            if winner is not None and exact:
                tile, won = first_max(logits, start, winner.dtype)  # (R, hi-lo); the first position on ties
            else:
                tile, won = logits.amax(dim=0), start
            if rows is None:
                old = best[:, lo:hi]
                if winner is not None and exact:
                    winner[:, lo:hi] = torch.where(tile > old, won, winner[:, lo:hi])
                elif winner is not None:  # the CPU path: one chunk start, filled in place
                    winner[:, lo:hi].masked_fill_(tile > old, start)
                torch.maximum(old, tile, out=old)
            else:
                old = best[rows, lo:hi]
                if winner is not None:
                    winner[rows, lo:hi] = torch.where(tile > old, won, winner[rows, lo:hi])
                best[rows, lo:hi] = torch.maximum(old, tile)
    return (best + bias.to(best.dtype) if bias is not None else best), winner


def dense_sample(hidden, weight, bias, mask, chunk_tokens) -> bool:
    """Whether more than 1/8 of a spread sample of the (b, v) entries (every 64th vocabulary entry; 1/64 of the
    forward's work) is active, as at the start of training from a plain MLM head."""
    sample = torch.arange(0, weight.shape[0], _DENSE_SAMPLE_STRIDE, device=weight.device)
    sample_bias = None if bias is None else bias.index_select(0, sample)
    best, _ = _running_max(hidden, weight.index_select(0, sample), sample_bias, mask, chunk_tokens)
    return int((best > 0).sum()) * DENSE_FRACTION > best.numel()


def _positions_in_chunks(hidden_row, weight, mask_row, v, starts, step):
    """Arg-max positions of one example's entries ``v`` (K,), each searched within its winning chunk only.

    Entries are grouped by chunk: one (K_c, H) x (H, c) matmul per chunk, K·c·H multiply-adds in all. With one
    position per chunk the winner is the position itself.
    """
    if step == 1:
        return starts
    positions = torch.empty_like(v)
    order = torch.argsort(starts, stable=True)
    chunk_starts, counts = torch.unique_consecutive(starts.index_select(0, order), return_counts=True)
    first = 0
    for lo, count in zip(chunk_starts.tolist(), counts.tolist()):
        sel = order[first:first + count]
        first += count
        hi = min(hidden_row.shape[0], lo + step)
        scores = weight.index_select(0, v.index_select(0, sel)) @ hidden_row[lo:hi].t()  # (K_c, c)
        scores.masked_fill_(~mask_row[lo:hi].unsqueeze(0), float("-inf"))
        positions.index_copy_(0, sel, scores.argmax(dim=1).add_(lo))
    return positions


def _argmax_positions(hidden, weight, mask, b, v, winner=None, step=None):
    """Position of the maximum logit for each active (b, v), as (K,) int64; ties go to the first position.

    ``b`` is sorted (``nonzero`` order), so each example's entries are one slice. An example with few active entries
    gets one (K_b, H) x (H, L) matmul; one with most of the vocabulary active (dense activations, e.g. an untrained
    head) is searched only within the chunks that ``winner`` (from the forward) names, which cuts the recomputation
    by L / c. The bias is constant per v and does not change the arg-max.
    """
    positions = torch.empty_like(b)
    weight = weight.to(hidden.dtype)
    vocab = weight.shape[0]
    counts = torch.bincount(b, minlength=hidden.shape[0]).tolist()
    start = 0
    for row, count in enumerate(counts):
        if count:
            part = slice(start, start + count)
            if winner is not None and count > vocab // 4:
                starts = winner[row].index_select(0, v[part]).long()
                positions[part] = _positions_in_chunks(hidden[row], weight, mask[row], v[part], starts, step)
            else:
                scores = weight.index_select(0, v[part]) @ hidden[row].t()  # (K_b, L)
                scores.masked_fill_(~mask[row].unsqueeze(0), float("-inf"))
                positions[part] = scores.argmax(dim=1)
            start += count
    return positions


def _csr(rows, cols, values, shape):
    """A (R, C) CSR matrix from COO entries (any order); entries of one row keep their given order."""
    order = torch.argsort(rows, stable=True)
    crow = torch.zeros(shape[0] + 1, dtype=torch.int64, device=rows.device)
    torch.cumsum(torch.bincount(rows, minlength=shape[0]), dim=0, out=crow[1:])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, cols[order], values[order], shape, check_invariants=False)


def weight_grad(v: torch.Tensor, cols: torch.Tensor, g: torch.Tensor, inputs: torch.Tensor, vocab: int,
                sparse: bool) -> torch.Tensor:
    """``dL/dW`` (V, H): row ``r`` sums ``g[k] * inputs[cols[k]]`` over the entries with ``v[k] == r``.

    Args:
        v: (K,) vocabulary row of each active entry.
        cols: (K,) row of ``inputs`` (the arg-max position, flattened) of each entry.
        g: (K,) upstream gradient of each entry.
        inputs: (N, H) the head's flattened inputs.
        vocab: V.
        sparse: build a sparse COO result of the non-zero rows when they are at most V / 8 (the caller has put the
            densify hook of ``models/vocab_grad.py`` on the weight).

    Returns:
        (V, H) dense, or sparse COO (coalesced) with the non-zero rows only; each row's sum is computed the same way.
    """
    if sparse:
        rows, local = torch.unique(v, return_inverse=True)  # sorted: the COO tensor is coalesced
        if rows.numel() * _SPARSE_ROWS_FRACTION <= vocab:
            values = _csr(local, cols, g, (rows.numel(), inputs.shape[0])) @ inputs  # (R, H)
            return torch.sparse_coo_tensor(rows.unsqueeze(0), values, (vocab, inputs.shape[1]), is_coalesced=True,
                                           check_invariants=False)
    return _csr(v, cols, g, (vocab, inputs.shape[0])) @ inputs


class MaxPoolProjection(torch.autograd.Function):
    """``max_l mask(h @ W.T + b)`` over positions: (B, L, H) x (V, H) -> (B, V), with a sparse backward.

    Padded positions never win (they count as -inf). The result is in the activations' dtype (bf16 under autocast);
    gradients are accumulated in at least float32 and returned in each input's dtype.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, mask, chunk_tokens: int, track: bool, exact: bool | None = False,
                sparse_weight_grad: bool = False, screen: bool = False):
        mask = mask.to(torch.bool)
        screened = screened_max(hidden, weight, bias, mask, chunk_tokens, track) if screen else None
        if screened is None and track and exact is None:  # the screen gives up on dense activations only
            exact = screen or dense_sample(hidden, weight, bias, mask, chunk_tokens)
        best, winner = screened or _running_max(hidden, weight, bias, mask, chunk_tokens, track, bool(exact))
        ctx.save_for_backward(hidden, weight, mask, winner)
        ctx.exact = (exact or screened is not None) and winner is not None
        ctx.bias_dtype = bias.dtype if bias is not None else None
        ctx.step = chunk_positions(hidden.shape[0], chunk_tokens)
        ctx.sparse_weight_grad = sparse_weight_grad
        return best

    @staticmethod
    def backward(ctx, grad_best):
        hidden, weight, mask, winner = ctx.saved_tensors
        batch, length, width = hidden.shape
        acc = torch.float64 if torch.float64 in (hidden.dtype, weight.dtype) else torch.float32  # accumulation dtype
        b, v = grad_best.nonzero(as_tuple=True)  # the active entries only
        g = grad_best[b, v].to(acc)  # (K,)
        grad_hidden = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0] or ctx.needs_input_grad[1]:  # the bias's gradient needs no positions
            if ctx.exact:  # the forward recorded the arg-max positions themselves
                positions = winner[b, v].long()
            else:
                positions = _argmax_positions(hidden, weight, mask, b, v, winner, ctx.step)
            flat = b * length + positions  # (K,) row of h
        if ctx.needs_input_grad[0]:  # (B*L, V) CSR @ (V, H): row b*L+l* gathers g[b,v] W_v
            grad_hidden = _csr(flat, v, g, (batch * length, weight.shape[0])) @ weight.to(acc)
            grad_hidden = grad_hidden.view(batch, length, width).to(hidden.dtype)
        if ctx.needs_input_grad[1]:  # (V, B*L) CSR @ (B*L, H): row v gathers g[b,v] h[b, l*]
            hidden_flat = hidden.reshape(batch * length, width).to(acc)
            grad_weight = weight_grad(v, flat, g, hidden_flat, weight.shape[0], ctx.sparse_weight_grad)
            grad_weight = grad_weight.to(weight.dtype)
        if ctx.bias_dtype is not None and ctx.needs_input_grad[2]:
            grad_bias = torch.zeros(weight.shape[0], dtype=acc, device=weight.device).index_add_(0, v, g)
            grad_bias = grad_bias.to(ctx.bias_dtype)
        return grad_hidden, grad_weight, grad_bias, None, None, None, None, None, None


def max_pool_projection(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                        attention_mask: torch.Tensor, chunk_tokens: int | None = None,
                        sparse_weight_grad: bool = False, screen: HeadScreen = "off") -> torch.Tensor:
    """Masked max over positions of the vocabulary projection, without building (B, L, V).

    Args:
        hidden: (B, L, H) inputs of the MLM decoder (after the head's transform).
        weight: (V, H) decoder weight.
        bias: (V,) decoder bias or None.
        attention_mask: (B, L), 1 for real tokens.
        chunk_tokens: rows x positions per chunk (memory: about chunk_tokens x 1024 logits at a time on the CPU,
            x 32768 on a GPU); None: :func:`default_chunk_tokens` of the device.
        sparse_weight_grad: return ``weight``'s gradient as a sparse COO tensor of its non-zero rows when they are
            few (``models/vocab_grad.py``); ``weight`` gets the hook that makes its accumulated ``.grad`` dense.
        screen: ``bf16``: screen the entries with bf16 logits and recompute the ones that may be active in float32
            (``models/head_screen.py``; float32 activations on the CPU only); ``auto``: where the CPU has bf16
            dot-product instructions; ``off``: never. Inactive entries then hold an upper bound below zero of their
            raw logit, not the logit itself (the SPLADE activation makes both 0).

    Returns:
        (B, V) raw maximum logits (-inf for rows without tokens); apply the SPLADE activation afterwards.
    """
    if torch.is_autocast_enabled(hidden.device.type):  # matmul in the autocast dtype; parameter grads stay fp32
        hidden = hidden.to(torch.get_autocast_dtype(hidden.device.type))
    if chunk_tokens is None:
        chunk_tokens = default_chunk_tokens(hidden.device)
    track = torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad)  # winners help backward only
    # accelerators: record arg-max positions, recompute nothing in backward; the CPU: when the activations are dense
    exact = True if hidden.device.type != "cpu" else None
    sparse_weight_grad = sparse_weight_grad and track and can_take_sparse_grad(weight)
    if sparse_weight_grad:
        ensure_densify_hook(weight)
    with torch.autocast(hidden.device.type, enabled=False):
        return MaxPoolProjection.apply(hidden, weight, bias, attention_mask, chunk_tokens, track, exact,
                                       sparse_weight_grad, screen_applies(screen, hidden))
