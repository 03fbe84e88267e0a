"""Memory-efficient SPLADE max-pooling head: never materialises the (B, L, V) MLM logits.

For max pooling, ``w_v = act(max_l (h_l · W_v + b_v))`` because the SPLADE activation is monotone. Forward computes the
logits chunk by chunk over sequence positions, keeping a running maximum and its arg-max (B, V). Backward needs the
gradient only where the pooled logit is active (``act'`` is 0 wherever the max is <= 0), and each such entry depends on
one position: ``dL/dh[b, argmax[b,v]] += g[b,v]·W_v``, ``dL/dW_v += g[b,v]·h[b, argmax[b,v]]``, ``dL/db_v += g[b,v]``.
Backward cost is proportional to the number of active terms (~100-300 per text), not to B·L·V.
"""

from __future__ import annotations

import torch


def _update_running_max(best, arg, rows, logits, offset):
    """Fold a chunk's (R, c, V) logits for batch ``rows`` into the running (B, V) max / arg-max (first index wins)."""
    chunk_max, chunk_arg = logits.max(dim=1)  # (R, V)
    current = best.index_select(0, rows)
    better = chunk_max > current
    best.index_copy_(0, rows, torch.where(better, chunk_max, current))
    arg.index_copy_(0, rows, torch.where(better, chunk_arg.to(arg.dtype) + offset, arg.index_select(0, rows)))


class MaxPoolProjection(torch.autograd.Function):
    """``max_l mask(h @ W.T + b)`` over positions: (B, L, H) x (V, H) -> (B, V), with a sparse backward.

    Padded positions never win (they count as -inf). Ties go to the first position. The result is in the input dtype
    (the maximum is exact in any dtype); gradients are accumulated in float32 and returned in each input's dtype.
    """

    @staticmethod
    def forward(ctx, hidden, weight, bias, mask, chunk_tokens: int):
        batch, length, _ = hidden.shape
        vocab = weight.shape[0]
        best = torch.full((batch, vocab), float("-inf"), dtype=hidden.dtype, device=hidden.device)
        arg = torch.zeros((batch, vocab), dtype=torch.int32, device=hidden.device)
        step = max(1, chunk_tokens // max(1, batch))
        mask = mask.to(torch.bool)
        weight_t = weight.to(hidden.dtype).t()  # compute in the activations' dtype (bf16 under autocast)
        bias_c = bias.to(hidden.dtype) if bias is not None else None
        for start in range(0, length, step):
            chunk_mask = mask[:, start:start + step]  # (B, c)
            rows = chunk_mask.any(dim=1).nonzero().flatten()  # skip rows that are all padding in this chunk
            if rows.numel() == 0:
                continue
            logits = torch.matmul(hidden[rows, start:start + step], weight_t)  # (R, c, V)
            if bias is not None:
                logits += bias_c
            logits.masked_fill_(~chunk_mask[rows].unsqueeze(-1), float("-inf"))
            _update_running_max(best, arg, rows, logits, start)
        ctx.save_for_backward(hidden, weight, arg)
        ctx.has_bias = bias is not None
        ctx.bias_dtype = bias.dtype if bias is not None else None
        return best

    @staticmethod
    def backward(ctx, grad_best):
        hidden, weight, arg = ctx.saved_tensors
        batch, length, width = hidden.shape
        acc = torch.float64 if torch.float64 in (hidden.dtype, weight.dtype) else torch.float32  # accumulation dtype
        b, v = grad_best.nonzero(as_tuple=True)  # the active entries only
        g = grad_best[b, v].to(acc).unsqueeze(1)  # (K, 1)
        flat = b * length + arg[b, v].long()  # (K,) row of h that produced each maximum
        hidden_flat = hidden.reshape(batch * length, width)
        grad_hidden = grad_weight = grad_bias = None
        if ctx.needs_input_grad[0]:
            grad_hidden = torch.zeros(batch * length, width, dtype=acc, device=hidden.device)
            grad_hidden.index_add_(0, flat, g * weight[v].to(acc))
            grad_hidden = grad_hidden.view(batch, length, width).to(hidden.dtype)
        if ctx.needs_input_grad[1]:
            grad_weight = torch.zeros(weight.shape, dtype=acc, device=weight.device)
            grad_weight.index_add_(0, v, g * hidden_flat[flat].to(acc))
            grad_weight = grad_weight.to(weight.dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_bias = torch.zeros(weight.shape[0], dtype=acc, device=weight.device)
            grad_bias.index_add_(0, v, g.squeeze(1))
            grad_bias = grad_bias.to(ctx.bias_dtype)
        return grad_hidden, grad_weight, grad_bias, None, None


def max_pool_projection(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                        attention_mask: torch.Tensor, chunk_tokens: int = 1024) -> torch.Tensor:
    """Masked max over positions of the vocabulary projection, without building (B, L, V).

    Args:
        hidden: (B, L, H) inputs of the MLM decoder (after the head's transform).
        weight: (V, H) decoder weight.
        bias: (V,) decoder bias or None.
        attention_mask: (B, L), 1 for real tokens.
        chunk_tokens: positions x rows processed per chunk (memory: chunk_tokens x V logits at a time).

    Returns:
        (B, V) raw maximum logits (-inf for rows without tokens); apply the SPLADE activation afterwards.
    """
    if torch.is_autocast_enabled(hidden.device.type):  # matmul in the autocast dtype; parameter grads stay fp32
        hidden = hidden.to(torch.get_autocast_dtype(hidden.device.type))
    with torch.autocast(hidden.device.type, enabled=False):
        return MaxPoolProjection.apply(hidden, weight, bias, attention_mask, chunk_tokens)
