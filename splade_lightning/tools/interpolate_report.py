"""What ``splade-lightning interpolate`` writes besides the model: ``interpolation.json``, ``interpolation.md`` and
``interpolation.png`` (the quality of each interpolation weight alpha on each evaluation set, and the mean)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from splade_lightning.formats.tables import markdown_table
from splade_lightning.retrieval.evaluation import SPARSITY_KEYS, mean_over_datasets
from splade_lightning.tools.evaluate import format_table

#: the files of the output directory, besides ``model/``
JSON, MARKDOWN, PLOT = "interpolation.json", "interpolation.md", "interpolation.png"


def alpha_label(alpha: float) -> str:
    """``0.25`` -> ``"0.25"``, ``1.0`` -> ``"1"`` (the row names of the tables)."""
    return f"{alpha:g}"


def with_means(per_set: Mapping[str, Mapping[str, float]], keys: Sequence[str]) -> dict[str, float] | None:
    """The unweighted mean over the sets of each key (as ``evaluate`` reports a suite), or None for one set."""
    return mean_over_datasets(per_set, keys) if len(per_set) > 1 else None


def score_of(row: Mapping, measure: str, on: str | None) -> float:
    """The selection score of one alpha's row: ``measure`` on set ``on``, or its mean over the sets (``on=None``)."""
    if on is not None:
        return row["sets"][on][measure]
    return row["mean"][measure] if row["mean"] is not None else next(iter(row["sets"].values()))[measure]


def summary_table(rows: Sequence[Mapping], measure: str, selected: float) -> str:
    """Rows: alpha; columns: ``measure`` on each set (and the mean); the exported alpha is marked."""
    names = list(rows[0]["sets"])
    mean = len(names) > 1
    header = ["alpha", *names, *(["mean"] if mean else []), "exported"]
    cells = ([alpha_label(r["alpha"]), *(f"{r['sets'][n][measure]:.4f}" for n in names),
              *([f"{r['mean'][measure]:.4f}"] if mean else []), "yes" if r["alpha"] == selected else ""]
             for r in rows)
    return markdown_table(header, cells)


def markdown_report(payload: Mapping) -> str:
    """``interpolation.md``: what was interpolated, the summary table, one full table per set."""
    measure, keys = payload["selection_measure"], [*payload["measures"], *SPARSITY_KEYS]
    rows = payload["results"]
    lines = ["# Weight-space interpolation (WiSE-FT)", "",
             "theta(alpha) = (1 - alpha) * zero-shot + alpha * fine-tuned (Wortsman et al., CVPR 2022, "
             "arXiv:2109.01903).", "",
             f"- zero-shot (alpha = 0): `{payload['zero_shot']}`",
             f"- fine-tuned (alpha = 1): `{payload['fine_tuned']}`",
             f"- exported to `model/`: alpha = {alpha_label(payload['selected_alpha'])} "
             f"(`--select {payload['select']}`: {payload['selected_by']})", "",
             f"## {measure}", "", summary_table(rows, measure, payload["selected_alpha"]), ""]
    for item in payload["sets"]:
        name = item["name"]
        lines += [f"## {name}", "", f"`{item['path']}`, split `{item['split']}`, min_relevance "
                  f"{item['min_relevance']}, {item['queries']} queries, {item['documents']} documents", "",
                  format_table({alpha_label(r["alpha"]): r["sets"][name] for r in rows}, keys, first_column="alpha"),
                  ""]
    return "\n".join(lines)


def write_report(directory: Path, payload: Mapping) -> None:
    """Write ``interpolation.json``, ``interpolation.md`` and ``interpolation.png`` into ``directory``."""
    (directory / JSON).write_text(json.dumps(payload, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    (directory / MARKDOWN).write_text(markdown_report(payload), encoding="utf-8")
    plot(payload, directory / PLOT)


def plot(payload: Mapping, path: Path) -> Path:
    """``interpolation.png``: the selection measure against alpha, one line per set, the mean dashed, the exported
    alpha marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    measure, rows = payload["selection_measure"], payload["results"]
    alphas = [r["alpha"] for r in rows]
    fig = Figure(figsize=(6.4, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name in rows[0]["sets"]:
        ax.plot(alphas, [r["sets"][name][measure] for r in rows], marker="o", label=name)
    if rows[0]["mean"] is not None:
        ax.plot(alphas, [r["mean"][measure] for r in rows], color="black", ls="--", marker="s", label="mean")
    ax.axvline(payload["selected_alpha"], color="grey", lw=0.8, ls=":", label="exported")
    ax.set_xlabel("alpha (0: zero-shot, 1: fine-tuned)")
    ax.set_ylabel(measure)
    ax.set_title("WiSE-FT weight interpolation")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    return path
