"""Pareto plot: nDCG@10 against document active dims and against FLOPS, the non-dominated points marked."""

from __future__ import annotations

from pathlib import Path

from splade_lightning.formats.atomic import atomic_path


def pareto_front(rows: list[dict], cost: str, quality: str = "ndcg@10") -> set[str]:
    """Names of the points no other point beats: none has ``cost`` <= and ``quality`` >= with one strictly better.

    Args:
        rows: result rows with ``point``, ``cost`` and ``quality`` (rows missing either are ignored).
        cost: the key to minimise (e.g. ``active_dims_doc``).
        quality: the key to maximise.
    """
    done = [r for r in rows if r.get(cost) is not None and r.get(quality) is not None]
    front = set()
    for r in done:
        dominated = any(o[cost] <= r[cost] and o[quality] >= r[quality] and (o[cost] < r[cost] or o[quality] >
                                                                             r[quality]) for o in done)
        if not dominated:
            front.add(r["point"])
    return front


def plot_pareto(rows: list[dict], path: Path, title: str, quality: str = "ndcg@10",
                costs: tuple[str, ...] = ("active_dims_doc", "flops")) -> Path:
    """Write a PNG with one panel per cost: every point labelled, the Pareto front drawn as a step line and its
    points circled. Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(costs), figsize=(6.5 * len(costs), 5), squeeze=False)
    for ax, cost in zip(axes[0], costs):
        _panel(ax, rows, cost, quality)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path


def _panel(ax, rows: list[dict], cost: str, quality: str) -> None:
    done = [r for r in rows if r.get(cost) is not None and r.get(quality) is not None]
    front = pareto_front(done, cost, quality)
    for r in done:
        color = "tab:red" if "controller" in r["point"] else "tab:blue"
        ax.scatter(r[cost], r[quality], color=color, s=30, zorder=3)
        ax.annotate(r["point"], (r[cost], r[quality]), fontsize=7, xytext=(4, 3), textcoords="offset points")
    on_front = sorted((r for r in done if r["point"] in front), key=lambda r: r[cost])
    if on_front:
        ax.step([r[cost] for r in on_front], [r[quality] for r in on_front], where="post", color="tab:green",
                label="Pareto front", zorder=2)
        ax.scatter([r[cost] for r in on_front], [r[quality] for r in on_front], s=140, facecolors="none",
                   edgecolors="tab:green", zorder=4)
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel(f"{cost} (lower is cheaper)")
    ax.set_ylabel(quality)
    ax.grid(alpha=0.3)
