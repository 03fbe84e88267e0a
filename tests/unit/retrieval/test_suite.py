"""Suite detection, mean row and table formatting."""

import pytest

from splade_lightning.errors import ConfigError
from splade_lightning.formats.beir_files import beir_dirs
from splade_lightning.retrieval.evaluation import mean_over_datasets
from splade_lightning.tools.evaluate import format_table


def _beir(path):
    path.mkdir(parents=True)
    (path / "corpus.jsonl").write_text("")
    return path


def test_single_dir_and_suite_detection(tmp_path):
    single = _beir(tmp_path / "one")
    assert beir_dirs(single) == ([single], False)
    suite = tmp_path / "suite"
    b, a = _beir(suite / "b"), _beir(suite / "a")
    (suite / "notes").mkdir()
    (suite / "README.md").write_text("x")
    assert beir_dirs(suite) == ([a, b], True)


def test_detection_errors(tmp_path):
    with pytest.raises(ConfigError, match="not a directory"):
        beir_dirs(tmp_path / "missing")
    (tmp_path / "empty" / "child").mkdir(parents=True)
    with pytest.raises(ConfigError, match="none of its subfolders"):
        beir_dirs(tmp_path / "empty")


def test_mean_and_table():
    rows = {"a": {"ndcg@10": 0.5, "active_dims_doc": 10.0}, "b": {"ndcg@10": 0.7, "active_dims_doc": 20.0}}
    mean = mean_over_datasets(rows, ["ndcg@10", "active_dims_doc"])
    assert mean == pytest.approx({"ndcg@10": 0.6, "active_dims_doc": 15.0})
    table = format_table({**rows, "mean": mean}, ["ndcg@10", "active_dims_doc", "flops"])
    assert table.splitlines()[0] == "| dataset | ndcg@10 | active_dims_doc | flops |"
    assert "| mean | 0.6000 | 15.0 | - |" in table
