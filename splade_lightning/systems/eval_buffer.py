"""Collect encoded evaluation texts, with the evaluation set each batch belongs to, during a validation/test epoch
and score retrieval at its end."""

from __future__ import annotations

import re
import warnings
from collections import defaultdict
from collections.abc import Sequence

import torch

from splade_lightning.errors import ConfigError
from splade_lightning.formats.beir import EvalData
from splade_lightning.formats.sts import StsData
from splade_lightning.metrics.ir import per_query_metrics
from splade_lightning.metrics.sts import score_encoded_sts
from splade_lightning.retrieval.evaluation import evaluate_retrieval, mean_over_datasets
from splade_lightning.retrieval.exact import stack_sparse
from splade_lightning.types import EncodeBatch


def eval_set_of(batch: EncodeBatch, reader: str) -> EvalData:
    """The evaluation set an evaluation batch belongs to (``batch.eval_set``, set by the data module's collator).

    Args:
        batch: a validation/test batch.
        reader: who needs the set (a module or callback class name), for the message.

    Raises:
        ConfigError: the batch carries no evaluation set.
    """
    eval_set = batch.eval_set
    if eval_set is None:
        raise ConfigError(f"{reader}: the evaluation batch ({type(batch).__name__}, kind={batch.kind!r}) has "
                          "eval_set=None; expected the data module to set EncodeBatch.eval_set (the EvalData with "
                          "the set's name, queries, corpus and qrels) on every validation/test batch")
    return eval_set


class EvalBuffer:
    """Per-dataloader store of (ids, sparse CPU reps) for queries and documents, and of each dataloader's
    evaluation set (from its batches).

    Each encoded batch is moved to the CPU as a sparse CSR tensor right away, so a 100k-document corpus never has to be
    held as a dense (N, 30522) matrix.
    """

    def __init__(self) -> None:
        self._ids: dict[tuple[int, str], list[str]] = defaultdict(list)
        self._reps: dict[tuple[int, str], list[torch.Tensor]] = defaultdict(list)
        self._sets: dict[int, EvalData] = {}

    def add(self, dataloader_idx: int, kind: str, ids: Sequence[str], reps: torch.Tensor, eval_set: EvalData) -> None:
        """Store one batch: ``reps`` is (B, V), ``ids`` its B ids, ``eval_set`` the set they belong to (one set per
        dataloader: a batch of another set is a :class:`ConfigError`)."""
        known = self._sets.setdefault(dataloader_idx, eval_set)
        if known is not eval_set and known.name != eval_set.name:
            raise ConfigError(f"evaluation dataloader {dataloader_idx} mixes the sets {known.name!r} and "
                              f"{eval_set.name!r}; expected one evaluation set per dataloader")
        self._ids[(dataloader_idx, kind)].extend(ids)
        self._reps[(dataloader_idx, kind)].append(stack_sparse([reps.detach().float()]))  # sparsified on-device

    def dataloaders(self) -> list[int]:
        return sorted({idx for idx, _ in self._ids})

    def eval_set(self, dataloader_idx: int) -> EvalData:
        """The evaluation set of dataloader ``dataloader_idx`` (from its first stored batch)."""
        return self._sets[dataloader_idx]

    def get(self, dataloader_idx: int, kind: str) -> tuple[list[str], torch.Tensor | None]:
        reps = self._reps.get((dataloader_idx, kind))
        return self._ids.get((dataloader_idx, kind), []), (stack_sparse(reps) if reps else None)

    def clear(self) -> None:
        self._ids.clear()
        self._reps.clear()
        self._sets.clear()


def suite_means(buffer: EvalBuffer, results: dict[str, dict]) -> dict[str, dict[str, float]]:
    """The unweighted mean of every metric over the sets of each suite (:attr:`EvalData.suite`) in ``buffer``.

    Args:
        buffer: the filled buffer (before it is cleared).
        results: ``{set name: metrics}`` from :func:`score_buffer`.

    Returns:
        ``{suite: {metric: mean}}``; a suite with a set that was not scored (a limited evaluation loop) is left out,
        as a mean over part of a suite would not be comparable.
    """
    members: dict[str, list[str]] = defaultdict(list)
    for idx in buffer.dataloaders():
        data = buffer.eval_set(idx)
        if data.suite is not None:
            members[data.suite].append(data.name)
    return {suite: mean_over_datasets({name: results[name] for name in names})
            for suite, names in members.items() if all(name in results for name in names)}


