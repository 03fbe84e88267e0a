"""IDF table comparison and the ``idf`` subcommand (compute a corpus table, compare tables, argument checks)."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import write_jsonl

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.formats.idf_json import read_idf_json
from splade_lightning.idf import compare_idf, format_comparison
from splade_lightning.idf.compare import rank_average, spearman
from splade_lightning.tools import idf as idf_tool
from splade_lightning.tools.main import main, run_tool

A = {"x": 1.0, "y": 2.0, "z": 3.0, "w": 4.0, "only_a": 5.0}
B = {"x": 1.5, "y": 1.0, "z": 3.0, "w": 6.0, "only_b": 0.0}  # b - a: x +0.5, y -1, z 0, w +2
ROWS = [
    {"_id": "d1", "title": "Zebra", "text": "the cat sat on the mat"},
    {"_id": "d2", "title": "", "text": "the dog ran"},
    {"_id": "d3", "text": "a red cat"},
    {"_id": "d4", "title": "Piano", "text": "a dog and a dog"},
]


def test_compare_idf_by_hand():
    cmp = compare_idf(A, B, top=2)
    assert (cmp.common, cmp.only_a, cmp.only_b) == (4, 1, 1)
    assert cmp.mean_abs_delta == pytest.approx(3.5 / 4, abs=1e-12)
    assert cmp.spearman == pytest.approx(1 - 6 * 2 / (4 * 15), abs=1e-12)  # ranks a 1234, b 2134
    assert cmp.over == [("w", 4.0, 6.0), ("x", 1.0, 1.5)]
    assert cmp.under == [("y", 2.0, 1.0), ("z", 3.0, 3.0)]


def test_compare_idf_restricted_to_tokens():
    cmp = compare_idf(A, B, tokens={"x", "y", "only_a"})
    assert (cmp.common, cmp.only_a, cmp.only_b) == (2, 1, 0)
    assert cmp.mean_abs_delta == pytest.approx(0.75, abs=1e-12)
    assert [t for t, _, _ in cmp.over] == ["x", "y"] and [t for t, _, _ in cmp.under] == ["y", "x"]


def test_compare_idf_no_common_tokens():
    with pytest.raises(ConfigError, match="no token in common"):
        compare_idf({"a": 1.0}, {"b": 1.0})
    with pytest.raises(ConfigError, match="no token in common among the selected tokens"):
        compare_idf(A, B, tokens={"only_a"})


def test_spearman_with_ties_by_hand():
    assert rank_average(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]
    # ranks a = [1, 2.5, 2.5, 4], b = [1, 3, 2, 4]; centred: [-1.5, 0, 0, 1.5] and [-1.5, .5, -.5, 1.5]
    assert spearman(np.array([1.0, 2, 2, 3]), np.array([1.0, 3, 2, 4])) == pytest.approx(4.5 / math.sqrt(4.5 * 5))
    assert math.isnan(spearman(np.ones(3), np.arange(3.0)))


def test_format_comparison():
    text = format_comparison(compare_idf(A, B, top=1), name_a="os.json", name_b="mine.json")
    assert "a = os.json, b = mine.json" in text
    assert "common tokens: 4   only in a: 1   only in b: 1" in text
    assert "mean |b - a|: 0.8750   Spearman rank correlation: 0.8000" in text
    lines = text.splitlines()
    assert lines[lines.index(next(x for x in lines if "weights up" in x)) + 2].split() == ["w", "4.000", "6.000",
                                                                                           "+2.000"]
    assert lines[-1].split() == ["y", "2.000", "1.000", "-1.000"]


@pytest.fixture(scope="module")
def tok(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


@pytest.fixture()
def corpus(tmp_path) -> Path:
    return write_jsonl(tmp_path / "corpus.jsonl", ROWS)


def test_cli_writes_table(corpus, tmp_path, capsys, tok):
    out = tmp_path / "new" / "idf.json"
    assert run_tool("idf", ["--corpus", str(corpus), "--output", str(out), "--no_progress", "--batch_size", "2"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote 30522 tokens from 4 documents to {out}"
    table = read_idf_json(out)
    assert list(table) == tok.convert_ids_to_tokens(list(range(len(tok))))  # every token, in id order
    assert table["the"] == pytest.approx(math.log(5 / 3) + 1, abs=1e-12)
    assert table["violin"] == pytest.approx(math.log(5) + 1, abs=1e-12)


def test_cli_compare_against_reference(corpus, tmp_path, capsys):
    ref = tmp_path / "ref.json"
    ref.write_text(json.dumps({"the": 1.0, "cat": 1.0, "zebra": 1.0, "violin": 5.0}))
    args = ["--corpus", str(corpus), "--output", str(tmp_path / "idf.json"), "--compare", str(ref), "--no_progress"]
    assert run_tool("idf", args + ["--top", "1"]) == 0
    text = capsys.readouterr().out
    assert "common tokens: 3   only in a: 0" in text  # violin (df 0) is left out
    assert "zebra" in text and "violin" not in text
    assert run_tool("idf", args + ["--min_df", "2", "--overwrite"]) == 0
    text = capsys.readouterr().out
    assert "comparing tokens with df >= 2" in text and "common tokens: 2   only in a: 0" in text
    assert "zebra" not in text


def test_cli_compare_two_tables(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(A))
    b.write_text(json.dumps(B))
    assert run_tool("idf", ["--compare", str(a), str(b), "--top", "2"]) == 0
    text = capsys.readouterr().out
    assert f"a = {a}, b = {b}" in text and "mean |b - a|: 0.8750" in text


@pytest.fixture()
def no_work(monkeypatch):
    """Fail the test if the tokenizer is loaded or the corpus is read."""
    def boom(*args, **kwargs):
        raise AssertionError("expensive work started before the arguments were checked")

    monkeypatch.setattr(idf_tool, "load_tokenizer", boom)
    monkeypatch.setattr(idf_tool, "corpus_idf", boom)


@pytest.mark.parametrize("argv", [
    ["--corpus", "c.jsonl"],                               # no --output
    [],                                                    # nothing to do
    ["--compare", "a.json"],                               # one table without --corpus
    ["--corpus", "c.jsonl", "--output", "o.json", "--compare", "a.json", "b.json"],
    ["--compare", "a.json", "b.json", "c.json"],
    ["--compare", "a.json", "b.json", "--output", "o.json"],
    ["--batch_size", "x"],
])
def test_cli_usage_errors(argv, no_work):
    assert main(["idf", *argv]) == 2


def test_cli_checks_before_work(tmp_path, corpus, no_work):
    out = str(tmp_path / "idf.json")
    with pytest.raises(DataError, match="corpus not found"):
        run_tool("idf", ["--corpus", str(tmp_path / "missing.jsonl"), "--output", out])
    with pytest.raises(ConfigError, match="--batch_size must be >= 1, got 0"):
        run_tool("idf", ["--corpus", str(corpus), "--output", out, "--batch_size", "0"])
    with pytest.raises(ConfigError, match="contains --corpus"):
        run_tool("idf", ["--corpus", str(corpus), "--output", str(tmp_path)])
    (tmp_path / "sub").mkdir()
    with pytest.raises(ConfigError, match="is a directory"):
        run_tool("idf", ["--corpus", str(corpus), "--output", str(tmp_path / "sub")])
    (tmp_path / "bad.json").write_text("[1, 2]")
    with pytest.raises(DataError, match="got list"):
        run_tool("idf", ["--corpus", str(corpus), "--output", out, "--compare", str(tmp_path / "bad.json")])
    with pytest.raises(DataError, match="IDF table not found"):
        run_tool("idf", ["--compare", str(tmp_path / "none.json"), str(tmp_path / "bad.json")])
    assert not Path(out).exists()
