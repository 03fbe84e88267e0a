"""An exact bfloat16 screen of the efficient head's vocabulary entries, for CPUs with bf16 dot-product instructions.

SPLADE's activation is 0 wherever the pooled logit ``max_l h_l · W_v + b_v`` is <= 0, and a trained model leaves
most entries there (SPLADE-tiny: ~200 of 30,522 active per Wikipedia abstract). The screen computes every logit from
bfloat16 inputs (8 significant bits; the CPU's bf16 dot-product instructions, AVX512-BF16's ``vdpbf16ps`` or AMX, sum
the products in float32), which on a 2-core AMD EPYC (Zen 4) ran the head's tiles 2.2x faster than float32 at H = 128
and 2.3x at H = 384 (benchmarks/README.md). It takes their maximum over positions and adds a rigorous bound of the
rounding error. With ``u = 2^-8`` (bf16's unit roundoff) and ``γ_H = H·2^-24 / (1 - H·2^-24)`` (float32 summation of
H terms; Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., §3.1):

    |x̂ - x| <= (3u + 4u² + 2γ_H) Σ_i |h_i| |W_vi| <= c · ||h_l||₂ · ||W_v||₂

(the rounding of both inputs, 2u + u², the float32 sums of this product and of the float32 one it stands in for,
and the rounding of the bf16 output, u·|x̂|; Cauchy-Schwarz for the last step; ``c`` carries a 1% margin and a
2^-100 term for the subnormal inputs these instructions flush to zero). An entry whose maximum plus bound plus bias
is below zero is inactive for certain. The others (SPLADE-tiny: ~1.7x the active ones) are recomputed in float32
over every position of their text, so the result is the float32 head's (up to float32 summation order), with the
arg-max position; an entry whose bound is NaN or infinite (a NaN in the hidden states) is always recomputed.

The screen starts with a spread sample of the vocabulary (every 32nd entry) and gives up when more than 1/8 of the
entries there would be recomputed (dense activations, e.g. an untrained MLM head): the caller then runs the float32
head, having spent about 1/70 of its cost.
"""

from __future__ import annotations

import functools
from typing import Literal

import torch

from splade_lightning.models.head_tiles import DENSE_FRACTION, position_chunks, position_dtype

HeadScreen = Literal["auto", "bf16", "off"]

_UNIT_ROUNDOFF = 2.0**-8  # bfloat16: 8 significant bits, round to nearest
_VOCAB_BLOCK = 1024  # vocabulary columns per bf16 tile
_SAMPLE_STRIDE = 32  # the sample: every 32nd vocabulary entry
_PADDED_FROM = 16 * _VOCAB_BLOCK  # vocabularies from which the bf16 products are padded to whole blocks


@functools.cache
def bf16_dot_available() -> bool:
    """Whether this CPU has bf16 dot-product instructions (AVX512-BF16 or AMX), as PyTorch detects them."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def screen_applies(mode: HeadScreen, hidden: torch.Tensor) -> bool:
    """Whether the screen runs: float32 activations on the CPU, and ``bf16``, or ``auto`` on a CPU with bf16
    dot-product instructions (elsewhere bf16 matmuls are emulated and slower than float32)."""
    if mode == "off" or hidden.device.type != "cpu" or hidden.dtype != torch.float32:
        return False
    return mode == "bf16" or bf16_dot_available()


def error_factor(width: int) -> float:
    """``c`` of the module docstring's bound, for dot products of ``width`` terms."""
    gamma = width * 2.0**-24 / (1 - width * 2.0**-24)
    return 1.01 * (3 * _UNIT_ROUNDOFF + 4 * _UNIT_ROUNDOFF**2 + 2 * gamma)


