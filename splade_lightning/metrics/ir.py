"""IR metrics with trec_eval semantics, computed by ``ir_measures``' pytrec_eval provider.

Names (lower case) and what they compute, with ``r = min_relevance``:

- ``ndcg@k``: graded nDCG@k exactly as trec_eval's ``ndcg_cut.k``: gain = the qrels grade (grades <= 0 give 0),
  discount ``log2(rank + 1)``, ideal ranking from all judged documents. ``min_relevance`` does not apply.
- ``mrr@k``: reciprocal rank of the first document with grade >= r among the top k (``RR(rel=r)@k``); computed as
  trec_eval's ``recip_rank`` on the run cut to its first k documents in trec_eval's order (= ``trec_eval -M k``).
- ``recall@k``: ``R(rel=r)@k`` = relevant documents in the top k / all documents with grade >= r.
- ``p@k``: ``P(rel=r)@k`` = relevant documents in the top k / k.
- ``map``, ``map@k``: ``AP(rel=r)`` (``@k``), trec_eval's ``map`` / ``map_cut.k``: the sum of precision at each
  relevant rank within the cut-off, divided by the number of relevant documents (not by ``min(k, #relevant)``).

Conventions (verified against pytrec_eval 0.5 in ``tests/unit/eval``):

- trec_eval ignores ranks: it orders each query's documents by score descending and breaks ties by document id in
  *descending* ``strcmp`` order (``"b"`` before ``"a"``, ``"9"`` before ``"10"``).
- Queries in the run but not in the qrels are ignored. pytrec_eval silently skips qrels queries that are missing from
  the run; here such queries (and queries with an empty ranking) score 0.
- trec_eval itself averages over every qrels query, including those without relevant documents (they score 0). Here
  the mean is over the qrels queries that have at least one relevant document for the measure: grade > 0 for
  ``ndcg`` (otherwise the ideal DCG is 0) and grade >= r for the other measures, as BEIR and sentence-transformers do.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import ir_measures

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.formats.trec import trec_order

__all__ = ["SUPPORTED_MEASURES", "MeasureSpec", "parse_measure", "per_query_metrics", "retrieval_metrics"]

SUPPORTED_MEASURES = ("ndcg@k", "mrr@k", "recall@k", "p@k", "map", "map@k")
_PATTERN = re.compile(r"^(ndcg|mrr|recall|p|map)(?:@([1-9][0-9]*))?$")

Qrels = Mapping[str, Mapping[str, int]]
Run = Mapping[str, Mapping[str, float]]


@dataclass(frozen=True)
class MeasureSpec:
    """A parsed measure name.

    Attributes:
        name: the name as given, e.g. ``"ndcg@10"``.
        family: ``"ndcg"``, ``"mrr"``, ``"recall"``, ``"p"`` or ``"map"``.
        cutoff: the rank cut-off k, or None for ``map``.
    """

    name: str
    family: str
    cutoff: int | None


def parse_measure(name: str) -> MeasureSpec:
    """Parse one measure name such as ``"ndcg@10"``, ``"mrr@10"``, ``"recall@100"``, ``"p@5"``, ``"map"``.

    Args:
        name: lower-case measure name, one of the patterns in :data:`SUPPORTED_MEASURES` (k a positive integer).

    Returns:
        The parsed :class:`MeasureSpec`.

    Raises:
        ConfigError: if the name matches no supported pattern.
    """
    match = _PATTERN.match(name) if isinstance(name, str) else None
    if match is None or (match.group(1) != "map" and match.group(2) is None):
        raise ConfigError(f"unknown measure {name!r}; supported: {', '.join(SUPPORTED_MEASURES)} "
                          "with k a positive integer, e.g. 'ndcg@10', 'mrr@10', 'recall@100'")
    cutoff = match.group(2)
    return MeasureSpec(name, match.group(1), int(cutoff) if cutoff else None)


def _ir_measure(spec: MeasureSpec, min_relevance: int) -> ir_measures.Measure:
    """The ir_measures measure for a spec (``mrr`` uses ``RR(rel=r)`` without cut-off on a truncated run)."""
    if spec.family == "ndcg":
        return ir_measures.nDCG @ spec.cutoff
    if spec.family == "mrr":
        return ir_measures.RR(rel=min_relevance)
    family = {"recall": ir_measures.R, "p": ir_measures.P, "map": ir_measures.AP}[spec.family](rel=min_relevance)
    return family if spec.cutoff is None else family @ spec.cutoff


def _clean_qrels(qrels: Qrels) -> dict[str, dict[str, int]]:
    if not isinstance(qrels, Mapping) or not qrels:
        raise DataError("qrels must be a non-empty {query_id: {doc_id: grade}} mapping, "
                        f"got {type(qrels).__name__} {qrels!r:.60}")
    clean: dict[str, dict[str, int]] = {}
    for query_id, judged in qrels.items():
        if not isinstance(judged, Mapping):
            raise DataError(f"qrels[{query_id!r}] must map doc ids to integer grades, got {type(judged).__name__}")
        clean[str(query_id)] = {}
        for doc_id, grade in judged.items():
            if isinstance(grade, bool) or not isinstance(grade, numbers.Real) or int(grade) != grade:
                raise DataError(f"qrels[{query_id!r}][{doc_id!r}] must be an integer grade, got {grade!r}")
            clean[str(query_id)][str(doc_id)] = int(grade)
    return clean


def _finite_number(value: object) -> bool:
    try:
        return math.isfinite(float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


def _clean_run(run: Run) -> dict[str, dict[str, float]]:
    """Copy the run with float scores, dropping empty rankings (they score 0 like missing queries)."""
    if not isinstance(run, Mapping):
        raise DataError(f"run must be a {{query_id: {{doc_id: score}}}} mapping, got {type(run).__name__}")
    clean: dict[str, dict[str, float]] = {}
    for query_id, ranking in run.items():
        if not isinstance(ranking, Mapping):
            raise DataError(f"run[{query_id!r}] must map doc ids to scores, got {type(ranking).__name__}")
        try:
            scores = {str(d): float(score) for d, score in ranking.items()}
        except (TypeError, ValueError):
            scores = {"": math.nan}
        if not all(map(math.isfinite, scores.values())):
            bad = next(d for d, score in ranking.items() if not _finite_number(score))
            raise DataError(f"run[{query_id!r}][{bad!r}] must be a finite number, got {ranking[bad]!r}")
        if scores:
            clean[str(query_id)] = scores
    return clean


def _truncate(run: dict[str, dict[str, float]], k: int) -> dict[str, dict[str, float]]:
    """Keep each query's first k documents in trec_eval's order (what ``trec_eval -M k`` evaluates)."""
    return {q: dict(trec_order(ranking)[:k]) for q, ranking in run.items()}


def _eligible(spec: MeasureSpec, qrels: dict[str, dict[str, int]], min_relevance: int) -> list[str]:
    threshold = 1 if spec.family == "ndcg" else min_relevance
    return [q for q, judged in qrels.items() if any(g >= threshold for g in judged.values())]


def _pytrec_values(measures: Iterable[ir_measures.Measure], qrels: dict[str, dict[str, int]],
                   run: dict[str, dict[str, float]]) -> dict[ir_measures.Measure, dict[str, float]]:
    """``{measure: {query_id: value}}`` from the pytrec_eval provider (trec_eval semantics)."""
    measures = list(measures)
    values: dict[ir_measures.Measure, dict[str, float]] = {m: {} for m in measures}
    for metric in ir_measures.pytrec_eval.evaluator(measures, qrels).iter_calc(run):
        values[metric.measure][metric.query_id] = float(metric.value)
    return values


def _spec_values(specs: list[MeasureSpec], qrels: dict[str, dict[str, int]], run: dict[str, dict[str, float]],
                 min_relevance: int) -> dict[MeasureSpec, dict[str, float]]:
    """Per-query values of every spec; ``mrr@k`` runs ``RR(rel=r)`` on the run truncated at k."""
    plain = {spec: _ir_measure(spec, min_relevance) for spec in specs if spec.family != "mrr"}
    raw = _pytrec_values(plain.values(), qrels, run) if plain else {}
    out = {spec: raw[measure] for spec, measure in plain.items()}
    for spec in specs:
        if spec.family == "mrr":
            measure = _ir_measure(spec, min_relevance)
            out[spec] = _pytrec_values([measure], qrels, _truncate(run, spec.cutoff))[measure]
    return out


def _validate(measures: Sequence[str], min_relevance: int) -> list[MeasureSpec]:
    if isinstance(min_relevance, bool) or not isinstance(min_relevance, int) or min_relevance < 1:
        raise ConfigError(f"min_relevance must be an integer >= 1 (the lowest grade that counts as relevant), "
                          f"got {min_relevance!r}")
    if isinstance(measures, str) or not measures:
        raise ConfigError("measures must be a non-empty sequence of names like ('ndcg@10', 'mrr@10'), "
                          f"got {measures!r}")
    return [parse_measure(name) for name in dict.fromkeys(measures)]


def per_query_metrics(run: Run, qrels: Qrels, min_relevance: int = 1,
                      measures: Sequence[str] = ("ndcg@10", "mrr@10", "recall@100")) -> dict[str, dict[str, float]]:
    """Per-query IR metrics with trec_eval semantics (see the module docstring for definitions).

    Args:
        run: ``{query_id: {doc_id: score}}``; document order and ranks are ignored (trec_eval re-sorts by score).
        qrels: ``{query_id: {doc_id: grade}}`` with integer grades.
        min_relevance: lowest grade that counts as relevant for the binary measures (mrr, recall, p, map); use 2 for
            TREC DL. nDCG always uses the grades as gains.
        measures: measure names, see :data:`SUPPORTED_MEASURES`.

    Returns:
        ``{measure_name: {query_id: value}}`` over the qrels queries with at least one relevant document for that
        measure (in qrels order); queries missing from the run score 0.

    Raises:
        ConfigError: on an unknown measure name or a bad ``min_relevance``.
        DataError: on malformed qrels or run.
    """
    specs = _validate(measures, min_relevance)
    clean_qrels = _clean_qrels(qrels)
    values = _spec_values(specs, clean_qrels, _clean_run(run), min_relevance)
    return {spec.name: {q: values[spec].get(q, 0.0) for q in _eligible(spec, clean_qrels, min_relevance)}
            for spec in specs}


def retrieval_metrics(run: Run, qrels: Qrels, min_relevance: int = 1,
                      measures: Sequence[str] = ("ndcg@10", "mrr@10", "recall@100")) -> dict[str, float]:
    """Mean IR metrics with trec_eval semantics over the qrels queries (see :func:`per_query_metrics`).

    Args:
        run: ``{query_id: {doc_id: score}}``.
        qrels: ``{query_id: {doc_id: grade}}`` with integer grades.
        min_relevance: lowest grade that counts as relevant for mrr, recall, p and map (2 for TREC DL).
        measures: measure names, see :data:`SUPPORTED_MEASURES`.

    Returns:
        ``{measure_name: mean over the eligible qrels queries}``.

    Raises:
        ConfigError: on an unknown measure name or a bad ``min_relevance``.
        DataError: on malformed inputs, or if no qrels query has a relevant document for some measure.
    """
    per_query = per_query_metrics(run, qrels, min_relevance, measures)
    means = {}
    for name, values in per_query.items():
        if not values:
            raise DataError(f"no qrels query has a relevant document for {name!r} (min_relevance={min_relevance}); "
                            "expected at least one judged document at or above the threshold")
        means[name] = sum(values.values()) / len(values)
    return means
