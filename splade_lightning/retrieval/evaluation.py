"""End-to-end retrieval evaluation: exact search, TREC run, IR metrics and sparsity statistics."""

from __future__ import annotations

import numbers
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.formats.beir import EvalData
from splade_lightning.metrics.ir import parse_measure, retrieval_metrics
from splade_lightning.metrics.sparsity import SparsityStats, flops
from splade_lightning.retrieval.exact import exact_search, to_run

__all__ = ["SPARSITY_KEYS", "RetrievalResult", "evaluate_dataset", "evaluate_retrieval", "mean_over_datasets"]

#: sparsity statistics reported next to the IR measures
SPARSITY_KEYS = ("active_dims_query", "active_dims_doc", "flops")


@dataclass
class RetrievalResult:
    """What :func:`evaluate_retrieval` returns.

    Attributes:
        metrics: the requested IR measures (e.g. ``"ndcg@10"``) plus ``"active_dims_query"``, ``"active_dims_doc"``
            (mean active dims per vector), ``"flops"`` (``sum_v p_query(v) * p_doc(v)``) and ``"zero_fraction_doc"``
            (share of documents with no active dim).
        run: ``{query_id: {doc_id: score}}`` with the top-k documents of every query.
    """

    metrics: dict[str, float] = field(default_factory=dict)
    run: dict[str, dict[str, float]] = field(default_factory=dict)


def _sparsity(reps: torch.Tensor) -> dict[str, float | torch.Tensor]:
    """The statistics of these reps alone: no sync across processes (under DDP every process evaluates complete reps,
    and NCCL could not gather CPU states), on the reps' device."""
    stats = SparsityStats(vocab_size=int(reps.shape[1]), sync_on_compute=False).to(reps.device)
    stats.update(reps)
    return stats.compute()


