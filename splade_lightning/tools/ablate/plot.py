"""Pareto plot: mean nDCG@10 against mean document active dims and against mean FLOPS, with 95% confidence
intervals over seeds as error bars on both axes, the front (computed on the means) marked, one colour and marker
per point family, and numbered labels that do not overlap, keyed beside the panels."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from splade_lightning.formats.atomic import atomic_path
from splade_lightning.tools.ablate.label_layout import place_labels

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
#: half-size in display pixels (at the 120 dpi of the PNG) of the circle around a front point
FRONT_RING_HALF_PX = 11.0
_COLOURS = ("tab:blue", "tab:orange", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan",
            "tab:gray", "tab:green")


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


def _error(row: dict, key: str) -> tuple[float, float] | None:
    """(below, above) half-widths of ``key``'s interval around its mean (``<key>_mean``, ``_ci_low``,
    ``_ci_high``), or None without an interval (one seed)."""
    base = key[: -len("_mean")] if key.endswith("_mean") else key
    mean, low, high = row.get(key), row.get(f"{base}_ci_low"), row.get(f"{base}_ci_high")
    if mean is None or low is None or high is None:
        return None
    return mean - low, high - mean


def plot_pareto(rows: list[dict], path: Path, title: str, quality: str = "ndcg@10",
                costs: tuple[str, ...] = ("active_dims_doc", "flops"),
                families: Mapping[str, str] | None = None) -> Path:
    """Write a PNG with one panel per cost and a key. Points are numbered in row order; each family (e.g.
    ``warmup=on`` for a λ sweep with warm-up) gets its colour and marker; error bars are the rows' 95%
    intervals (``<figure>_ci_low`` / ``_ci_high``) where they have them; the front is drawn as a step line and its
    points circled. Written atomically.

    Args:
        rows: result rows (``point`` and the ``quality`` / ``costs`` keys; rows missing one are left out).
        path: the PNG to write.
        title: the figure title.
        quality: the key plotted upwards (higher is better).
        costs: one panel per key, plotted rightwards (lower is cheaper).
        families: ``{point name: family}``; default: one family.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = families or {}
    names = [r["point"] for r in rows]
    family_names = list(dict.fromkeys(families.get(n, "points") for n in names))
    style = {f: (_COLOURS[i % len(_COLOURS)], _MARKERS[i % len(_MARKERS)]) for i, f in enumerate(family_names)}
    width = 6.0 * len(costs) + 2.6
    fig = plt.figure(figsize=(width, 5.6))
    grid = fig.add_gridspec(1, len(costs) + 1, width_ratios=[6.0] * len(costs) + [2.6])
    axes = [fig.add_subplot(grid[0, i]) for i in range(len(costs))]
    for ax, cost in zip(axes, costs):
        _panel(ax, rows, cost, quality, families, style)
    key = fig.add_subplot(grid[0, len(costs)])
    _key(key, names)
    fig.suptitle(title)
    fig.tight_layout()
    fig.set_dpi(120)  # the labels are placed in display pixels of the saved PNG
    for ax, cost in zip(axes, costs):
        done = [(i, r) for i, r in enumerate(rows, 1) if r.get(cost) is not None and r.get(quality) is not None]
        front = pareto_front([r for _, r in done], cost, quality)
        place_labels(ax, [(r[cost], r[quality]) for _, r in done], [str(i) for i, _ in done],
                     marker_half_px=[FRONT_RING_HALF_PX if r["point"] in front else 4.0 for _, r in done])
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
    return path


def _panel(ax, rows: list[dict], cost: str, quality: str, families: Mapping[str, str], style: dict) -> None:
    done = [r for r in rows if r.get(cost) is not None and r.get(quality) is not None]
    front = pareto_front(done, cost, quality)
    shown: set[str] = set()
    for r in done:
        family = families.get(r["point"], "points")
        colour, marker = style[family]
        xerr, yerr = _error(r, cost), _error(r, quality)
        ax.errorbar(r[cost], r[quality], xerr=None if xerr is None else [[xerr[0]], [xerr[1]]],
                    yerr=None if yerr is None else [[yerr[0]], [yerr[1]]], fmt=marker, color=colour, ms=5,
                    elinewidth=0.8, capsize=2, alpha=0.85, zorder=3, label=None if family in shown else family)
        shown.add(family)
    on_front = sorted((r for r in done if r["point"] in front), key=lambda r: r[cost])
    if on_front:
        ax.step([r[cost] for r in on_front], [r[quality] for r in on_front], where="post", color="tab:green",
                lw=1, label="Pareto front (means)", zorder=2)
        ax.scatter([r[cost] for r in on_front], [r[quality] for r in on_front], s=140, facecolors="none",
                   edgecolors="tab:green", zorder=4)
    ax.legend(loc="best", fontsize=7)
    base = cost[: -len("_mean")] if cost.endswith("_mean") else cost
    ax.set_xlabel(f"{base} (lower is cheaper)")
    ax.set_ylabel(quality[: -len("_mean")] if quality.endswith("_mean") else quality)
    ax.grid(alpha=0.3)
    ax.margins(0.12)


def _key(ax, names: list[str]) -> None:
    """The numbered list of point names, in a text-only panel."""
    ax.axis("off")
    size = 7 if len(names) <= 30 else 5.5
    ax.text(0, 1, "\n".join(f"{i:>2}  {n}" for i, n in enumerate(names, 1)), va="top", ha="left", fontsize=size,
            family="monospace", transform=ax.transAxes)
