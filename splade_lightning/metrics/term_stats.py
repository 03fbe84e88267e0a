"""Per-term statistics of sparse reps for inspection: the top expanded terms of a text and the document frequency of
every term over a corpus.

Pure torch: never imports lightning. A dimension is *active* when its weight is nonzero (as in
:mod:`splade_lightning.metrics.sparsity`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence

import torch

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.metrics.active_dims import check_reps
from splade_lightning.metrics.sparsity import _active_counts

__all__ = ["document_frequency", "example_pairs", "histogram_bins", "log10_df", "row_top_terms", "top_terms"]


def document_frequency(reps: torch.Tensor) -> torch.Tensor:
    """Document frequency of every dimension: in how many rows it is active.

    Summed over the batches of a corpus this gives df(v) = |{d : w_d(v) != 0}|, the inverted index's posting-list
    length of term v (the quantity whose square FLOPS penalises; Paria et al., arXiv:2004.05665).

    Args:
        reps: (N, V) dense, sparse COO or sparse CSR weights.

    Returns:
        (V,) int64 counts, on the device of ``reps``.
    """
    check_reps(reps)
    return _active_counts(reps.detach())[1]


def log10_df(df: torch.Tensor) -> torch.Tensor:
    """log10 of the document frequency of every term active in at least one document (the histogram values).

    A log scale because df is heavy-tailed (Zipf): a few stop-word-like terms sit in most documents while most terms
    sit in a handful; 0 means the term is active in exactly one document.

    Args:
        df: (V,) integer document frequencies (:func:`document_frequency`, summed over a corpus).

    Returns:
        (T,) float64 values, one per term with df >= 1, in dimension order.
    """
    if not isinstance(df, torch.Tensor) or df.dim() != 1:
        raise DataError(f"df must be a 1-D (V,) tensor of document frequencies, got {df!r}")
    return torch.log10(df[df > 0].double())


def top_terms(reps: torch.Tensor, k: int) -> list[list[tuple[int, float]]]:
    """The ``k`` heaviest active dimensions of every row, by decreasing weight (ties: lower dimension first), as
    :meth:`splade_lightning.SparseModel.decode` orders them.

    Args:
        reps: (N, V) dense or sparse weights.
        k: number of dimensions kept per row (fewer when a row has fewer active dims).

    Returns:
        N lists of ``(dimension, weight)``.

    Raises:
        ConfigError: if ``k`` is not a positive integer.
    """
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ConfigError(f"top_terms: k={k!r}: expected a positive integer")
    check_reps(reps)
    dense = reps.detach().to_dense() if reps.layout != torch.strided else reps.detach()
    return [list(zip(*row_top_terms(row, k))) for row in dense.float().cpu()]


def row_top_terms(row: torch.Tensor, k: int | None) -> tuple[list[int], list[float]]:
    """``(dims, weights)`` of the ``k`` heaviest nonzero entries of one (V,) vector (dense or sparse), by decreasing
    weight, ties broken by ascending dimension (``k=None``: every nonzero entry)."""
    row = row.to_dense() if row.layout != torch.strided else row
    active = row.nonzero().flatten()
    weights = row[active]
    order = torch.argsort(weights, descending=True, stable=True)[:k]
    return active[order].tolist(), weights[order].tolist()


def example_pairs(query_ids: Sequence[str], qrels: Mapping[str, Mapping[str, int]], doc_ids: set[str] | Mapping,
                  n: int, min_relevance: int = 1) -> list[tuple[str, str | None]]:
    """Deterministic examples to inspect: the first ``n`` queries, each with its most relevant judged document.

    Args:
        query_ids: the evaluation set's query ids, in file order.
        qrels: query id -> {doc id: grade}.
        doc_ids: the ids in the corpus (a set or the corpus mapping).
        n: number of queries.
        min_relevance: a document is relevant when its grade is at least this.

    Returns:
        ``[(query_id, doc_id | None)]``: the highest-graded relevant document present in the corpus (ties: first in
        qrels order), ``None`` when the query has none.
    """
    pairs: list[tuple[str, str | None]] = []
    for query_id in list(query_ids)[:n]:
        judged = [(grade, -rank, doc) for rank, (doc, grade) in enumerate(qrels.get(query_id, {}).items())
                  if grade >= min_relevance and doc in doc_ids]
        pairs.append((query_id, max(judged)[2] if judged else None))
    return pairs


def histogram_bins(values: torch.Tensor, bins: int) -> tuple[list[int], list[float]]:
    """``(counts, edges)`` of ``bins`` equal-width bins over [min, max] of ``values`` (edges: ``bins + 1`` floats), for
    writers that store a histogram as numbers (the CSV logger's JSON file)."""
    if values.numel() == 0:
        return [], []
    low, high = float(values.min()), float(values.max())
    if math.isclose(low, high):
        low, high = low - 0.5, high + 0.5
    counts, edges = torch.histogram(values.double().cpu(), bins=bins, range=(low, high))
    return [int(c) for c in counts], [float(e) for e in edges]
