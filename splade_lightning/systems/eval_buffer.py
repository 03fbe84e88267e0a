"""Collect encoded evaluation texts, with the evaluation set each batch belongs to, during a validation/test epoch
and score retrieval at its end."""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Sequence

import torch

from splade_lightning.errors import ConfigError
from splade_lightning.formats.beir import EvalData
from splade_lightning.metrics.ir import per_query_metrics
from splade_lightning.retrieval.evaluation import evaluate_retrieval
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
        ``{dataset_name: metrics}`` where metrics also holds the sparsity figures.
    """
    results = {}
    for idx in buffer.dataloaders():
        data = buffer.eval_set(idx)
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
