"""The ablation plot: numbered labels that overlap neither each other nor any marker, point families, and error
bars from the seeds' confidence intervals."""

from __future__ import annotations

import itertools

import pytest

from splade_lightning.tools.ablate.grid import Point
from splade_lightning.tools.ablate.label_layout import MARKER_HALF_PX, place_labels
from splade_lightning.tools.ablate.plot import _error, plot_pareto


def _overlaps(a, b) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


@pytest.fixture
def axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5), dpi=120)
    yield ax
    plt.close(fig)


def test_labels_of_a_tight_cluster_do_not_overlap(axes):
    # 16 points within a few pixels of each other (like the λ points that all end near 100 dims) plus two apart
    xy = [(100 + 0.3 * (i % 4), 0.825 + 0.0002 * (i // 4)) for i in range(16)] + [(50, 0.82), (70, 0.84)]
    axes.scatter(*zip(*xy))
    axes.set_xlim(40, 110)
    axes.set_ylim(0.81, 0.85)
    texts = [str(i) for i in range(1, len(xy) + 1)]
    boxes = place_labels(axes, xy, texts)
    assert len(boxes) == len(xy)
    for a, b in itertools.combinations(boxes, 2):
        assert not _overlaps(a, b), (a, b)
    markers = [axes.transData.transform(p) for p in xy]
    for box, (x, y) in itertools.product(boxes, markers):
        marker = (x - MARKER_HALF_PX, y - MARKER_HALF_PX, x + MARKER_HALF_PX, y + MARKER_HALF_PX)
        assert not _overlaps(box, marker)
    frame = axes.get_window_extent().extents
    assert all(frame[0] <= b[0] and b[2] <= frame[2] and frame[1] <= b[1] and b[3] <= frame[3] for b in boxes)


def test_an_isolated_label_sits_next_to_its_point(axes):
    axes.set_xlim(0, 10)
    axes.set_ylim(0, 10)
    (box,) = place_labels(axes, [(5, 5)], ["7"])
    x, y = axes.transData.transform((5, 5))
    assert 0 < box[0] - x <= MARKER_HALF_PX + 3  # to the right, first candidate
    assert box[1] < y < box[3]


def test_point_families():
    assert Point("warmup=on,lambda_d=1e-4", {"warmup": "on", "lambda_d": "1e-4"}).family == "warmup=on"
    assert Point("a=1,b=2,c=3", {"a": "1", "b": "2", "c": "3"}).family == "a=1,b=2"
    assert Point("loss=kl", {"loss": "kl"}).family == "loss=kl"  # one axis: each value its own family
    assert Point("controller", {"point": "controller"}).family == "named points"


def test_error_bars_come_from_the_interval():
    row = {"ndcg@10_mean": 0.80, "ndcg@10_ci_low": 0.77, "ndcg@10_ci_high": 0.84}
    assert _error(row, "ndcg@10_mean") == pytest.approx((0.03, 0.04))
    assert _error({"ndcg@10_mean": 0.8, "ndcg@10_ci_low": None, "ndcg@10_ci_high": None}, "ndcg@10_mean") is None


def test_plot_with_intervals_and_families(tmp_path):
    rows = [{"point": f"loss={n}", "ndcg@10_mean": q, "ndcg@10_ci_low": q - 0.01, "ndcg@10_ci_high": q + 0.01,
             "active_dims_doc_mean": d, "active_dims_doc_ci_low": d - 2, "active_dims_doc_ci_high": d + 2,
             "flops_mean": d / 30, "flops_ci_low": None, "flops_ci_high": None}
            for n, q, d in (("infonce", 0.82, 100), ("kl", 0.83, 101), ("marginmse", 0.84, 99))]
    rows.append({"point": "unfinished", "ndcg@10_mean": None, "active_dims_doc_mean": None, "flops_mean": None})
    path = plot_pareto(rows, tmp_path / "pareto.png", "t", "ndcg@10_mean", ("active_dims_doc_mean", "flops_mean"),
                       {r["point"]: r["point"] for r in rows})
    png = path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert [p.name for p in tmp_path.iterdir()] == ["pareto.png"]  # written atomically, no temporary left
