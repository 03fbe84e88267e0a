"""Memory-efficient SPLADE max-pooling head: never materialises the (B, L, V) MLM logits.

For max pooling, ``w_v = act(max_l (h_l · W_v + b_v))`` because the SPLADE activation is monotone. Forward computes the
logits tile by tile (a few positions of the rows with real tokens there x 1024 vocabulary columns) and keeps a running
maximum (B, V). Backward needs the gradient only where the pooled logit is active (``act'`` is 0 wherever the max is
<= 0), and each such entry depends on one position, the arg-max, which backward recomputes for the K active entries
alone (K·L·H multiply-adds, against B·L·V·H for the logits):
``dL/dh[b, l*] += g[b,v]·W_v``, ``dL/dW_v += g[b,v]·h[b, l*]``, ``dL/db_v += g[b,v]``.
Backward cost is proportional to the number of active terms (~100-300 per text), not to B·L·V.
"""

from __future__ import annotations

import torch

_BACKWARD_ELEMENTS = 1 << 22  # size of the (K_chunk, H) temporaries in backward
_VOCAB_BLOCK = 1024  # vocabulary columns per matmul: a (rows, block) logits tile stays in cache


def _position_chunks(hidden, mask, chunk_tokens):
    """Position chunks of the rows that have real tokens there, laid out position-major.

    Yields ``(rows, block, padded)``: ``rows`` (R,) the rows with a token in positions ``start:start+c``
    (None: all of them), ``block`` (c*R, H) with row ``j*R + r`` = ``hidden[rows[r], start + j]``, and ``padded``
    (c, R, 1) True at padding (None: no padding). The maximum over the chunk's positions is then a reduction over
    the leading dimension of the (c, R, V) logits, the fastest direction.
    """
    batch, length, width = hidden.shape
    step = max(1, chunk_tokens // max(1, batch))  # few positions per chunk: padded rows are skipped early
    for start in range(0, length, step):
        chunk_mask = mask[:, start:start + step]  # (B, c)
        rows = chunk_mask.any(dim=1).nonzero().flatten()
        if rows.numel() == 0:
            continue
        if rows.numel() == batch:
            rows, block = None, hidden[:, start:start + step]
        else:
            chunk_mask, block = chunk_mask[rows], hidden[rows, start:start + step]
        block = block.transpose(0, 1).reshape(-1, width)  # (c*R, H)
        padded = None if bool(chunk_mask.all()) else ~chunk_mask.t().unsqueeze(-1)
        yield rows, block, padded


def _running_max(hidden, weight, bias, mask, chunk_tokens):
    """(B, V) masked maximum over positions of ``hidden @ weight.T + bias`` (-inf for rows without tokens).

    The logits are computed in (chunk rows x 1024 columns) tiles against a contiguous (H, V) copy of the weight, and
    each tile is reduced over its positions while it is still in cache: on a 2-core AVX2 CPU, encoding ran 1.33-1.45x
    faster than with one (rows x V) product per chunk (benchmarks/README.md). The bias is constant over positions, so
    it is added once to the (B, V) maximum instead of to every logit.
    """
    batch, _, _ = hidden.shape
    vocab = weight.shape[0]
    weight_t = weight.to(hidden.dtype).t().contiguous()  # (H, V): column blocks are cheap to read
    best = torch.full((batch, vocab), float("-inf"), dtype=hidden.dtype, device=hidden.device)
    for rows, block, padded in _position_chunks(hidden, mask, chunk_tokens):
        width = batch if rows is None else rows.numel()
        for lo in range(0, vocab, _VOCAB_BLOCK):
            hi = min(vocab, lo + _VOCAB_BLOCK)
            logits = (block @ weight_t[:, lo:hi]).view(-1, width, hi - lo)  # (c, R, hi-lo)
            if padded is not None:
                logits.masked_fill_(padded, float("-inf"))
            if rows is None:
                old = best[:, lo:hi]
                torch.maximum(old, logits.amax(dim=0), out=old)
            else:
                best[rows, lo:hi] = torch.maximum(best[rows, lo:hi], logits.amax(dim=0))
    return best + bias.to(best.dtype) if bias is not None else best


def _argmax_positions(hidden, weight, mask, b, v):
    """Position of the maximum logit for each active (b, v), as (K,) int64; ties go to the first position.

    ``b`` is sorted (``nonzero`` order), so each example's entries are one slice: one (K_b, H) x (H, L) matmul per
    example, against the whole vocabulary when most of it is active (dense activations, e.g. an untrained head). The
    bias is constant per v and does not change the arg-max.
    """
    positions = torch.empty_like(b)
    weight = weight.to(hidden.dtype)
    vocab = weight.shape[0]
    counts = torch.bincount(b, minlength=hidden.shape[0]).tolist()
    start = 0
    for row, count in enumerate(counts):
        if count:
            rows_v = v[start:start + count]
            if count > vocab // 4:
                scores = (weight @ hidden[row].t())[rows_v]  # (K_b, L) without gathering most of W
            else:
                scores = weight[rows_v] @ hidden[row].t()  # (K_b, L)
            scores.masked_fill_(~mask[row].unsqueeze(0), float("-inf"))
            positions[start:start + count] = scores.argmax(dim=1)
            start += count
    return positions


class MaxPoolProjection(torch.autograd.Function):
    """``max_l mask(h @ W.T + b)`` over positions: (B, L, H) x (V, H) -> (B, V), with a sparse backward.

    Padded positions never win (they count as -inf). The result is in the activations' dtype (bf16 under autocast);
    gradients are accumulated in at least float32 and returned in each input's dtype.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, mask, chunk_tokens: int):
        mask = mask.to(torch.bool)
        best = _running_max(hidden, weight, bias, mask, chunk_tokens)
        ctx.save_for_backward(hidden, weight, mask)
        ctx.bias_dtype = bias.dtype if bias is not None else None
        return best

    @staticmethod
    def backward(ctx, grad_best):
        hidden, weight, mask = ctx.saved_tensors
        batch, length, width = hidden.shape
        acc = torch.float64 if torch.float64 in (hidden.dtype, weight.dtype) else torch.float32  # accumulation dtype
        b, v = grad_best.nonzero(as_tuple=True)  # the active entries only
        g = grad_best[b, v].to(acc).unsqueeze(1)  # (K, 1)
        flat = b * length + _argmax_positions(hidden, weight, mask, b, v)  # (K,) row of h behind each maximum
        need_hidden, need_weight = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grad_hidden = torch.zeros(batch * length, width, dtype=acc, device=hidden.device) if need_hidden else None
        grad_weight = torch.zeros(weight.shape, dtype=acc, device=weight.device) if need_weight else None
        hidden_flat = hidden.reshape(batch * length, width)
        step = max(1, _BACKWARD_ELEMENTS // width)  # bounded (K_chunk, H) temporaries even for dense activations
        for start in range(0, b.numel(), step):
            part = slice(start, start + step)
            if need_hidden:
                grad_hidden.index_add_(0, flat[part], g[part] * weight[v[part]].to(acc))
            if need_weight:
                grad_weight.index_add_(0, v[part], g[part] * hidden_flat[flat[part]].to(acc))
        grad_bias = None
        if ctx.bias_dtype is not None and ctx.needs_input_grad[2]:
            grad_bias = torch.zeros(weight.shape[0], dtype=acc, device=weight.device).index_add_(0, v, g.squeeze(1))
            grad_bias = grad_bias.to(ctx.bias_dtype)
        if need_hidden:
            grad_hidden = grad_hidden.view(batch, length, width).to(hidden.dtype)
        if need_weight:
            grad_weight = grad_weight.to(weight.dtype)
        return grad_hidden, grad_weight, grad_bias, None, None


def max_pool_projection(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                        attention_mask: torch.Tensor, chunk_tokens: int = 512) -> torch.Tensor:
    """Masked max over positions of the vocabulary projection, without building (B, L, V).

    Args:
        hidden: (B, L, H) inputs of the MLM decoder (after the head's transform).
        weight: (V, H) decoder weight.
        bias: (V,) decoder bias or None.
        attention_mask: (B, L), 1 for real tokens.
        chunk_tokens: rows x positions per chunk (memory: about chunk_tokens x 1024 logits at a time).

    Returns:
        (B, V) raw maximum logits (-inf for rows without tokens); apply the SPLADE activation afterwards.
    """
    if torch.is_autocast_enabled(hidden.device.type):  # matmul in the autocast dtype; parameter grads stay fp32
        hidden = hidden.to(torch.get_autocast_dtype(hidden.device.type))
    with torch.autocast(hidden.device.type, enabled=False):
        return MaxPoolProjection.apply(hidden, weight, bias, attention_mask, chunk_tokens)
