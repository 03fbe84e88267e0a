"""Collect each point's ``report.json`` (and the last logged training figures) into one table: Markdown + CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from splade_lightning.formats.atomic import write_text_atomic
from splade_lightning.formats.tables import markdown_table
from splade_lightning.tools.ablate.grid import Point
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


def collect(points: list[Point], runs_dir: Path, dataset: str = "mean") -> list[dict]:
    """One row per point: its labels, the fine-tuned figures of ``dataset`` (``mean`` = mean over the evaluation
    sets), every set's nDCG@10, the last training figures and the point's wall time. Unfinished points get
    ``status: missing`` and empty figures."""
    rows = []
    for point in points:
        point_dir = runs_dir / point.dirname
        row: dict = {"point": point.name, **point.labels}
        report_path = find_report(point_dir)
        if report_path is None:
            rows.append({**row, "status": "missing"})
            continue
        fine_tuned = json.loads(report_path.read_text(encoding="utf-8"))["fine_tuned"]
        chosen = fine_tuned.get(dataset) or {}
        row.update({"status": "done", **{k: chosen.get(k) for k in EVAL_KEYS}})
        row.update({f"{name}/ndcg@10": m.get("ndcg@10") for name, m in fine_tuned.items() if name != dataset})
        row.update(last_logged(point_dir))
        runner = point_dir / "runner.json"
        row["wall_s"] = json.loads(runner.read_text(encoding="utf-8")).get("wall_s") if runner.is_file() else None
        row["report"] = str(report_path)
        rows.append(row)
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


def results_table(rows: list[dict], pareto: set[str] | None = None) -> str:
    """A Markdown table of ``rows`` (without the report path), ending with a newline; points on the Pareto front
    get a ``*``."""
    cols = [c for c in columns(rows) if c != "report"] + (["pareto"] if pareto is not None else [])
    cells = ({**row, "pareto": "*" if pareto and row["point"] in pareto else ""} for row in rows)
    return markdown_table(cols, ([_fmt(cell.get(c)) for c in cols] for cell in cells)) + "\n"


def finished_in(path: Path) -> set[str]:
    """The points an existing ``results.csv`` lists as done (an empty set when there is none or it cannot be read:
    :func:`~splade_lightning.formats.outputs.check_file_output` has checked it is no input)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return {row["point"] for row in csv.DictReader(handle) if row.get("status") == "done" and row.get("point")}
    except (OSError, UnicodeDecodeError, KeyError, csv.Error):
        return set()


def write_tables(rows: list[dict], output: Path, pareto: set[str] | None = None) -> tuple[Path, Path]:
    """Write ``results.md`` and ``results.csv`` into ``output`` atomically; return their paths."""
    cols = columns(rows)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=cols, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({c: row.get(c) if row.get(c) is not None else "" for c in cols})
    csv_path = write_text_atomic(output / "results.csv", buffer.getvalue())
    md_path = write_text_atomic(output / "results.md", results_table(rows, pareto))
    return md_path, csv_path
