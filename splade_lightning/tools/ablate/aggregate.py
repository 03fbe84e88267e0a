"""One results row per point from the rows of its seeds: mean, std and 95% Student-t interval of every figure, and
the paired test against the grid's baseline point (Holm-adjusted over the grid).

The statistics are :mod:`splade_lightning.metrics.seed_stats`; this module only shapes rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from splade_lightning.metrics.seed_stats import baseline_p_value, holm, summarise

#: the metric tested against the baseline
PRIMARY = "ndcg@10"
#: family-wise error rate of the Holm-adjusted comparisons
ALPHA = 0.05
#: suffixes of the columns every figure gets
STAT_SUFFIXES = ("mean", "std", "ci_low", "ci_high")
#: keys of a run row that are not figures
NOT_FIGURES = ("point", "status", "wall_s", "report", "per_query")


def figure_keys(run_rows: Sequence[Mapping], labels: Mapping[str, str]) -> list[str]:
    """The numeric figures of the runs (first-seen order), without the labels and bookkeeping keys."""
    seen: dict[str, None] = {}
    for row in run_rows:
        seen.update(dict.fromkeys(k for k, v in row.items() if k not in NOT_FIGURES and k not in labels
                                  and (v is None or isinstance(v, (int, float)))))
    return list(seen)


def point_row(name: str, labels: Mapping[str, str], run_rows: Sequence[Mapping]) -> dict:
    """The row of one point: ``status: missing`` unless every seed finished, else ``<figure>_mean``, ``_std``,
    ``_ci_low``, ``_ci_high`` of every figure (std and interval None with one seed; all four None when some seed
    lacks the figure), ``n_seeds``, the summed ``wall_s`` and the seeds' report paths.

    Args:
        name: the point's name.
        labels: the point's labels (axis -> value name).
        run_rows: the rows of the point's runs (one per seed), each with ``status`` and its figures.
    """
    row: dict = {"point": name, **labels}
    if not run_rows or any(r.get("status") != "done" for r in run_rows):
        return {**row, "status": "missing", "n_seeds": sum(r.get("status") == "done" for r in run_rows)}
    row["status"] = "done"
    for key in figure_keys(run_rows, labels):
        values = [r.get(key) for r in run_rows]
        summary = summarise(values) if all(v is not None for v in values) else None
        for suffix in STAT_SUFFIXES:
            row[f"{key}_{suffix}"] = None if summary is None else getattr(summary, suffix)
    row["n_seeds"] = len(run_rows)
    walls = [r.get("wall_s") for r in run_rows]
    row["wall_s"] = sum(walls) if all(w is not None for w in walls) else None
    row["report"] = "; ".join(str(r["report"]) for r in run_rows if r.get("report"))
    return row


def add_baseline_tests(rows: list[dict], per_query: Mapping[str, Sequence[Mapping[str, float]] | None],
                       baseline: str, permutations: int = 10000) -> None:
    """Add ``p_vs_baseline`` (raw), ``p_holm_vs_baseline`` and ``significant_vs_baseline`` (Holm-adjusted p below
    :data:`ALPHA`) to every finished row but the baseline's, in place.

    The p-value is :func:`~splade_lightning.metrics.seed_stats.baseline_p_value` on the :data:`PRIMARY` per-query
    scores, each query averaged over the point's seeds. The Holm family is every point that has per-query scores
    for all its seeds (the others, and every point when the baseline has none, get empty columns).

    Args:
        rows: point rows from :func:`point_row` (modified in place).
        per_query: ``{point name: one {query_id: score} per seed}``, or None where some seed has no per-query
            scores.
        baseline: the baseline point's name.
        permutations: random sign patterns of the randomisation test.
    """
    reference = per_query.get(baseline)
    raw: dict[str, float] = {}
    if reference:
        for row in rows:
            scores = per_query.get(row["point"])
            if row["point"] != baseline and row.get("status") == "done" and scores:
                raw[row["point"]] = baseline_p_value(scores, reference, permutations)
    adjusted = holm(raw)
    for row in rows:
        row["p_vs_baseline"] = raw.get(row["point"])
        row["p_holm_vs_baseline"] = adjusted.get(row["point"])
        row["significant_vs_baseline"] = (adjusted[row["point"]] < ALPHA) if row["point"] in adjusted else None


def per_query_scores(per_query_file: Mapping, dataset: str, measure: str = PRIMARY) -> dict[str, float] | None:
    """``{query_id: score}`` of ``measure`` on ``dataset`` from a run's per-query file (``{dataset: {measure:
    {query_id: score}}}``); for ``dataset == "mean"`` (and no set of that name) the queries of every set, keyed
    ``<set>/<query_id>`` (so each query weighs the same, where the ``mean`` row weighs each set the same). None
    when the measure is absent."""
    if dataset in per_query_file:
        return per_query_file[dataset].get(measure)
    if dataset != "mean":
        return None
    pooled = {f"{name}/{q}": v for name, sets in per_query_file.items() for q, v in (sets.get(measure) or {}).items()}
    return pooled or None
