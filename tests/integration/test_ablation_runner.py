"""The ablation runner (``splade-lightning ablate``): grid expansion and validation, resume (finished points skipped, a
point killed mid-way rerun), job slots and devices, the results table/CSV and the Pareto plot. Points are run by an
injected fake runner (writes report.json and metrics.csv like ``fit``), except the override check (real CLI, no
training) and one slow end-to-end run."""

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from splade_lightning.errors import ConfigError
from splade_lightning.tools.ablate.grid import load_grid
from splade_lightning.tools.ablate.main import run_study
from splade_lightning.tools.ablate.plot import pareto_front
from splade_lightning.tools.ablate.runner import find_report, point_overrides, thread_env
from splade_lightning.tools.main import tool_parser

REPO = Path(__file__).resolve().parents[2]

QUICKSTART = REPO / "configs" / "splade" / "quickstart.yaml"
GRID = """
name: toy_study
x-anchors:
  cb: &cb [{class_path: splade_lightning.callbacks.SparsityMonitor}]
common: {eval_before_fit: false, trainer.max_steps: 3}
axes:
  lambda_d:
    1e-4: {model.init_args.doc_reg_weight: 1.0e-4}
    1e-3: {model.init_args.doc_reg_weight: 1.0e-3}
  warmup:
    "on": {}
    "off": {trainer.callbacks: *cb}
points:
  ctl: {trainer.callbacks: [{class_path: splade_lightning.callbacks.SparsityController, init_args: {doc_target: 9}}]}
"""
#: fake outcome per λ_d: (ndcg@10, active_dims_doc, flops); 1e-3 is sparser and worse, ctl dominates 1e-4
OUTCOME = {1e-4: (0.60, 300.0, 9.0), 1e-3: (0.50, 100.0, 2.0), None: (0.62, 110.0, 2.5)}
#: per-query nDCG@10 = the run's nDCG@10 + these offsets (mean 0): two points differ by the same amount on every query
OFFSETS = (-0.2, -0.1, -0.05, 0.0, 0.0, 0.05, 0.1, 0.2)


def main(argv: list[str], run_fn=None) -> int:
    """``splade-lightning ablate ARGV`` with the ``fit`` subprocesses replaced by ``run_fn``."""
    config = tool_parser("ablate").parse_args(argv)
    return run_study(argparse.Namespace(**{k: v for k, v in vars(config).items() if k != "config"}), run_fn)


def _write(tmp_path: Path, text: str = GRID) -> Path:
    path = tmp_path / "grid.yaml"
    path.write_text(text)
    return path


class FakeFit:
    """Writes what ``fit`` writes (report.json, metrics.csv) from the point's override.yaml; records calls."""

    def __init__(self, fail: set[str] = frozenset(), per_query: bool = True):
        self.calls: list[tuple[str, dict]] = []
        self.fail = fail
        self.per_query = per_query

    def __call__(self, point, point_dir, env):
        import yaml

        self.calls.append((point.run_name, env))
        overrides = yaml.safe_load((point_dir / "override.yaml").read_text())
        assert overrides["trainer"]["default_root_dir"] == str(point_dir)
        if point.name in self.fail:
            return 1
        lam = overrides.get("model", {}).get("init_args", {}).get("doc_reg_weight")
        ndcg, dims, flops = OUTCOME[lam]
        ndcg += 0.01 * overrides.get("seed_everything", 0)  # seed noise: +0.01 per seed number
        log_dir = point_dir / "csv" / "version_0"
        log_dir.mkdir(parents=True)
        (log_dir / "metrics.csv").write_text("step,train/active_dims_doc,train/reg_weight_doc\n0,500,0.1\n"
                                             f"1,{dims - 1},0.2\n")
        metrics = {"ndcg@10": ndcg, "mrr@10": ndcg, "recall@100": 0.9, "active_dims_query": 20.0,
                   "active_dims_doc": dims, "flops": flops}
        if self.per_query:
            (log_dir / "per_query.json").write_text(json.dumps({"hotpotqa-dev": {"ndcg@10": {
                f"q{i}": ndcg + offset for i, offset in enumerate(OFFSETS)}}}))
        (log_dir / "report.json").write_text(json.dumps({"zero_shot": None, "fine_tuned": {
            "hotpotqa-dev": metrics, "mean": metrics}}))
        return 0


