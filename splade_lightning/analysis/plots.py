"""PNG plots of the analysis results (matplotlib, Agg canvas; no pyplot, so no global backend is changed).

Every function draws one figure, writes it atomically to ``path`` and returns the path. Needs the ``analysis``
extra (``pip install -e ".[analysis]"``).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from splade_lightning.analysis.expansions import Expansion
from splade_lightning.errors import ConfigError
from splade_lightning.formats.atomic import atomic_path

__all__ = ["plot_active_dims", "plot_df_profile", "plot_expansions", "plot_overlap", "plot_paired_counts",
           "plot_weight_changes", "save_figure"]

_TEXT_COLOR, _EXPANSION_COLOR = "#4c72b0", "#dd8452"


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Render ``fig`` to a PNG at ``path`` atomically (parent directories are created)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ConfigError(f"plot path {path} must end in .png")
    FigureCanvasAgg(fig)
    with warnings.catch_warnings():  # tokens in scripts DejaVu Sans lacks (CJK, ...) are drawn as boxes
        warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
        fig.tight_layout()
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    return path


def _check_series(series: Mapping[str, Sequence[float] | np.ndarray], what: str) -> None:
    if not series or any(len(v) == 0 for v in series.values()):
        raise ConfigError(f"{what}: expected at least one non-empty series, got {list(series)}")


def plot_active_dims(query_counts: Mapping[str, np.ndarray], doc_counts: Mapping[str, np.ndarray],
                     path: str | Path) -> Path:
    """Histograms of active dims per text: queries (left) and documents (right), one series per model.

    Args:
        query_counts: model name -> (Q,) active dims of each query (:func:`~splade_lightning.analysis.active_dims`).
        doc_counts: model name -> (N,) active dims of each document.
        path: the PNG to write.
    """
    _check_series(query_counts, "plot_active_dims query_counts")
    _check_series(doc_counts, "plot_active_dims doc_counts")
    fig = Figure(figsize=(10, 3.8))
    for ax, kind, series in zip(fig.subplots(1, 2), ("queries", "documents"), (query_counts, doc_counts)):
        top = max(int(np.max(v)) for v in series.values())
        bins = np.linspace(0, max(top, 1) + 1, 31)
        for name, counts in series.items():
            ax.hist(counts, bins=bins, alpha=0.55, label=f"{name} (mean {np.mean(counts):.1f})")
        ax.set(title=f"active dims per text: {kind}", xlabel="active dims", ylabel="texts")
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_df_profile(sorted_dfs: Mapping[str, np.ndarray], n_docs: Mapping[str, int], path: str | Path) -> Path:
    """Rank-frequency curves (log-log) of the document frequency of the active terms, one per model.

    Args:
        sorted_dfs: model name -> document frequencies in decreasing order (``df_profile(...)["sorted_df"]``).
        n_docs: model name -> number of documents (the y axis is df / n_docs).
        path: the PNG to write.
    """
    _check_series(sorted_dfs, "plot_df_profile")
    fig = Figure(figsize=(6.5, 4))
    ax = fig.subplots()
    for name, df in sorted_dfs.items():
        ax.loglog(np.arange(1, len(df) + 1), np.asarray(df) / n_docs[name], label=f"{name} ({len(df)} terms)")
    ax.set(title="document frequency of active terms", xlabel="term rank", ylabel="share of documents")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_expansions(expansions: Sequence[Expansion], path: str | Path, top_k: int = 15) -> Path:
    """One horizontal bar chart per text (three per row) of its ``top_k`` heaviest terms; terms of the text in blue,
    expansion terms in orange."""
    if not expansions:
        raise ConfigError("plot_expansions: expected at least one expansion")
    ncols = min(3, len(expansions))
    nrows = -(-len(expansions) // ncols)
    fig = Figure(figsize=(5.2 * ncols, (0.28 * top_k + 1.6) * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols)).ravel()
    for ax in axes[len(expansions):]:
        ax.set_axis_off()
    for ax, exp in zip(axes, expansions):
        terms = exp.terms[:top_k][::-1]
        ax.barh([t.term for t in terms], [t.weight for t in terms],
                color=[_TEXT_COLOR if t.in_text else _EXPANSION_COLOR for t in terms])
        title = exp.text if len(exp.text) <= 45 else exp.text[:42] + "..."
        ax.set_title(f"{exp.kind}: {title}\n{exp.active_dims} active dims (orange: expansion)", fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        ax.set_xlabel("weight")
    return save_figure(fig, path)


def plot_overlap(overlaps: Mapping[str, np.ndarray], path: str | Path, title: str = "") -> Path:
    """Histogram of per-text Jaccard overlap of two models' active terms, one series per text kind.

    Args:
        overlaps: series name (e.g. ``"queries"``) -> (N,) overlaps in [0, 1]
            (:func:`~splade_lightning.analysis.term_overlap`).
        path: the PNG to write.
        title: figure title (e.g. which two models).
    """
    _check_series(overlaps, "plot_overlap")
    fig = Figure(figsize=(6.5, 4))
    ax = fig.subplots()
    for name, values in overlaps.items():
        ax.hist(values, bins=np.linspace(0, 1, 21), alpha=0.55, label=f"{name} (mean {np.mean(values):.2f})")
    ax.set(title=title or "per-text overlap of active terms", xlabel="Jaccard overlap", ylabel="texts")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_paired_counts(counts_a: np.ndarray, counts_b: np.ndarray, labels: tuple[str, str], path: str | Path,
                       what: str = "active dims") -> Path:
    """Scatter of a per-text count under model A (x) vs model B (y), with the diagonal."""
    if len(counts_a) != len(counts_b) or len(counts_a) == 0:
        raise ConfigError(f"plot_paired_counts: expected two equally long non-empty arrays, got {len(counts_a)} "
                          f"and {len(counts_b)}")
    fig = Figure(figsize=(4.8, 4.5))
    ax = fig.subplots()
    ax.scatter(counts_a, counts_b, s=8, alpha=0.5)
    top = float(max(np.max(counts_a), np.max(counts_b), 1))
    ax.plot([0, top], [0, top], color="gray", linewidth=1)
    ax.set(title=f"{what} per text", xlabel=labels[0], ylabel=labels[1])
    return save_figure(fig, path)


def plot_weight_changes(changes: Mapping[str, list[tuple[str, float, float, float]]], path: str | Path,
                        labels: tuple[str, str] = ("A", "B")) -> Path:
    """Bars of the terms whose mean weight rose (right) or fell (left) most from model A to model B
    (:func:`~splade_lightning.analysis.weight_changes`)."""
    rows = changes.get("lost", [])[::-1] + changes.get("gained", [])[::-1]
    if not rows:
        raise ConfigError("plot_weight_changes: no term changed weight between the two models")
    fig = Figure(figsize=(6.5, 0.25 * len(rows) + 1.6))
    ax = fig.subplots()
    deltas = [r[3] for r in rows]
    ax.barh([r[0] for r in rows], deltas, color=[_EXPANSION_COLOR if d < 0 else _TEXT_COLOR for d in deltas])
    ax.axvline(0, color="gray", linewidth=1)
    ax.tick_params(axis="y", labelsize=7)
    ax.set(title=f"mean term weight: {labels[1]} - {labels[0]}", xlabel="change of mean weight")
    return save_figure(fig, path)
