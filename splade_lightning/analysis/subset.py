"""A small, deterministic slice of an evaluation set, so that an analysis runs in seconds on a CPU."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from splade_lightning.errors import ConfigError

__all__ = ["EvalSubset", "subsample"]


@dataclass
class EvalSubset:
    """The kept part of an evaluation set.

    Attributes:
        queries: query id -> text (queries that keep at least one positively graded document).
        corpus: document id -> text.
        qrels: ``{query_id: {doc_id: grade}}`` restricted to the kept queries and documents.
    """

    queries: dict[str, str]
    corpus: dict[str, str]
    qrels: dict[str, dict[str, int]]


def _check_limit(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{name} must be a positive integer or None, got {value!r}")


def subsample(queries: Mapping[str, str], corpus: Mapping[str, str], qrels: Mapping[str, Mapping[str, int]],
              max_queries: int | None = None, max_docs: int | None = None) -> EvalSubset:
    """Keep the first ``max_queries`` judged queries and at most ``max_docs`` documents.

    Documents are taken first from the kept queries' judgments (highest grade first, then corpus order), then from
    the rest of the corpus in order (distractors). The qrels are cut to the kept documents, and queries left without
    a positively graded document are dropped, so metrics on the subset are well defined (and higher than on the full
    corpus: compare models on the same subset only).

    Args:
        queries: query id -> text.
        corpus: document id -> text.
        qrels: ``{query_id: {doc_id: grade}}``.
        max_queries: queries kept (None: all judged queries).
        max_docs: documents kept (None: the whole corpus).

    Returns:
        An :class:`EvalSubset`; deterministic for given inputs.

    Raises:
        ConfigError: on a bad limit, or when no query keeps a positively graded document.
    """
    _check_limit("max_queries", max_queries)
    _check_limit("max_docs", max_docs)
    judged = [q for q in queries if qrels.get(q)][:max_queries]
    position = {d: i for i, d in enumerate(corpus)}
    wanted = sorted({(-g, position[d], d) for q in judged for d, g in qrels[q].items() if d in position})
    doc_ids = list(dict.fromkeys([d for _, _, d in wanted] + list(corpus)))[:max_docs]
    kept_docs = set(doc_ids)
    sub_qrels = {q: {d: g for d, g in qrels[q].items() if d in kept_docs} for q in judged}
    sub_qrels = {q: r for q, r in sub_qrels.items() if any(g > 0 for g in r.values())}
    if not sub_qrels:
        raise ConfigError(f"subsample: no query keeps a relevant document with max_queries={max_queries}, "
                          f"max_docs={max_docs}; expected larger limits")
    return EvalSubset({q: queries[q] for q in sub_qrels}, {d: corpus[d] for d in doc_ids}, sub_qrels)