def screened_max(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, mask: torch.Tensor,
                 chunk_tokens: int, positions: bool) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """(B, V) masked maximum over positions of ``hidden @ weight.T + bias``, screened in bf16 (module docstring).

    Args:
        hidden: (B, L, H) float32 inputs of the decoder.
        weight: (V, H) float32 decoder weight.
        bias: (V,) decoder bias or None.
        mask: (B, L) bool, True at real tokens.
        chunk_tokens: rows x positions per chunk of the bf16 tiles (``models/head_tiles.py``).
        positions: also return the arg-max position of every recomputed entry.

    Returns:
        ``(best, winner)``, or None when the activations are dense (see the module docstring). ``best`` (B, V) float32
        holds the maximum plus bias of every entry that may be active, an upper bound below zero of it for the others
        (their activation is 0 either way), and -inf in rows without tokens. ``winner`` (B, V) holds the arg-max
        position (the first on ties) of the recomputed entries, 0 elsewhere, or is None unless ``positions``.
    """
    norms = hidden.norm(dim=-1).masked_fill(~mask, 0.0).amax(dim=1)  # (B,) largest ||h_l|| of each text
    text_bound = norms * error_factor(hidden.shape[-1])  # the bound is text_bound ⊗ ||W_v||, never built as (B, V)
    upper = _approximate_max(hidden, weight, mask, chunk_tokens, text_bound, weight.norm(dim=1), bias)
    if upper is None:
        return None
    winner = torch.zeros(upper.shape, dtype=position_dtype(hidden.shape[1])) if positions else None
    _recompute(hidden, weight, bias, mask, ~(upper < 0), upper, winner)  # NaN bounds compare False: recomputed
    return upper, winner


