"""How the efficient SPLADE head (``models/sparse_head.py``) walks the (B, L) positions: chunks of positions, laid out
position-major, that skip the rows with only padding there."""

from __future__ import annotations

import torch

DENSE_FRACTION = 8  # activations count as dense when more than 1/8 of a sample of the (b, v) entries may be active


def chunk_positions(batch: int, chunk_tokens: int) -> int:
    """Positions per chunk: few when the batch is large, so that padded rows are skipped early."""
    return max(1, chunk_tokens // max(1, batch))


def position_dtype(length: int) -> torch.dtype:
    """The smallest integer dtype that holds a position in ``length`` positions (int16 up to 2^15)."""
    return torch.int16 if length <= 2**15 else torch.int32


def position_chunks(hidden, mask, chunk_tokens):
    """Position chunks of the rows that have real tokens there, laid out position-major.

    Yields ``(start, rows, block, padded)``: ``start`` the chunk's first position, ``rows`` (R,) the rows with a
    token in positions ``start:start+c`` (None: all of them), ``block`` (c*R, H) with row ``j*R + r`` =
    ``hidden[rows[r], start + j]``, and ``padded`` (c, R, 1) True at padding (None: no padding). The maximum over the
    chunk's positions is then a reduction over the leading dimension of the (c, R, V) logits, the fastest direction.
    """
    batch, length, width = hidden.shape
    step = chunk_positions(batch, chunk_tokens)
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
        yield start, rows, block, padded


def padding_bias(block: torch.Tensor, padded: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Padding as a bias of the tile product: ``addmm(bias, block, W.T)`` is then -inf at padded rows.

    Args:
        block: (c*R, H) a chunk's rows, from :func:`position_chunks`.
        padded: (c, R, 1) True at padding.

    Returns:
        ``(block, bias)``: the block with its padded rows zeroed (their product is then 0, never NaN or inf, whatever
        the backbone left there) and a (c*R, 1) bias of 0 and -inf, both in the block's dtype.
    """
    pad_rows = padded.reshape(-1, 1)  # (c*R, 1), the block's row order
    bias = torch.zeros((block.shape[0], 1), dtype=block.dtype, device=block.device)
    return block.masked_fill(pad_rows, 0.0), bias.masked_fill_(pad_rows, float("-inf"))


def first_max(logits: torch.Tensor, offset: int, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``logits.max(dim=0)`` of a (c, R, n) tile: the maximum and the first position holding it, plus ``offset``.

    On the CPU, PyTorch's ``max`` with indices over a leading dimension is unvectorised: on a (8, 64, 1024) float32
    tile it took 20-35x as long as ``amax`` (0.78 ms against 22-36 µs on 2-core Zen 4 and Xeon CPUs). Here the maximum
    is ``amax``; each position holding it is marked with ``c - j`` (uint8), and the largest mark is the first
    position: about a third of ``max``'s time. Positions are those of ``max`` (tested), and so are the values, except
    that a zero maximum tied between -0.0 and 0.0 may carry the other sign (as ``amax``, which the non-recording path
    uses anyway); a NaN maximum (no position equals it) gets the tile's last position. Elsewhere, and for more than
    255 positions, ``max`` itself is used.

    Returns:
        ``(values, positions)``: (R, n) in ``logits.dtype`` and (R, n) ``offset + j`` in ``dtype``.
    """
    count = logits.shape[0]
    if logits.device.type != "cpu" or count > 255:
        values, index = logits.max(dim=0)
        return values, index.add_(offset).to(dtype)
    if count == 1:
        return logits[0], torch.full(logits.shape[1:], offset, dtype=dtype, device=logits.device)
    values = logits.amax(dim=0)
    marks = torch.arange(count, 0, -1, dtype=torch.uint8, device=logits.device).view(count, 1, 1)
    first = (logits == values).view(torch.uint8).mul_(marks).amax(dim=0).clamp_(min=1)  # (R, n): c - j
    return values, torch.rsub(first, count).to(dtype).add_(offset)  # j in 0..c-1 (uint8), then offset + j
