"""Compress the document side of a sparse index: integer impacts, uniform b-bit codes, float16 and per-document top-k
pruning, each with the size of the resulting inverted index.

Every scheme takes (N, V) document reps and returns a :class:`Quantized`: a float32 sparse CSR matrix that
:func:`~splade_lightning.retrieval.exact.exact_search` searches directly, holding the values an engine would score
with (no explicit zeros: a weight that quantises to 0 leaves the index), and its :class:`IndexSize`.

- :func:`integer_impacts`: Anserini/pyserini's impacts ``round(w * scale)`` (the ``--quantization`` of
  ``export --format anserini``). The values stay integers, as Anserini scores them: quantise the queries with the same
  scale for Anserini's scores (they are ``scale**2`` times the dequantised ones, so the ranking is the same).
- :func:`uniform_bits`: ``b``-bit codes on one collection-wide step ``max(w) / (2**b - 1)``, dequantised.
- :func:`to_float16`: IEEE half precision (values below its smallest subnormal, about 6e-8, become 0 and are dropped).
- :func:`top_k_per_doc`: each document keeps its ``k`` largest weights.

Rounding is ``torch.round``: to the nearest integer, halves to even (``round(2.5) = 2``), as Python's ``round``.
Pure torch: never imports Lightning.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.retrieval.exact import stack_sparse

__all__ = ["DOC_ID_BITS", "IndexSize", "Quantized", "impact_values", "index_size", "integer_impacts",
           "to_float16", "top_k_per_doc", "uniform_bits"]

#: bits of one posting's document id (a plain uint32, no delta or block compression)
DOC_ID_BITS = 32


@dataclass(frozen=True)
class IndexSize:
    """Size of an inverted index with fixed-width postings (no compression).

    Attributes:
        postings: stored (document, dimension) pairs, i.e. nonzero document weights.
        value_bits: bits per stored value (32 float32, 16 float16, ``b`` for b-bit codes, and for integer impacts the
            bits of the largest impact, plus a sign bit when an impact is negative).
        doc_id_bits: bits per document id.
    """

    postings: int
    value_bits: int
    doc_id_bits: int = DOC_ID_BITS

    @property
    def bytes(self) -> int:
        """``ceil(postings * (doc_id_bits + value_bits) / 8)``: values bit-packed, per-list headers ignored."""
        return math.ceil(self.postings * (self.doc_id_bits + self.value_bits) / 8)


@dataclass(frozen=True)
class Quantized:
    """A compressed document matrix and its index size.

    Attributes:
        reps: (N, V) float32 sparse CSR, int64 indices, no explicit zeros: the values that are scored.
        size: its :class:`IndexSize`.
    """

    reps: torch.Tensor
    size: IndexSize


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _csr(reps: torch.Tensor) -> torch.Tensor:
    """``reps`` (dense, COO or CSR) as a CPU float32 CSR without explicit zeros."""
    return stack_sparse([reps])


def _rebuild(csr: torch.Tensor, values: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
    """``csr`` with its values replaced by ``values`` (nnz,), keeping only the entries where ``keep`` and the new value
    is nonzero."""
    keep = values != 0 if keep is None else keep & (values != 0)
    rows = torch.repeat_interleave(torch.arange(csr.shape[0]), csr.crow_indices().diff())
    crow = torch.zeros(csr.shape[0] + 1, dtype=torch.int64)
    torch.cumsum(torch.bincount(rows[keep], minlength=csr.shape[0]), 0, out=crow[1:])
    return torch.sparse_csr_tensor(crow, csr.col_indices()[keep], values[keep].float(), tuple(csr.shape),
                                   check_invariants=False)


def index_size(reps: torch.Tensor, value_bits: int) -> IndexSize:
    """The :class:`IndexSize` of (N, V) sparse or dense ``reps`` stored with ``value_bits`` bits per value.

    Args:
        reps: (N, V) document reps; only the nonzeros count as postings.
        value_bits: bits per stored value, e.g. 32 for float32.
    """
    _positive_int(value_bits, "value_bits")
    return IndexSize(postings=int(_csr(reps).values().numel()), value_bits=int(value_bits))


def impact_values(weights: torch.Tensor, scale: float) -> torch.Tensor:
    """Anserini impacts of any tensor of weights, elementwise: ``round(w * scale)`` as int64 (the zeros stay; callers
    drop them).

    Args:
        weights: weights of any shape (e.g. (N, V) dense reps).
        scale: the integer scale (``export --quantization``), a finite number > 0.

    Returns:
        An int64 tensor of the same shape.

    Raises:
        ConfigError: if ``scale`` is not a finite number > 0.
    """
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real) or not (math.isfinite(scale) and scale > 0):
        raise ConfigError(f"scale must be a finite number > 0 (e.g. 100), got {scale!r}")
    return torch.round(weights.float() * scale).to(torch.long)


def integer_impacts(reps: torch.Tensor, scale: float) -> Quantized:
    """Anserini's integer impacts ``round(w * scale)``, zero impacts dropped; the values are the integers themselves.

    Args:
        reps: (N, V) reps (dense, COO or CSR).
        scale: the integer scale, a finite number > 0.

    Returns:
        The impacts (integer-valued float32; exact up to 2**24) and the index size with ``value_bits`` = bits of the
        largest absolute impact (at least 1), plus 1 when an impact is negative.
    """
    csr = _csr(reps)
    impacts = impact_values(csr.values(), scale)
    out = _rebuild(csr, impacts)
    values = out.values()
    largest = int(values.abs().max()) if values.numel() else 0
    bits = max(1, largest.bit_length()) + int(bool(values.numel()) and bool((values < 0).any()))
    return Quantized(out, IndexSize(int(values.numel()), bits))


def uniform_bits(reps: torch.Tensor, bits: int) -> Quantized:
    """Uniform ``bits``-bit quantisation on one collection-wide step, dequantised.

    ``step = max(w) / (2**bits - 1)`` over every weight of ``reps``; ``code = round(w / step)`` in
    ``[0, 2**bits - 1]``; the stored value is ``code * step``. Weights below ``step / 2`` get code 0 and are dropped.

    Args:
        reps: (N, V) non-negative reps (dense, COO or CSR), e.g. SPLADE's ``log(1 + relu(.))`` weights.
        bits: bits per code, 1 to 16.

    Returns:
        The dequantised values and the index size with ``value_bits = bits``.

    Raises:
        ConfigError: if ``bits`` is not an integer in 1..16.
        DataError: if a weight is negative.
    """
    if _positive_int(bits, "bits") > 16:
        raise ConfigError(f"bits must be an integer in 1..16, got {bits!r}")
    csr = _csr(reps)
    values = csr.values()
    if values.numel() and bool((values < 0).any()):
        raise DataError(f"uniform_bits expects non-negative weights, got a minimum of {float(values.min())}")
    if values.numel() == 0:
        return Quantized(csr, IndexSize(0, bits))
    step = float(values.max()) / (2 ** bits - 1)
    codes = torch.round(values.double() / step).clamp(max=2 ** bits - 1)
    out = _rebuild(csr, codes * step)
    return Quantized(out, IndexSize(int(out.values().numel()), bits))


def to_float16(reps: torch.Tensor) -> Quantized:
    """Values rounded to float16 (nearest, ties to even) and read back as float32; values that become 0 are dropped.

    Args:
        reps: (N, V) reps (dense, COO or CSR) within float16's range (``|w| < 65504``).

    Raises:
        DataError: if a weight overflows float16.
    """
    csr = _csr(reps)
    half = csr.values().half()
    if half.numel() and not bool(torch.isfinite(half).all()):
        raise DataError("to_float16: a weight exceeds float16's largest value 65504")
    out = _rebuild(csr, half.float())
    return Quantized(out, IndexSize(int(out.values().numel()), 16))


def top_k_per_doc(reps: torch.Tensor, k: int) -> Quantized:
    """Keep each document's ``k`` largest weights (float32); ties at the cut-off keep the lower dimension index.

    Args:
        reps: (N, V) reps (dense, COO or CSR).
        k: weights kept per document (documents with fewer keep all).

    Returns:
        The pruned reps and the index size with ``value_bits = 32``.

    Raises:
        ConfigError: if ``k`` is not a positive integer.
    """
    k = _positive_int(k, "k")
    csr = _csr(reps)
    values, crow = csr.values(), csr.crow_indices()
    rows = torch.repeat_interleave(torch.arange(csr.shape[0]), crow.diff())
    order = torch.argsort(values, descending=True, stable=True)  # within a tie: CSR order, i.e. ascending dimension
    order = order[torch.argsort(rows[order], stable=True)]  # grouped by row, heaviest first
    rank = torch.arange(values.numel()) - crow[rows[order]]
    keep = torch.zeros(values.numel(), dtype=torch.bool)
    keep[order[rank < k]] = True
    out = _rebuild(csr, values, keep)
    return Quantized(out, IndexSize(int(out.values().numel()), 32))