def _check_inputs(query_ids: Sequence[str], query_reps: torch.Tensor, doc_ids: Sequence[str], doc_reps: torch.Tensor,
                  k: int, measures: Sequence[str], min_relevance: int) -> None:
    for name, ids, reps in (("query", query_ids, query_reps), ("doc", doc_ids, doc_reps)):
        if not isinstance(reps, torch.Tensor) or reps.dim() != 2 or reps.shape[0] == 0:
            raise DataError(f"{name}_reps must be a non-empty 2-D (rows, V) tensor, got {reps!r:.80}")
        if isinstance(ids, str) or len(ids) != reps.shape[0]:
            raise DataError(f"{name}_ids must list one id per row of {name}_reps ({reps.shape[0]} rows), "
                            f"got {len(ids) if not isinstance(ids, str) else ids!r}")
    for name, value in (("k", k), ("min_relevance", min_relevance)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    if isinstance(measures, str):
        raise ConfigError(f"measures must be a sequence of names like ('ndcg@10', 'mrr@10'), got {measures!r}")
    cutoffs = [(spec.cutoff, spec.name) for spec in map(parse_measure, measures) if spec.cutoff is not None]
    if cutoffs and max(cutoffs)[0] > k:
        raise ConfigError(f"k={k} is smaller than the cut-off of measure {max(cutoffs)[1]!r}; expected "
                          f"k >= {max(cutoffs)[0]} so that the run is deep enough")


def evaluate_retrieval(query_ids: Sequence[str], query_reps: torch.Tensor, doc_ids: Sequence[str],
                       doc_reps: torch.Tensor, qrels: Mapping[str, Mapping[str, int]], min_relevance: int = 1,
                       k: int = 1000, measures: Sequence[str] = ("ndcg@10", "mrr@10", "recall@100"),
                       doc_chunk_size: int = 65536) -> RetrievalResult:
    """Retrieve the top-k documents of every query exactly, then score the run and the reps' sparsity.

    Args:
        query_ids: the Q query ids, in row order of ``query_reps``.
        query_reps: (Q, V) query reps, dense or sparse (COO/CSR), any device.
        doc_ids: the N document ids, in row order of ``doc_reps``.
        doc_reps: (N, V) document reps, dense or sparse (e.g. from
            :func:`~splade_lightning.retrieval.exact.stack_sparse`).
        qrels: ``{query_id: {doc_id: grade}}``; metrics average over the qrels queries with a relevant document.
        min_relevance: lowest grade that counts as relevant for mrr/recall/p/map (2 for TREC DL); nDCG uses grades.
        k: documents retrieved per query; must be at least the largest cut-off in ``measures``.
        measures: IR measure names (see :data:`~splade_lightning.metrics.ir.SUPPORTED_MEASURES`).
        doc_chunk_size: documents scored at once by :func:`~splade_lightning.retrieval.exact.exact_search`.

    Returns:
        A :class:`RetrievalResult` with the metrics and the run.

    Raises:
        ConfigError: on a bad ``k``, ``min_relevance`` or measure name, or ``k`` below a measure's cut-off.
        DataError: on ids that do not match the reps, or malformed reps or qrels.
    """
    _check_inputs(query_ids, query_reps, doc_ids, doc_reps, k, measures, min_relevance)
    scores, indices = exact_search(query_reps, doc_reps, k, doc_chunk_size)
    run = to_run(query_ids, doc_ids, scores, indices)
    metrics = retrieval_metrics(run, qrels, min_relevance, measures)
    query_stats, doc_stats = _sparsity(query_reps), _sparsity(doc_reps)
    metrics["active_dims_query"] = float(query_stats["active_dims"])
    metrics["active_dims_doc"] = float(doc_stats["active_dims"])
    metrics["flops"] = flops(query_stats["dim_frequency"], doc_stats["dim_frequency"])
    metrics["zero_fraction_doc"] = float(doc_stats["zero_fraction"])
    return RetrievalResult(metrics=metrics, run=run)


def evaluate_dataset(model, data: EvalData, k: int, measures: Sequence[str], batch_size: int,
                     progress: bool) -> tuple[RetrievalResult, dict[str, float]]:
    """Encode one dataset's queries and corpus with ``model``, retrieve the top-k exactly and score the run.

    Args:
        model: a :class:`~splade_lightning.api.SparseModel`.
        data: the loaded BEIR set (its ``qrels`` and ``min_relevance`` are used).
        k: documents retrieved per query.
        measures: IR measure names.
        batch_size: texts per encoder call.
        progress: show progress bars.

    Returns:
        The :class:`RetrievalResult` and the timings in seconds (``encode_queries``, ``encode_docs``, ``search``).
    """
    query_ids, doc_ids = list(data.queries), list(data.corpus)
    start = time.perf_counter()
    query_reps = model.encode_query([data.queries[q] for q in query_ids], batch_size, progress)
    encoded_queries = time.perf_counter()
    doc_reps = model.encode_document([data.corpus[d] for d in doc_ids], batch_size, progress)
    encoded_docs = time.perf_counter()
    result = evaluate_retrieval(query_ids, query_reps, doc_ids, doc_reps, data.qrels, data.min_relevance, k, measures)
    timings = {"encode_queries": encoded_queries - start, "encode_docs": encoded_docs - encoded_queries,
               "search": time.perf_counter() - encoded_docs}
    return result, timings


def mean_over_datasets(results: Mapping[str, Mapping[str, float]],
                       keys: Sequence[str] | None = None) -> dict[str, float]:
    """Unweighted mean of each metric over the datasets (every dataset counts once, whatever its size, as BEIR and
    NanoBEIR report it).

    Args:
        results: ``{dataset: {metric: value}}``.
        keys: the metrics to average (default: those every dataset has).
    """
    if keys is None:
        keys = sorted(set.intersection(*(set(m) for m in results.values()))) if results else []
    return {key: float(sum(m[key] for m in results.values()) / len(results)) for key in keys}