def score_buffer(buffer: EvalBuffer, k: int, measures: Sequence[str],
                 per_query: dict[str, dict[str, dict[str, float]]] | None = None) -> dict[str, dict]:
    """Run exact retrieval + metrics for every dataloader in ``buffer``, against the qrels of its evaluation set.

    Args:
        buffer: the filled buffer.
        k: retrieval depth.
        measures: metric names, e.g. ``("ndcg@10", "mrr@10", "recall@100")``.
        per_query: when given, filled with ``{dataset_name: {measure: {query_id: value}}}`` (trec_eval semantics,
            :func:`~splade_lightning.metrics.ir.per_query_metrics`), what paired significance tests need.

    Returns:
        ``{dataset_name: metrics}`` where metrics also holds the sparsity figures; an STS set
        (:class:`~splade_lightning.formats.sts.StsData`) gets ``spearman``, ``pearson``, ``active_dims`` and
        ``sparsity_ratio`` (:func:`~splade_lightning.metrics.sts.sts_metrics`) instead.
    """
    results = {}
    for idx in buffer.dataloaders():
        data = buffer.eval_set(idx)
        if isinstance(data, StsData):
            if (scored := _score_sts(buffer, idx, data)) is not None:
                results[data.name] = scored
            continue
        query_ids, query_reps = buffer.get(idx, "query")
        doc_ids, doc_reps = buffer.get(idx, "doc")
        if len(set(query_ids)) != len(data.queries) or len(set(doc_ids)) != len(data.corpus):
            warnings.warn(f"evaluation set {data.name!r} skipped: only {len(set(query_ids))}/{len(data.queries)} "
                          f"queries and {len(set(doc_ids))}/{len(data.corpus)} documents were encoded (the evaluation "
                          "loop was limited, e.g. by fast_dev_run or limit_val_batches); metrics on a partial corpus "
                          "would be misleading", stacklevel=2)
            continue
        result = evaluate_retrieval(query_ids, query_reps, doc_ids, doc_reps, data.qrels,
                                    min_relevance=data.min_relevance, k=k, measures=tuple(measures))
        results[data.name] = result.metrics
        if per_query is not None:
            per_query[data.name] = per_query_metrics(result.run, data.qrels, data.min_relevance, tuple(measures))
    return results


def _score_sts(buffer: EvalBuffer, idx: int, data: StsData) -> dict[str, float] | None:
    """The STS metrics of dataloader ``idx``; ``None`` (with a warning) when some sentence was not encoded."""
    ids, reps = buffer.get(idx, "doc")
    scored = None if reps is None else score_encoded_sts(data, ids, reps)
    if scored is None:
        warnings.warn(f"evaluation set {data.name!r} skipped: only {len(set(ids))}/{2 * len(data.scores)} sentences "
                      "were encoded (the evaluation loop was limited, e.g. by fast_dev_run or limit_val_batches)",
                      stacklevel=3)
    return scored


def mean_by_kind(results: dict[str, dict[str, float]]) -> dict[str, float]:
    """The mean over the retrieval sets (``ndcg@10`` ...) and, apart, over the STS sets (``spearman`` ...) of
    ``results`` (``{set name: metrics}``): each set counts once; a kind with one set gives that set's metrics. The
    two kinds have different metrics, so one mean over all sets (the metrics every set has) would have none."""
    groups: dict[bool, dict[str, dict[str, float]]] = {}
    for name, metrics in results.items():
        groups.setdefault("spearman" in metrics, {})[name] = metrics
    mean: dict[str, float] = {}
    for group in groups.values():
        mean.update(mean_over_datasets(group) if len(group) > 1 else dict(next(iter(group.values()))))
    return mean


def quiet_sync_dist_warnings(keys: Sequence[str]) -> None:
    """Silence Lightning's "use ``sync_dist=True``" warning for these logged keys (one per key per evaluation under
    DDP): every process scores the complete representations, so the values are already equal on all of them."""
    for key in keys:
        warnings.filterwarnings("ignore", message=re.escape(f"It is recommended to use `self.log({key!r}, ..."))