def _run(tmp_path, fake, *extra):
    return main(["--base", str(QUICKSTART), "--grid", str(_write(tmp_path)), "--output", str(tmp_path / "out"),
                 "--runs_dir", str(tmp_path / "runs"), *extra], run_fn=fake)


def test_grid_expansion(tmp_path):
    name, points = load_grid(_write(tmp_path))
    assert name == "toy_study"
    assert [p.name for p in points] == ["ctl", "lambda_d=1e-4,warmup=on", "lambda_d=1e-4,warmup=off",
                                        "lambda_d=1e-3,warmup=on", "lambda_d=1e-3,warmup=off"]
    by_name = {p.name: p for p in points}
    off = by_name["lambda_d=1e-3,warmup=off"]
    assert off.dirname == "lambda_d-1e-3__warmup-off"
    assert off.labels == {"lambda_d": "1e-3", "warmup": "off"}
    assert off.overrides["model"]["init_args"]["doc_reg_weight"] == 1e-3
    assert off.overrides["trainer"] == {"max_steps": 3, "callbacks": [
        {"class_path": "splade_lightning.callbacks.SparsityMonitor"}]}
    assert "callbacks" not in by_name["lambda_d=1e-4,warmup=on"].overrides["trainer"]  # base list kept
    assert by_name["ctl"].overrides["eval_before_fit"] is False


@pytest.mark.parametrize(("text", "match"), [
    ("axes: {a: {x: 1}}", r"axes.a.x: expected a mapping"),
    ("axes: {a: {}}", r"axes.a: expected a non-empty mapping"),
    ("colour: red\npoints: {p: {}}", r"unknown key 'colour'"),
    ("points: {p: {model..lr: 1}}", r"points.p: override key 'model..lr'"),
    ("points: {p: {a: 1, a.b: 2}}", r"goes inside 'a'"),
    ("points: {'bad name': {}}", r"name 'bad name'"),
    ("name: s", r"no points"),
    ("axes: [1, 2]", r"'axes': expected a mapping"),
    ("points: {p: {}}\nseeds: [0, 0]", r"'seeds': expected a non-empty list of distinct integers"),
    ("points: {p: {}}\nseeds: 3", r"'seeds': expected a non-empty list"),
    ("points: {p: {seed_everything: 1}}\nseeds: [0, 1]", r"point\(s\) p also set it"),
    ("points: {p: {}}\nbaseline: q", r"'baseline': 'q' is not a point of the grid"),
])
def test_grid_errors_name_file_and_key(tmp_path, text, match):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError, match=match) as info:
        load_grid(path)
    assert str(path) in str(info.value)


def test_bad_grid_runs_nothing(tmp_path):
    fake = FakeFit()
    with pytest.raises(ConfigError):
        main(["--base", str(QUICKSTART), "--grid", str(_write(tmp_path, "axes: {a: {x: 1}}")), "--output",
              str(tmp_path / "out")], run_fn=fake)
    with pytest.raises(ConfigError, match="--base"):
        main(["--base", str(tmp_path / "missing.yaml"), "--grid", str(_write(tmp_path)), "--output",
              str(tmp_path / "out")], run_fn=fake)
    assert fake.calls == []


