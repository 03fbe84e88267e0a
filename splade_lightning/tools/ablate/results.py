"""Collect each run's ``report.json`` (and the last logged training figures), summarise each point over its seeds,
and write one table: Markdown + CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from splade_lightning.formats.atomic import write_text_atomic
from splade_lightning.formats.report import PER_QUERY_FILE
from splade_lightning.formats.tables import markdown_table
from splade_lightning.tools.ablate.aggregate import STAT_SUFFIXES, add_baseline_tests, per_query_scores, point_row
from splade_lightning.tools.ablate.grid import Point, Study
from splade_lightning.tools.ablate.runner import find_report

#: what the runner writes into ``--output``
RESULT_FILES = ("results.md", "results.csv", "pareto.png")
#: figures read from the fine-tuned results of the chosen evaluation set
EVAL_KEYS = ("ndcg@10", "mrr@10", "recall@100", "active_dims_query", "active_dims_doc", "flops")
#: last logged value of these training figures (CSVLogger metrics.csv), when present
TRAIN_KEYS = ("train/active_dims_doc", "train/controller_measured_doc", "train/reg_weight_doc")


def last_logged(point_dir: Path, keys: tuple[str, ...] = TRAIN_KEYS, window: int = 10) -> dict[str, float]:
    """Last non-empty value of each of ``keys`` in the point's ``metrics.csv`` (CSVLogger), plus
    ``<key>_last<window>``: the mean of its last ``window`` logged values (steadier than one batch); {} without a
    metrics file."""
    series: dict[str, list[float]] = {}
    for path in sorted(point_dir.rglob("metrics.csv")):
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                for k in keys:
                    if row.get(k) not in (None, ""):
                        series.setdefault(k, []).append(float(row[k]))
    found = {k: values[-1] for k, values in series.items()}
    found.update({f"{k}_last{window}": sum(v[-window:]) / len(v[-window:]) for k, v in series.items()
                  if k == "train/active_dims_doc"})
    return found


def run_row(run: Point, runs_dir: Path, dataset: str = "mean") -> dict:
    """The figures of one (point, seed) run: the fine-tuned figures of ``dataset`` (``mean`` = mean over the
    evaluation sets), every set's nDCG@10, the last training figures, the run's wall time, its report path and its
    per-query nDCG@10 (``per_query``: from ``per_query.json`` beside ``report.json``, None without one, e.g. runs
    made before ``fit`` wrote it).
    An unfinished run gets ``status: missing`` and no figures."""
    run_dir = runs_dir / run.dirname
    report_path = find_report(run_dir)
    if report_path is None:
        return {"status": "missing"}
    fine_tuned = json.loads(report_path.read_text(encoding="utf-8"))["fine_tuned"]
    chosen = fine_tuned.get(dataset) or {}
    row: dict = {"status": "done", **{k: chosen.get(k) for k in EVAL_KEYS}}
    row.update({f"{name}/ndcg@10": m.get("ndcg@10") for name, m in fine_tuned.items() if name != dataset})
    row.update(last_logged(run_dir))
    runner = run_dir / "runner.json"
    row["wall_s"] = json.loads(runner.read_text(encoding="utf-8")).get("wall_s") if runner.is_file() else None
    row["report"] = str(report_path)
    per_query_path = report_path.parent / PER_QUERY_FILE
    row["per_query"] = (per_query_scores(json.loads(per_query_path.read_text(encoding="utf-8")), dataset)
                        if per_query_path.is_file() else None)
    return row


def collect(study: Study, runs_dir: Path, dataset: str = "mean") -> list[dict]:
    """One row per point (:func:`~splade_lightning.tools.ablate.aggregate.point_row`): its labels, mean / std /
    95% interval over its seeds of every figure of :func:`run_row`, ``n_seeds`` and, when the study has a baseline,
    the Holm-adjusted test of nDCG@10 against it. Points with an unfinished seed get ``status: missing``."""
    runs = {point.name: [] for point in study.points}
    for run in study.runs():
        runs[run.name].append(run_row(run, runs_dir, dataset))
    rows = [point_row(point.name, point.labels, runs[point.name]) for point in study.points]
    if study.baseline is not None:
        per_query = {name: [r["per_query"] for r in seeds] if all(r.get("per_query") for r in seeds) else None
                     for name, seeds in runs.items()}
        add_baseline_tests(rows, per_query, study.baseline)
    return rows


def columns(rows: list[dict]) -> list[str]:
    """Every key of ``rows`` in first-seen order, ``report`` (the path) last."""
    seen: dict[str, None] = {}
    for row in rows:
        seen.update(dict.fromkeys(row))
    ordered = [c for c in seen if c != "report"]
    return ordered + (["report"] if "report" in seen else [])


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.4f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)


def _cell(row: dict, column: str) -> str:
    """A Markdown cell: ``<figure>`` shows ``mean ± CI half-width`` (the mean alone for a single run)."""
    if f"{column}_mean" not in row:
        return _fmt(row.get(column))
    mean, high = row.get(f"{column}_mean"), row.get(f"{column}_ci_high")
    return _fmt(mean) if mean is None or high is None else f"{_fmt(mean)} ± {_fmt(high - mean)}"


def _md_columns(rows: list[dict]) -> list[str]:
    """:func:`columns` with each figure's four statistics columns folded into one ``<figure>`` column."""
    out = []
    for column in columns(rows):
        if column == "report" or any(column.endswith(f"_{s}") for s in STAT_SUFFIXES if s != "mean"):
            continue
        out.append(column[: -len("_mean")] if column.endswith("_mean") else column)
    return out


def results_table(rows: list[dict], pareto: set[str] | None = None, n_seeds: int = 1) -> str:
    """A Markdown table of ``rows`` (without the report path) under one line saying what the cells are, ending with
    a newline: each figure as ``mean ± half-width of the 95% Student-t interval`` over ``n_seeds`` seeds, or as
    the value of a single run when ``n_seeds == 1``; points on the Pareto front get a ``*``."""
    note = (f"Mean ± half-width of the 95% Student-t confidence interval over {n_seeds} seeds per point."
            if n_seeds > 1 else "Single run per point (one seed): no spread or confidence interval.")
    cols = _md_columns(rows) + (["pareto"] if pareto is not None else [])
    cells = ({**row, "pareto": "*" if pareto and row["point"] in pareto else ""} for row in rows)
    return note + "\n\n" + markdown_table(cols, ([_cell(cell, c) for c in cols] for cell in cells)) + "\n"


def finished_in(path: Path) -> set[str]:
    """The points an existing ``results.csv`` lists as done (an empty set when there is none or it cannot be read:
    :func:`~splade_lightning.formats.outputs.check_file_output` has checked it is no input)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return {row["point"] for row in csv.DictReader(handle) if row.get("status") == "done" and row.get("point")}
    except (OSError, UnicodeDecodeError, KeyError, csv.Error):
        return set()


def write_tables(rows: list[dict], output: Path, pareto: set[str] | None = None,
                 n_seeds: int = 1) -> tuple[Path, Path]:
    """Write ``results.md`` (:func:`results_table`) and ``results.csv`` (every column) into ``output`` atomically;
    return their paths."""
    cols = columns(rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=cols, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c) if row.get(c) is not None else "" for c in cols})
    csv_path = write_text_atomic(output / "results.csv", buffer.getvalue())
    md_path = write_text_atomic(output / "results.md", results_table(rows, pareto, n_seeds))
    return md_path, csv_path
