"""The zero-shot vs fine-tuned table printed at the end of ``fit`` (and written as report.json / report.md)."""

from __future__ import annotations

import json
from pathlib import Path

from splade_lightning.formats.atomic import write_text_atomic
from splade_lightning.formats.tables import markdown_table

COLUMNS = ("ndcg@10", "mrr@10", "recall@100", "active_dims_query", "active_dims_doc", "flops")
#: shown only when some result has them (CSR runs: the dense backbone's nDCG@10, reconstruction error, dead latents)
OPTIONAL_COLUMNS = ("dense_ndcg@10", "recon_fvu", "dead_fraction")


def columns_of(*results: dict[str, dict] | None) -> tuple[str, ...]:
    """:data:`COLUMNS` plus the optional columns that appear in any dataset of ``results``."""
    present = {key for r in results if r for metrics in r.values() for key in metrics}
    return COLUMNS + tuple(c for c in OPTIONAL_COLUMNS if c in present)


def _fmt(value: float | None, key: str) -> str:
    if value is None:
        return "-"
    return f"{value:.1f}" if key.startswith("active_dims") or key == "flops" else f"{value:.4f}"


def report_rows(before: dict[str, dict] | None, after: dict[str, dict]) -> list[list[str]]:
    """Rows ``[dataset, run, metric...]`` for each evaluation set: zero-shot first (when known), then fine-tuned."""
    rows, columns = [], columns_of(before, after)
    for name in after:
        for label, results in (("zero-shot", before), ("fine-tuned", after)):
            if results is None or name not in results:
                continue
            rows.append([name, label] + [_fmt(results[name].get(k), k) for k in columns])
    return rows


def format_table(before: dict[str, dict] | None, after: dict[str, dict]) -> str:
    """A padded Markdown table of :func:`report_rows` (readable in a terminal and in a README)."""
    return markdown_table(["dataset", "model", *columns_of(before, after)], report_rows(before, after), pad=True)


def write_report(directory: Path, before: dict[str, dict] | None, after: dict[str, dict]) -> str:
    """Write ``report.json`` and ``report.md`` into ``directory``; return the table."""
    table = format_table(before, after)
    write_text_atomic(directory / "report.json", json.dumps({"zero_shot": before, "fine_tuned": after}, indent=2))
    write_text_atomic(directory / "report.md", table + "\n")
    return table
