"""A run's report: the metrics table ``fit``, ``validate`` and ``test`` print at their end, written as ``report.md``
(the table) and ``report.json`` (``{label: {dataset: {metric: value}}}``, labels with ``_`` for ``-``, e.g.
``zero_shot`` and ``fine_tuned`` for ``fit``). ``fit`` adds which weights it evaluated and exported: a line under the
table and a ``weights`` entry (:func:`weights_line`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from splade_lightning.formats.atomic import write_text_atomic
from splade_lightning.formats.tables import markdown_table

COLUMNS = ("ndcg@10", "mrr@10", "recall@100", "active_dims_query", "active_dims_doc", "flops")
#: shown only when some result has them (CSR runs: the dense backbone's nDCG@10, reconstruction error, dead latents;
#: STS sets: Spearman / Pearson of the similarity with the gold scores, active dims per sentence)
OPTIONAL_COLUMNS = ("dense_ndcg@10", "recon_fvu", "dead_fraction", "spearman", "pearson", "active_dims")
#: a report of labelled results: label (``zero-shot``, ``fine-tuned``, ...) -> dataset -> metric -> value
Results = Mapping[str, Mapping[str, Mapping[str, float]] | None]


def columns_of(runs: Results) -> tuple[str, ...]:
    """:data:`COLUMNS` plus the optional columns that appear in any dataset of any run."""
    present = {key for r in runs.values() if r for metrics in r.values() for key in metrics}
    return COLUMNS + tuple(c for c in OPTIONAL_COLUMNS if c in present)


def _fmt(value: float | None, key: str) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if key.startswith("active_dims") or key == "flops" else f"{value:.4f}"


def report_rows(runs: Results) -> list[list[str]]:
    """Rows ``[dataset, label, metric...]``: for each evaluation set (in the order of the last run), one row per run
    that has it, in the order of ``runs``."""
    columns = columns_of(runs)
    last = next((r for r in reversed(list(runs.values())) if r), {})
    return [[name, label] + [_fmt(results[name].get(k), k) for k in columns]
            for name in last for label, results in runs.items() if results and name in results]


def format_table(runs: Results) -> str:
    """A padded Markdown table of :func:`report_rows` (readable in a terminal and in a README)."""
    return markdown_table(["dataset", "model", *columns_of(runs)], report_rows(runs), pad=True)


def weights_line(weights: Mapping) -> str:
    """One sentence naming the weights of a ``fit`` report: ``weights`` is ``{"selected": "last", "step": 36}`` or
    ``{"selected": "best", "step", "monitor", "mode", "value", "checkpoint"}``."""
    if weights.get("selected") != "best":
        return f"Weights: the last, at step {weights['step']}."
    return (f"Weights: the best checkpoint by {weights['monitor']} ({weights['mode']}), {weights['value']:.4f} at step "
            f"{weights['step']}: {weights['checkpoint']}.")


def write_report(directory: str | Path, runs: Results, weights: Mapping | None = None) -> str:
    """Write ``report.json`` and ``report.md`` into ``directory``; return the text of ``report.md``: the table, and
    with ``weights`` (``fit``'s :func:`weights_line` dict, also stored as ``report.json``'s ``weights``) a line
    naming the weights."""
    text = format_table(runs) + (f"\n\n{weights_line(weights)}" if weights else "")
    payload = {label.replace("-", "_"): results for label, results in runs.items()}
    if weights:
        payload["weights"] = dict(weights)
    write_text_atomic(Path(directory) / "report.json", json.dumps(payload, indent=2))
    write_text_atomic(Path(directory) / "report.md", text + "\n")
    return text


#: per-query scores beside ``report.json``: ``{dataset: {measure: {query_id: value}}}``
PER_QUERY_FILE = "per_query.json"


def write_per_query(directory: str | Path, per_query: dict) -> None:
    """Write :data:`PER_QUERY_FILE`: ``{dataset: {measure: {query_id: value}}}`` of the report's last evaluation."""
    write_text_atomic(Path(directory) / PER_QUERY_FILE, json.dumps(per_query, indent=1, sort_keys=True))
