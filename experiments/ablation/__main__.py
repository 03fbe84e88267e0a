"""``python -m experiments.ablation --base BASE.yaml --grid GRID.yaml --output DIR``: run every point of a grid
(resumable), then write ``DIR/results.md``, ``DIR/results.csv`` and ``DIR/pareto.png``.

Run from the repository root (configs name data paths relative to it). Per-point runs go under ``--runs-dir``
(default ``runs/ablation/<study name>``, git-ignored); finished points are skipped on a second call.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from splade_lightning.errors import ConfigError

from .grid import load_grid, read_yaml_mapping
from .plot import pareto_front, plot_pareto
from .results import collect, write_tables
from .runner import RunFn, run_points, subprocess_runner


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m experiments.ablation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, type=Path,
                        help="base fit config (e.g. configs/splade/quickstart.yaml)")
    parser.add_argument("--grid", required=True, type=Path, help="grid YAML (axes / points of overrides)")
    parser.add_argument("--output", required=True, type=Path, help="where results.md/.csv and pareto.png go")
    parser.add_argument("--runs-dir", type=Path, default=None,
                        help="per-point run directories (default runs/ablation/<study name>)")
    parser.add_argument("--jobs", type=int, default=1, help="points run at once (default 1)")
    parser.add_argument("--devices", default="", help="comma-separated CUDA device ids; job slot i gets "
                        "CUDA_VISIBLE_DEVICES=devices[i %% n] (e.g. 0,1,2,3 with --jobs 4)")
    parser.add_argument("--dataset", default="mean", help="evaluation set whose figures fill the table and plot "
                        "(default: mean over the evaluation sets)")
    parser.add_argument("--collect-only", action="store_true", help="write the table and plot from finished "
                        "points without running anything")
    return parser.parse_args(argv)


def load_base(path: Path) -> dict:
    """The base config as a mapping (checked before any point runs)."""
    return read_yaml_mapping(path, "--base", "a fit config YAML", "a mapping (a LightningCLI config)")


def main(argv: list[str] | None = None, run_fn: RunFn | None = None) -> int:
    """Entry point; ``run_fn`` replaces the subprocess runner (tests). Returns the number of failed points."""
    args = parse_args(argv)
    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: expected >= 1")
    base = load_base(args.base)
    name, points = load_grid(args.grid)
    runs_dir = args.runs_dir or Path("runs") / "ablation" / name
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    start = time.monotonic()
    failed = 0
    if not args.collect_only:
        status = run_points(points, runs_dir, base, run_fn or subprocess_runner(args.base), args.jobs, devices)
        failed = sum(s["state"] == "failed" for s in status.values())
    rows = collect(points, runs_dir, args.dataset)
    front = pareto_front(rows, "active_dims_doc")
    md_path, csv_path = write_tables(rows, args.output, front)
    png = plot_pareto(rows, args.output / "pareto.png", f"{name}: nDCG@10 ({args.dataset}) vs sparsity")
    print(f"[ablate] {len(points)} points ({failed} failed) in {time.monotonic() - start:.0f} s; wrote {md_path}, "
          f"{csv_path}, {png}", flush=True)
    return failed


if __name__ == "__main__":
    try:
        sys.exit(1 if main() else 0)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
