"""The zero-shot vs fine-tuned table printed at the end of ``fit`` (and written as report.json / report.md)."""

from __future__ import annotations

import json
from pathlib import Path

from .atomic import write_text_atomic

COLUMNS = ("ndcg@10", "mrr@10", "recall@100", "active_dims_query", "active_dims_doc", "flops")


def _fmt(value: float | None, key: str) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if key.startswith("active_dims") or key == "flops" else f"{value:.4f}"


def report_rows(before: dict[str, dict] | None, after: dict[str, dict]) -> list[list[str]]:
    """Rows ``[dataset, run, metric...]`` for each evaluation set: zero-shot first (when known), then fine-tuned."""
    rows = []
    for name in after:
        for label, results in (("zero-shot", before), ("fine-tuned", after)):
            if results is None or name not in results:
                continue
            rows.append([name, label] + [_fmt(results[name].get(k), k) for k in COLUMNS])
    return rows


def format_table(before: dict[str, dict] | None, after: dict[str, dict]) -> str:
    """A Markdown table of :func:`report_rows` (readable in a terminal and in a README)."""
    header = ["dataset", "model"] + list(COLUMNS)
    rows = [header] + report_rows(before, after)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def write_report(directory: Path, before: dict[str, dict] | None, after: dict[str, dict]) -> str:
    """Write ``report.json`` and ``report.md`` into ``directory``; return the table."""
    table = format_table(before, after)
    write_text_atomic(directory / "report.json", json.dumps({"zero_shot": before, "fine_tuned": after}, indent=2))
    write_text_atomic(directory / "report.md", table + "\n")
    return table