def test_runs_collects_and_resumes(tmp_path):
    fake = FakeFit()
    assert _run(tmp_path, fake) == 0
    assert len(fake.calls) == 5

    out = tmp_path / "out"
    rows = list(csv.DictReader(open(out / "results.csv", newline="")))
    by_point = {r["point"]: r for r in rows}
    assert float(by_point["ctl"]["ndcg@10_mean"]) == 0.62
    assert by_point["ctl"]["n_seeds"] == "1"  # a single-seed grid: no spread
    assert [by_point["ctl"][f"ndcg@10_{s}"] for s in ("std", "ci_low", "ci_high")] == ["", "", ""]
    assert "p_vs_baseline" not in by_point["ctl"]  # no baseline declared
    assert float(by_point["lambda_d=1e-3,warmup=on"]["active_dims_doc_mean"]) == 100.0
    assert float(by_point["lambda_d=1e-3,warmup=on"]["train/active_dims_doc_mean"]) == 99.0  # last logged value
    assert float(by_point["lambda_d=1e-3,warmup=on"]["train/active_dims_doc_last10_mean"]) == (500 + 99) / 2
    assert by_point["lambda_d=1e-4,warmup=off"]["lambda_d"] == "1e-4"
    assert all(r["status"] == "done" for r in rows)
    table = (out / "results.md").read_text()
    assert table.startswith("Single run per point")
    assert table.count("\n") == 2 + 2 + 5 and "| ndcg@10 |" in table and "±" not in table
    front_rows = [line for line in table.splitlines() if line.rstrip().endswith("| * |")]
    assert sorted(line.split("|")[1].strip() for line in front_rows) == [
        "ctl", "lambda_d=1e-3,warmup=off", "lambda_d=1e-3,warmup=on"]
    png = (out / "pareto.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000

    # resume: finished points are skipped; a point killed mid-way (no report.json) is cleared and rerun
    killed = tmp_path / "runs" / "lambda_d-1e-3__warmup-on"
    next(killed.rglob("report.json")).unlink()
    (killed / "stale.txt").write_text("left by the killed attempt")
    fake2 = FakeFit()
    assert _run(tmp_path, fake2) == 0
    assert [name for name, _ in fake2.calls] == ["lambda_d=1e-3,warmup=on"]
    assert not (killed / "stale.txt").exists() and find_report(killed) is not None


SEEDED = GRID + "seeds: [0, 1]\nbaseline: lambda_d=1e-4,warmup=on\n"


def test_seeds_run_each_point_per_seed_and_summarise_with_baseline_tests(tmp_path):
    import yaml

    fake = FakeFit()
    args = ["--base", str(QUICKSTART), "--grid", str(_write(tmp_path, SEEDED)), "--output", str(tmp_path / "out"),
            "--runs_dir", str(tmp_path / "runs")]
    assert main(args, run_fn=fake) == 0
    # seed-major: every point with seed 0, then every point with seed 1; each run in <point>/seed-<s>
    assert [name for name, _ in fake.calls][:2] == ["ctl/seed-0", "lambda_d=1e-4,warmup=on/seed-0"]
    assert len(fake.calls) == 10 and fake.calls[5][0] == "ctl/seed-1"
    override = yaml.safe_load((tmp_path / "runs" / "ctl" / "seed-1" / "override.yaml").read_text())
    assert override["seed_everything"] == 1

    rows = {r["point"]: r for r in csv.DictReader(open(tmp_path / "out" / "results.csv", newline=""))}
    ctl = rows["ctl"]
    # ndcg 0.62 (seed 0) and 0.63 (seed 1): mean 0.625, s = 0.01 / sqrt(2), half-width t_{0.975,1} * s / sqrt(2)
    half = 12.706205 * (0.01 / 2 ** 0.5) / 2 ** 0.5
    assert ctl["n_seeds"] == "2" and float(ctl["ndcg@10_mean"]) == pytest.approx(0.625)
    assert float(ctl["ndcg@10_std"]) == pytest.approx(0.01 / 2 ** 0.5)
    assert float(ctl["ndcg@10_ci_low"]) == pytest.approx(0.625 - half, abs=1e-6)
    assert float(ctl["ndcg@10_ci_high"]) == pytest.approx(0.625 + half, abs=1e-6)
    assert ctl["active_dims_doc_std"] == "0.0"
    # per query, ctl is 0.02 above the baseline on all 8 queries: exact randomisation p = 2 / 2**8; Holm over the 4
    # comparisons multiplies the three smallest (equal) p-values by 4, 3, 2 -> all 4 * 2/256 after the running max
    assert float(ctl["p_vs_baseline"]) == pytest.approx(2 / 256)
    assert float(ctl["p_holm_vs_baseline"]) == pytest.approx(4 * 2 / 256) and ctl["significant_vs_baseline"] == "True"
    same = rows["lambda_d=1e-4,warmup=off"]  # the same outcome as the baseline: p = 1
    assert float(same["p_vs_baseline"]) == 1.0 and same["significant_vs_baseline"] == "False"
    assert rows["lambda_d=1e-4,warmup=on"]["p_vs_baseline"] == ""  # the baseline itself
    table = (tmp_path / "out" / "results.md").read_text()
    assert table.startswith("Mean ± half-width of the 95% Student-t confidence interval over 2 seeds")
    assert f"| 0.6250 ± {half:.4f} |" in table

    # resume per (point, seed): only the run killed mid-way reruns; a third seed runs only the new runs
    next((tmp_path / "runs" / "ctl" / "seed-1").rglob("report.json")).unlink()
    fake2 = FakeFit()
    assert main(args, run_fn=fake2) == 0
    assert [name for name, _ in fake2.calls] == ["ctl/seed-1"]
    _write(tmp_path, SEEDED.replace("seeds: [0, 1]", "seeds: [0, 1, 2]"))
    fake3 = FakeFit()
    assert main(args, run_fn=fake3) == 0
    assert [name for name, _ in fake3.calls] == [f"{p}/seed-2" for p in rows]
    assert next(csv.DictReader(open(tmp_path / "out" / "results.csv", newline="")))["n_seeds"] == "3"


def test_without_per_query_scores_the_baseline_columns_stay_empty(tmp_path):
    assert main(["--base", str(QUICKSTART), "--grid", str(_write(tmp_path, SEEDED)), "--output",
                 str(tmp_path / "out"), "--runs_dir", str(tmp_path / "runs")], run_fn=FakeFit(per_query=False)) == 0
    rows = list(csv.DictReader(open(tmp_path / "out" / "results.csv", newline="")))
    assert all(r["p_vs_baseline"] == r["significant_vs_baseline"] == "" for r in rows)
    assert all(r["n_seeds"] == "2" and r["ndcg@10_ci_low"] for r in rows)


def test_failed_point_is_reported_and_rerun(tmp_path, capsys):
    assert _run(tmp_path, FakeFit(fail={"ctl"})) == 1
    captured = capsys.readouterr()
    assert "| ctl |" in captured.out and "missing" in captured.out  # the table is printed ...
    assert "1 of 5 points have no finished result" in captured.err and "(ctl)" in captured.err
    assert not (tmp_path / "out").exists()  # ... but no partial results are written
    fake = FakeFit()
    assert _run(tmp_path, fake) == 0
    assert [name for name, _ in fake.calls] == ["ctl"]
    rows = {r["point"]: r for r in csv.DictReader(open(tmp_path / "out" / "results.csv", newline=""))}
    assert all(row["status"] == "done" for row in rows.values()) and len(rows) == 5


def test_parallel_jobs_use_distinct_devices(tmp_path, monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    lock, running, overlap = threading.Lock(), {}, []
    fake = FakeFit()

    def slow(point, point_dir, env):
        device = env["CUDA_VISIBLE_DEVICES"]
        with lock:
            overlap.append(device in running.values())
            running[point.name] = device
        time.sleep(0.05)
        with lock:
            del running[point.name]
        return fake(point, point_dir, env)

    assert main(["--base", str(QUICKSTART), "--grid", str(_write(tmp_path)), "--output", str(tmp_path / "out"),
                 "--runs_dir", str(tmp_path / "runs"), "--jobs", "2", "--cuda_devices", "0", "1"], run_fn=slow) == 0
    assert len(fake.calls) == 5 and not any(overlap)
    assert {env["CUDA_VISIBLE_DEVICES"] for _, env in fake.calls} == {"0", "1"}
    assert {env["OMP_NUM_THREADS"] for _, env in fake.calls} == {str(max(1, (os.cpu_count() or 1) // 2))}


def test_results_never_replaced_by_fewer(tmp_path, capsys):
    assert _run(tmp_path, FakeFit()) == 0
    first = (tmp_path / "out" / "results.csv").read_bytes()
    smaller = tmp_path / "grid.yaml"
    smaller.write_text(GRID.replace("points:\n  ctl:", "x-unused:\n  ctl:"))  # the study loses its "ctl" point
    with pytest.raises(ConfigError, match=r"lists finished points this run has no result for \(ctl\)"):
        main(["--base", str(QUICKSTART), "--grid", str(smaller), "--output", str(tmp_path / "out"), "--runs_dir",
              str(tmp_path / "runs")], run_fn=FakeFit())
    assert (tmp_path / "out" / "results.csv").read_bytes() == first
    assert main(["--base", str(QUICKSTART), "--grid", str(smaller), "--output", str(tmp_path / "out"), "--runs_dir",
                 str(tmp_path / "runs"), "--overwrite"], run_fn=FakeFit()) == 0
    assert "ctl" not in (tmp_path / "out" / "results.csv").read_text()


def test_changed_point_is_refused_then_rerun_with_overwrite(tmp_path):
    assert _run(tmp_path, FakeFit()) == 0
    (tmp_path / "grid.yaml").write_text(GRID.replace("doc_target: 9", "doc_target: 12"))
    fake = FakeFit()
    args = ["--base", str(QUICKSTART), "--grid", str(tmp_path / "grid.yaml"), "--output", str(tmp_path / "out"),
            "--runs_dir", str(tmp_path / "runs")]
    with pytest.raises(ConfigError, match=r"1 finished point\(s\) were run with another base config or other "
                                          r"overrides \(ctl\)"):
        main(args, run_fn=fake)
    assert fake.calls == []
    assert main([*args, "--overwrite"], run_fn=fake) == 0
    assert [name for name, _ in fake.calls] == ["ctl"]


def test_runner_deletes_no_directory_it_did_not_write(tmp_path):
    runs = tmp_path / "runs" / "ctl"
    runs.mkdir(parents=True)
    (runs / "precious.txt").write_text("mine")
    with pytest.raises(ConfigError, match="precious.txt"):
        _run(tmp_path, FakeFit())
    assert (runs / "precious.txt").read_text() == "mine"
    shutil.copy(QUICKSTART, tmp_path / "runs" / "base.yaml")
    with pytest.raises(ConfigError, match="--runs_dir .* contains --base"):
        main(["--base", str(tmp_path / "runs" / "base.yaml"), "--grid", str(_write(tmp_path)), "--output",
              str(tmp_path / "out"), "--runs_dir", str(tmp_path / "runs")], run_fn=FakeFit())


def test_concurrent_points_share_the_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert thread_env(1, cpus=8) == {}
    assert thread_env(2, cpus=8) == {"OMP_NUM_THREADS": "4"}
    assert thread_env(4, cpus=2) == {"OMP_NUM_THREADS": "1"}
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice wins
    assert thread_env(2, cpus=8) == {}


def test_pareto_front():
    rows = [{"point": "a", "active_dims_doc": 100, "ndcg@10": 0.5}, {"point": "b", "active_dims_doc": 200,
            "ndcg@10": 0.6}, {"point": "c", "active_dims_doc": 250, "ndcg@10": 0.55},
            {"point": "d", "active_dims_doc": 100, "ndcg@10": 0.45}, {"point": "e", "active_dims_doc": None}]
    assert pareto_front(rows, "active_dims_doc") == {"a", "b"}


def test_generated_override_instantiates_with_the_real_cli(tmp_path, monkeypatch, tiny_bert_dir):
    """The override YAML a point gets is accepted by ``fit --config BASE --config OVERRIDE`` (parsed and
    instantiated, no training), and its log directory is the point's."""
    import yaml

    from splade_lightning.tools.lightning_cli import SpladeCLI

    _, points = load_grid(_write(tmp_path))
    point = next(p for p in points if p.name == "ctl")
    point_dir = tmp_path / "runs" / point.dirname
    overrides = point_overrides(point, point_dir, yaml.safe_load(QUICKSTART.read_text()))
    overrides["model"] = {"init_args": {"encoder": {"init_args": {"backbone": tiny_bert_dir}}}}
    override = tmp_path / "override.yaml"
    override.write_text(yaml.safe_dump(overrides))
    monkeypatch.chdir(REPO)
    cli = SpladeCLI(args=["--config", str(QUICKSTART), "--config", str(override)], run=False)
    assert cli.trainer.default_root_dir == str(point_dir)
    assert cli.trainer.logger.save_dir == str(point_dir)
    assert [type(c).__name__ for c in cli.trainer.callbacks if type(c).__name__ == "SparsityController"]


@pytest.mark.slow
def test_end_to_end_subprocess(tmp_path, tiny_bert_dir, toy_triplets, toy_beir):
    """One real point through ``splade-lightning ablate`` (subprocess fit on toy data)."""
    grid = _write(tmp_path, f"""
name: e2e
common:
  eval_before_fit: false
  trainer.max_steps: 2
  model.init_args.encoder.init_args.backbone: {tiny_bert_dir}
  data.init_args.train.init_args.files: [{toy_triplets}]
  data.init_args.val_sets: [{{path: {toy_beir}, split: test, name: toy}}]
  data.init_args.batch_size: 4
  data.init_args.max_doc_length: 16
  data.init_args.eval_max_doc_length: 16
points:
  only: {{}}
""")
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-m", "splade_lightning", "ablate", "--base", str(QUICKSTART), "--grid", str(grid),
                    "--output", str(out), "--runs_dir", str(tmp_path / "runs")], cwd=REPO, check=True)
    row = next(csv.DictReader(open(out / "results.csv", newline="")))
    assert row["status"] == "done" and 0.0 <= float(row["ndcg@10_mean"]) <= 1.0
