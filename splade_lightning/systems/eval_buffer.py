"""Collect encoded evaluation texts during a validation/test epoch and score retrieval at its end."""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence

import torch

from splade_lightning.formats.beir import EvalData
from splade_lightning.retrieval.evaluation import evaluate_retrieval
from splade_lightning.retrieval.exact import stack_sparse


class EvalBuffer:
    """Per-dataloader store of (ids, sparse CPU reps) for queries and documents.

    Each encoded batch is moved to the CPU as a sparse CSR tensor right away, so a 100k-document corpus never has to be
    held as a dense (N, 30522) matrix.
    """

    def __init__(self) -> None:
        self._ids: dict[tuple[int, str], list[str]] = defaultdict(list)
        self._reps: dict[tuple[int, str], list[torch.Tensor]] = defaultdict(list)

    def add(self, dataloader_idx: int, kind: str, ids: Sequence[str], reps: torch.Tensor) -> None:
        """Store one batch: ``reps`` is (B, V), ``ids`` its B ids."""
        self._ids[(dataloader_idx, kind)].extend(ids)
        self._reps[(dataloader_idx, kind)].append(stack_sparse([reps.detach().float()]))  # sparsified on-device

    def dataloaders(self) -> list[int]:
        return sorted({idx for idx, _ in self._ids})

    def get(self, dataloader_idx: int, kind: str) -> tuple[list[str], torch.Tensor | None]:
        reps = self._reps.get((dataloader_idx, kind))
        return self._ids.get((dataloader_idx, kind), []), (stack_sparse(reps) if reps else None)

    def clear(self) -> None:
        self._ids.clear()
        self._reps.clear()


def score_buffer(buffer: EvalBuffer, eval_data_for: Callable[[int], EvalData], k: int,
                 measures: Sequence[str]) -> dict[str, dict]:
    """Run exact retrieval + metrics for every dataloader in ``buffer``.

    Args:
        buffer: the filled buffer.
        eval_data_for: ``dataloader_idx -> EvalData`` (name, qrels, min_relevance).
        k: retrieval depth.
        measures: metric names, e.g. ``("ndcg@10", "mrr@10", "recall@100")``.

    Returns:
        ``{dataset_name: metrics}`` where metrics also holds the sparsity figures.
    """
    results = {}
    for idx in buffer.dataloaders():
        data = eval_data_for(idx)
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
    return results
