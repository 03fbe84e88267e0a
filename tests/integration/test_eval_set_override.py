"""A list of evaluation sets given on the command line or in a later ``--config`` replaces the config's list whole:
jsonargparse would otherwise fill each item's omitted fields from the earlier item at the same position (a second
set silently inheriting ``min_relevance: 2`` from the quickstart's msmarco entry)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = REPO / "configs" / "splade" / "quickstart.yaml"
SETS = "[{path: data/hotpotqa-500, split: dev, name: a}, {path: data/msmarco-trecdl-5k, name: b}]"


def sets_of(args: list[str]):
    from splade_lightning.tools.lightning_cli import SpladeCLI

    cli = SpladeCLI(args=["--config", str(QUICKSTART), *args], run=False)
    return cli.datamodule.sets["validate"]


@pytest.mark.parametrize("how", ["flag", "config"])
def test_a_later_list_replaces_the_earlier_one(tmp_path, monkeypatch, how):
    monkeypatch.chdir(REPO)
    if how == "flag":
        args = [f"--data.init_args.val_sets={SETS}"]
    else:
        overlay = tmp_path / "sets.yaml"
        overlay.write_text(f"data:\n  init_args:\n    val_sets: {SETS}\n")
        args = ["--config", str(overlay)]
    a, b = sets_of(args)
    assert (a.name, a.split, a.min_relevance) == ("a", "dev", 1)
    assert (b.name, b.split, b.min_relevance, b.max_queries) == ("b", "test", 1, None)  # the defaults, not the config's


def test_a_bad_key_is_named_with_the_flag(monkeypatch, capsys):
    from splade_lightning.tools.main import main

    monkeypatch.chdir(REPO)
    bad = "--data.init_args.val_sets=[{path: data/hotpotqa-500, split: dev}, {path: x, bogus: 1}]"
    assert main(["validate", "--config", str(QUICKSTART), bad]) == 2
    err = capsys.readouterr().err
    assert "--data.init_args.val_sets[1]: BeirSet.__init__() got an unexpected keyword argument 'bogus'" in err
    assert "expected keys path, split, name, min_relevance, max_queries" in err and "Traceback" not in err
