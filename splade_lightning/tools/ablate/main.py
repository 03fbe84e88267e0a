"""``splade-lightning ablate --base BASE.yaml --grid GRID.yaml --output DIR``: run every point of a grid
(resumable), then write ``DIR/results.md``, ``DIR/results.csv`` and ``DIR/pareto.png``.

Examples::

    splade-lightning ablate --base configs/splade/quickstart.yaml --grid GRID.yaml --output DIR
    splade-lightning ablate --base BASE.yaml --grid GRID.yaml --output DIR --jobs 4 --cuda_devices 0 1 2 3

Run from the repository root (configs name data paths relative to it). Per-point runs go under ``--runs_dir``
(default ``runs/ablation/<study name>``, git-ignored); finished points are skipped on a second call. The grid format
is described in ``experiments/README.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from splade_lightning.errors import ConfigError
from splade_lightning.formats.outputs import Input, check_file_output, check_not_input, config_inputs
from splade_lightning.tools.ablate.grid import load_study, read_yaml_mapping
from splade_lightning.tools.ablate.plot import pareto_front, plot_pareto
from splade_lightning.tools.ablate.results import RESULT_FILES, collect, finished_in, results_table, write_tables
from splade_lightning.tools.ablate.runner import RunFn, check_points, run_points, subprocess_runner


def load_base(path: Path) -> dict:
    """The base config as a mapping (checked before any point runs)."""
    return read_yaml_mapping(path, "--base", "a fit config YAML", "a mapping (a LightningCLI config)")


def check_outputs(args: argparse.Namespace, runs_dir: Path) -> None:
    """Before anything runs: the results files and the runs directory destroy no input (the base config, the grid,
    and the data and model paths the base config names)."""
    inputs = [Input(args.base, "--base"), Input(args.grid, "--grid"), *config_inputs(load_base(args.base))]
    check_not_input(runs_dir, "--runs_dir", inputs)
    for name in RESULT_FILES:
        check_file_output(args.output / name, "--output", overwrite=True, what=f"the study's {name}", inputs=inputs)


def missing_points(rows: list[dict]) -> list[str]:
    """Names of the points without a finished result."""
    return [row["point"] for row in rows if row.get("status") != "done"]


def check_not_fewer(output: Path, rows: list[dict], overwrite: bool) -> None:
    """Refuse to replace an existing ``results.csv`` that lists finished points the new results lack."""
    done_before = finished_in(output / "results.csv")
    lost = sorted(done_before - {row["point"] for row in rows if row.get("status") == "done"})
    if lost and not overwrite:
        raise ConfigError(f"--output {output / 'results.csv'} lists finished points this run has no result for "
                          f"({', '.join(lost[:5])}{' ...' if len(lost) > 5 else ''}); nothing was written. Pass "
                          "--overwrite to replace those results, or choose another --output")


def ablate(base: str, grid: str, output: str, runs_dir: str | None = None, jobs: int = 1,
           cuda_devices: list[str] | None = None, dataset: str = "mean", collect_only: bool = False,
           overwrite: bool = False) -> int:
    """Run every point of a grid of fit configurations (resumable), then write results.md, results.csv and
    pareto.png into --output.

    Args:
        base: the base fit config (e.g. configs/splade/quickstart.yaml).
        grid: the grid YAML (common overrides, crossed axes, explicit points).
        output: the directory that receives results.md, results.csv and pareto.png.
        runs_dir: the per-point run directories (default runs/ablation/<study name>).
        jobs: points run at once; each gets OMP_NUM_THREADS = CPUs / jobs unless the environment sets it.
        cuda_devices: CUDA device ids; job slot i gets CUDA_VISIBLE_DEVICES=cuda_devices[i % n] (e.g. 0 1 2 3 with
            --jobs 4).
        dataset: the evaluation set whose figures fill the table and the plot (default: the mean over the
            evaluation sets).
        collect_only: write the table and the plot from finished points without running anything (refused, writing
            nothing, while a point is unfinished).
        overwrite: rerun finished points whose base config or overrides changed, and let the results replace ones
            that list points this study no longer has.

    Returns:
        The number of failed or missing points (0: every point finished and the results were written).
    """
    return run_study(argparse.Namespace(**locals()))


def run_study(args: argparse.Namespace, run_fn: RunFn | None = None) -> int:
    """:func:`ablate` with the runner injectable (``run_fn`` replaces the ``fit`` subprocesses, for tests)."""
    args.base, args.grid, args.output = Path(args.base), Path(args.grid), Path(args.output)
    if args.jobs < 1:
        raise ConfigError(f"--jobs {args.jobs}: expected >= 1")
    base = load_base(args.base)
    study = load_study(args.grid)
    name, points, runs = study.name, study.points, study.runs()
    n_seeds = len(study.seeds or [None])
    runs_dir = Path(args.runs_dir) if args.runs_dir else Path("runs") / "ablation" / name
    check_outputs(args, runs_dir)
    devices = [str(d) for d in args.cuda_devices or []]
    start = time.monotonic()
    base_text = args.base.read_text(encoding="utf-8")
    if args.collect_only:
        check_points(runs, runs_dir, base_text, overwrite=False)
    else:
        run_points(runs, runs_dir, base, run_fn or subprocess_runner(args.base), args.jobs, devices,
                   base_text=base_text, overwrite=args.overwrite)
    rows = collect(study, runs_dir, args.dataset)
    front = pareto_front(rows, "active_dims_doc_mean", "ndcg@10_mean")
    missing = missing_points(rows)
    if missing:
        print(results_table(rows, front, n_seeds), flush=True)
        print(f"[ablate] {len(missing)} of {len(points)} points have no finished result under {runs_dir} ("
              f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}); the results in {args.output} were "
              "left as they are. Run the study (without --collect_only) to finish them", file=sys.stderr, flush=True)
        return len(missing)
    check_not_fewer(args.output, rows, args.overwrite)
    md_path, csv_path = write_tables(rows, args.output, front, n_seeds)
    png = plot_pareto(rows, args.output / "pareto.png", f"{name}: nDCG@10 ({args.dataset}) vs sparsity"
                      + (f", mean and 95% CI of {n_seeds} seeds" if n_seeds > 1 else ", single run per point"),
                      "ndcg@10_mean", ("active_dims_doc_mean", "flops_mean"), {p.name: p.family for p in points})
    print(f"[ablate] {len(points)} points ({len(runs)} runs) in {time.monotonic() - start:.0f} s; wrote {md_path}, "
          f"{csv_path}, {png}", flush=True)
    return 0

