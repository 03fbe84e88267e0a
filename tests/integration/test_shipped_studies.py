"""The shipped studies reproduce: ``ablate --collect_only`` on each study's kept per-run results (``runs/``: the
reports, per-query scores, logged metrics and manifests of every (point, seed) run, without checkpoints or models)
rewrites its results.md and results.csv byte for byte, and refuses, writing nothing, without them."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from splade_lightning.tools.ablate.main import run_study
from splade_lightning.tools.main import tool_parser

REPO = Path(__file__).resolve().parents[2]
#: (study directory, --dataset, output directory relative to the study): the tables each study's README shows
TABLES = [
    ("experiments/2026-11-24_sparsity_controller", "mean", "."),
    ("experiments/2026-12-03_distillation_at_equal_sparsity", "hotpotqa-dev", "hotpotqa-dev"),
    ("experiments/2026-12-03_distillation_at_equal_sparsity", "msmarco-trecdl-5k", "msmarco-trecdl-5k"),
]


def main(argv: list[str]) -> int:
    """``splade-lightning ablate ARGV`` in-process (``--collect_only`` runs no fit)."""
    config = tool_parser("ablate").parse_args(argv)
    return run_study(argparse.Namespace(**{k: v for k, v in vars(config).items() if k != "config"}))


@pytest.mark.parametrize("study, dataset, output", TABLES)
def test_collect_only_reproduces_the_committed_tables(study, dataset, output, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the kept reports are named by paths relative to the repository root
    out = tmp_path / "out"
    code = main(["--base", f"{study}/base.yaml", "--grid", f"{study}/grid.yaml", "--output", str(out),
                 "--runs_dir", f"{study}/runs", "--dataset", dataset, "--collect_only"])
    assert code == 0
    committed = REPO / study / output
    for name in ("results.md", "results.csv"):
        assert (out / name).read_bytes() == (committed / name).read_bytes(), f"{study}/{output}/{name}"
    assert (out / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_collect_only_without_the_kept_runs_writes_nothing(tmp_path, capsys):
    """Without its per-run results, ``--collect_only`` on a copy of the study must refuse (exit = the number of
    unfinished points) and leave the committed results byte-identical, not replace them with an empty table."""
    study = tmp_path / "study"
    shutil.copytree(REPO / TABLES[0][0], study, ignore=shutil.ignore_patterns("runs"))
    before = {p: p.read_bytes() for p in study.rglob("*") if p.is_file()}
    code = main(["--base", str(study / "base.yaml"), "--grid", str(study / "grid.yaml"), "--output", str(study),
                 "--runs_dir", str(tmp_path / "runs"), "--collect_only"])
    assert code == 6
    assert "6 of 6 points have no finished result" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in study.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "runs").exists()


def test_the_distillation_studys_secondary_tests_are_the_ones_its_readme_shows(capsys):
    """``secondary_tests.py`` (MRR@10 and Recall@100 against InfoNCE, from the kept per-query scores) prints the rows
    of the README's secondary table."""
    import runpy

    study = REPO / "experiments/2026-12-03_distillation_at_equal_sparsity"
    runpy.run_path(str(study / "secondary_tests.py"), run_name="__main__")
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    assert len(printed) == 14  # header, rule, 12 comparisons
    readme = (study / "README.md").read_text().splitlines()
    assert [line for line in printed if line in readme] == printed
