"""A best-of-both selection score: in-domain quality, subject to a floor on the out-of-domain change against
zero-shot (pure Python; the Lightning side is :class:`~splade_lightning.callbacks.SelectionCriterion`).

Fine-tuning on one domain can cost quality on others (Wortsman et al., "Robust fine-tuning of zero-shot models",
CVPR 2022, arXiv:2109.01903). Choosing a checkpoint by the in-domain metric alone ignores that; this score ranks
every candidate that keeps the out-of-domain mean within ``max_drop`` of zero-shot above every candidate that does
not, and among the former by the in-domain metric.
"""

from __future__ import annotations

from dataclasses import dataclass

#: ``{dataset name or "mean": {measure: value}}``, as computed by an evaluation
Metrics = dict[str, dict[str, float]]


@dataclass(frozen=True)
class SelectionScore:
    """One evaluation's selection figures.

    Attributes:
        score: the value to maximise. Feasible candidates score their in-domain mean (in [0, 1] for the usual
            measures); infeasible ones score ``-1 - (violation)``, below every feasible one, so that among them the
            smallest violation wins.
        in_domain: mean of the measure over the in-domain sets.
        in_domain_change: ``in_domain`` minus its zero-shot value.
        out_of_domain_change: mean over the out-of-domain sets of (value - zero-shot value).
        feasible: ``out_of_domain_change >= -max_drop`` (inclusive, up to 1e-12 of rounding).
    """

    score: float
    in_domain: float
    in_domain_change: float
    out_of_domain_change: float
    feasible: bool


def missing_sets(metrics: Metrics, names: list[str], measure: str) -> list[str]:
    """The entries of ``names`` for which ``metrics`` (``{set: {measure: value}}``) has no ``measure``."""
    return [name for name in names if measure not in metrics.get(name, {})]


def _mean(metrics: Metrics, names: list[str], measure: str) -> float:
    return sum(float(metrics[name][measure]) for name in names) / len(names)


def selection_score(metrics: Metrics, zero_shot: Metrics, in_domain: list[str], out_of_domain: list[str],
                    measure: str, max_drop: float) -> SelectionScore:
    """Score one evaluation against the zero-shot one.

    ``feasible`` ⇔ ``mean_{s∈OOD}(m_s − z_s) ≥ −max_drop``; ``score = mean_{s∈ID} m_s`` when feasible, else
    ``−1 − (−mean_{s∈OOD}(m_s − z_s) − max_drop)``.

    Args:
        metrics: ``{set name: {measure: value}}`` of the candidate (a module's ``last_eval_metrics``).
        zero_shot: the same for the model before fine-tuning.
        in_domain: names of the in-domain sets (at least one).
        out_of_domain: names of the out-of-domain sets (at least one).
        measure: e.g. ``"ndcg@10"``.
        max_drop: the largest out-of-domain mean loss still accepted, >= 0 (e.g. 0.005).

    Raises:
        KeyError: a named set or the measure is missing from ``metrics`` or ``zero_shot``.
    """
    for label, source in (("candidate", metrics), ("zero-shot", zero_shot)):
        missing = missing_sets(source, in_domain + out_of_domain, measure)
        if missing:
            raise KeyError(f"the {label} evaluation has no {measure} for {missing}")
    current = _mean(metrics, in_domain, measure)
    in_change = current - _mean(zero_shot, in_domain, measure)
    out_change = _mean(metrics, out_of_domain, measure) - _mean(zero_shot, out_of_domain, measure)
    feasible = out_change >= -max_drop - 1e-12  # inclusive, whatever the rounding of the means
    score = current if feasible else -1.0 - (-out_change - max_drop)
    return SelectionScore(score=score, in_domain=current, in_domain_change=in_change,
                          out_of_domain_change=out_change, feasible=feasible)
