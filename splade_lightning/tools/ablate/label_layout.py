"""Point labels that do not overlap: each label takes the first of a ring of candidate positions around its point
whose box (in display coordinates) overlaps no label placed before it and no data marker, joined to its point by
a thin line when it had to move away.

A greedy placement (labels in the order given); the candidates widen ring by ring, so a crowded cluster spreads out
instead of stacking. Works on a drawn figure: call it after the axes limits and the layout are final.
"""

from __future__ import annotations

from collections.abc import Sequence

#: gaps tried between a point and its label, in multiples of the marker-to-label gap (1 = next to the marker)
_RINGS = (1.0, 2.0, 3.0, 4.5, 6.0, 8.0)
#: half-size in display pixels of the box a data marker occupies
MARKER_HALF_PX = 4.0


def _candidates(width: float, height: float, gap: float) -> list[tuple[float, float]]:
    """Offsets (display pixels) of a label box's lower-left corner from its point: right, left, above, below, then
    the four corners, nearest first."""
    return [(gap, -height / 2), (-gap - width, -height / 2), (-width / 2, gap), (-width / 2, -gap - height),
            (gap, gap / 2), (gap, -gap / 2 - height), (-gap - width, gap / 2), (-gap - width, -gap / 2 - height)]


def _overlap(a, b) -> float:
    """Area of the intersection of two ``(x0, y0, x1, y1)`` boxes."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _outside(box, frame) -> float:
    """Area of ``box`` outside ``frame`` (both ``(x0, y0, x1, y1)``)."""
    area = (box[2] - box[0]) * (box[3] - box[1])
    return area - _overlap(box, frame)


def place_labels(ax, xy: Sequence[tuple[float, float]], texts: Sequence[str], fontsize: float = 7,
                 color: str = "black", marker_half_px: Sequence[float] | None = None
                 ) -> list[tuple[float, float, float, float]]:
    """Annotate each data point ``xy[i]`` with ``texts[i]`` where it overlaps nothing placed so far.

    Args:
        ax: a matplotlib Axes whose limits and layout are final (the figure is drawn here to measure text).
        xy: data coordinates of the points, one per label.
        texts: the labels.
        fontsize: label font size in points.
        color: label colour.
        marker_half_px: half-size in display pixels of each point's marker (default :data:`MARKER_HALF_PX`):
            labels keep clear of every marker and start this far from their own.

    Returns:
        The display-coordinate boxes ``(x0, y0, x1, y1)`` of the placed labels, in the order of ``texts``. A label
        that fits nowhere free takes the candidate of least overlap.
    """
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = tuple(ax.get_window_extent(renderer).extents)
    centres = [ax.transData.transform(p) for p in xy]
    halves = list(marker_half_px) if marker_half_px is not None else [MARKER_HALF_PX] * len(centres)
    taken = [(x - r, y - r, x + r, y + r) for (x, y), r in zip(centres, halves)]
    px_per_pt = fig.dpi / 72.0
    placed = []
    for (x, y), (cx, cy), text, half in zip(xy, centres, texts, halves):
        probe = ax.text(0, 0, text, fontsize=fontsize)
        ext = probe.get_window_extent(renderer)
        width, height = ext.width, ext.height
        probe.remove()
        best = None
        for ring in _RINGS:
            for ox, oy in _candidates(width, height, ring * (half + 2)):
                box = (cx + ox, cy + oy, cx + ox + width, cy + oy + height)
                cost = sum(_overlap(box, t) for t in taken) + 10 * _outside(box, frame)
                if best is None or cost < best[0]:
                    best = (cost, ox, oy, box, ring)
                if cost == 0:
                    break
            if best[0] == 0:
                break
        _, ox, oy, box, ring = best
        far = ring > 1.0
        ax.annotate(text, (x, y), xytext=(ox / px_per_pt, oy / px_per_pt), textcoords="offset points",
                    fontsize=fontsize, color=color, va="bottom", ha="left", zorder=5,
                    arrowprops=dict(arrowstyle="-", lw=0.5, color="0.5", shrinkA=0, shrinkB=2) if far else None)
        taken.append(box)
        placed.append(box)
    return placed