def _bounded(approx: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """float32 ``approx + rows ⊗ cols + 2^-100 + bias`` (the bound's outer product added in place, never built):
    an upper bound of the float32 maximum plus bias."""
    upper = approx.float().addr_(rows, cols).add_(2.0**-100)
    return upper.add_(bias.to(upper.dtype)) if bias is not None else upper


def _approximate_max(hidden, weight, mask, chunk_tokens, text_bound, weight_norms, bias):
    """(B, V) float32 upper bounds from the bf16 maxima, or None when more than 1/8 of a spread sample of the
    vocabulary (every 32nd column, computed first) would have to be recomputed."""
    batch, vocab = hidden.shape[0], weight.shape[0]
    chunks = position_chunks(hidden, mask, chunk_tokens)
    blocks = [_bf16_block(rows, block, padded) for _, rows, block, padded in chunks]
    sample = torch.arange(0, vocab, _SAMPLE_STRIDE)
    whole_blocks = vocab >= _PADDED_FROM  # at most 2 x 1,023 columns of padding, <= 1/8 of the vocabulary
    upper = _bounded(_bf16_max(blocks, weight.index_select(0, sample), batch, whole_blocks=whole_blocks), text_bound,
                     weight_norms.index_select(0, sample), bias.index_select(0, sample) if bias is not None else None)
    if int((~(upper < 0)).sum()) * DENSE_FRACTION > upper.numel():
        return None
    approx = torch.full((batch, vocab), float("-inf"), dtype=torch.bfloat16)
    for lo in range(0, vocab, _VOCAB_BLOCK):
        _bf16_max(blocks, weight[lo:lo + _VOCAB_BLOCK], batch, out=approx[:, lo:lo + _VOCAB_BLOCK],
                  whole_blocks=whole_blocks)
    return _bounded(approx, text_bound, weight_norms, bias)


def bucket_rows(count: int) -> int:
    """``count`` rounded up to a multiple of 64 (up to 1,023) or of 1/8 of its power of two (at most 1/8 more rows).

    oneDNN, which runs PyTorch's bf16 matmuls on the CPU, builds a primitive per shape, and the process's memory grew
    by about 0.6 MB per distinct shape on a 2-core AMD EPYC (Zen 4), also with oneDNN's primitive cache limited to 8
    entries: unrounded, the chunks' c*R rows took a new shape for almost every count R of rows with tokens, and the
    quickstart's ``fit`` peaked 0.15-0.2 GB higher than with the screen off (benchmarks/README.md). Rounded, chunks
    of up to 512 rows take at most 8 shapes.
    """
    quantum = max(64, 1 << max(0, count.bit_length() - 4))
    return -(-count // quantum) * quantum


def padded_columns(count: int) -> int:
    """``count`` vocabulary columns rounded up to a multiple of the 1,024-column block (bf16 matmul shapes)."""
    return -(-count // _VOCAB_BLOCK) * _VOCAB_BLOCK


def _bf16_block(rows, block, padded):
    """``(rows, block, count)`` of a chunk for :func:`_bf16_max`: the (c*R, H) block in bf16 with zero rows appended
    up to :func:`bucket_rows` (``count`` = c*R real ones).

    A padded row (position j of text r) is overwritten with the text's first real row in the chunk, so its logits
    repeat a real position's and cannot change the maximum: no -inf bias is needed (``addmm`` with a bias took ~40%
    longer than the plain product on a (512, 128) x (128, 1024) bf16 tile on a 2-core Xeon with AMX, and was one more
    matmul shape per row count). Every text in a chunk has a token in it (:func:`position_chunks`).
    """
    count = block.shape[0]
    out = _padded_bf16(block, bucket_rows(count))
    if padded is not None:
        real = ~padded[:, :, 0]  # (c, R)
        width = real.shape[1]
        first = real.to(torch.uint8).argmax(dim=0)  # (R,) the first real position of each text in the chunk
        source = first * width + torch.arange(width)  # its row in the block
        pad = (~real).flatten().nonzero().flatten()  # block rows at padding (row j*R + r)
        out[pad] = out[source[pad % width]]
    return rows, out, count


def _padded_bf16(rows: torch.Tensor, total: int) -> torch.Tensor:
    """``rows`` (n, k) in bf16, followed by zero rows up to ``total``: one conversion pass, no float32 copy."""
    out = rows.new_empty((total, rows.shape[1]), dtype=torch.bfloat16)
    out[:rows.shape[0]].copy_(rows)
    out[rows.shape[0]:].zero_()
    return out


def _bf16_max(blocks, weight, batch, out=None, *, whole_blocks: bool):
    """(B, n) bf16 maximum over the chunks' positions of their logits against ``weight`` (n, H), into ``out``.

    With ``whole_blocks``, ``weight`` is padded with zero rows up to a multiple of 1,024 (:func:`padded_columns`), so
    the last vocabulary block and the sample take the full blocks' matmul shapes (the screen pads from 16,384
    vocabulary entries on, where that adds at most 1/8 to its products). With that and padding without a bias
    (:func:`_bf16_block`), the quickstart's ``fit`` ran its bf16 matmuls in 7 shapes instead of 42, each of which
    oneDNN keeps compiled kernels for (about 0.75 MB each on a 2-core Xeon with AMX; see :func:`bucket_rows`).
    """
    columns = weight.shape[0]
    if out is None:
        out = torch.full((batch, columns), float("-inf"), dtype=torch.bfloat16)
    tile_weight = _padded_bf16(weight, padded_columns(columns) if whole_blocks else columns).t()  # (H, n or rounded up)
    for rows, block, count in blocks:
        width = batch if rows is None else rows.numel()
        logits = (block @ tile_weight)[:count]  # the appended rows' logits are dropped
        tile = logits.view(-1, width, tile_weight.shape[1])[:, :, :columns].amax(dim=0)  # (R, n)
        if rows is None:
            torch.maximum(out, tile, out=out)
        else:
            out[rows] = torch.maximum(out[rows], tile)
    return out


def _recompute(hidden, weight, bias, mask, candidate, best, winner) -> None:
    """Writes the float32 maximum plus bias of each ``candidate`` (B, V) entry into ``best``, its arg-max position
    into ``winner`` (unless None): one (K_b, H) x (H, L) product per text."""
    rows, cols = candidate.nonzero(as_tuple=True)  # sorted by row
    start = 0
    for row, count in enumerate(torch.bincount(rows, minlength=hidden.shape[0]).tolist()):
        if not count:
            continue
        part = cols[start:start + count]
        start += count
        scores = weight.index_select(0, part) @ hidden[row].t()  # (K_b, L)
        scores.masked_fill_(~mask[row].unsqueeze(0), float("-inf"))
        if winner is not None:
            values, arg = scores.max(dim=1)  # the first position on ties
            winner[row].index_copy_(0, part, arg.to(winner.dtype))
        else:
            values = scores.amax(dim=1)
        if bias is not None:
            values = values + bias.index_select(0, part).to(values.dtype)
        best[row].index_copy_(0, part, values)
