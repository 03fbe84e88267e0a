"""Training-record readers: JSONL / TSV / parquet / HF datasets dir, and every bad-input case."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write_jsonl

from splade_lightning.data import read_train_records
from splade_lightning.errors import DataError, DataErrors

ROWS = [{"query": "q one", "pos": ["p one", "p two"], "neg": ["n one"]},
        {"query": "q two", "pos": "p three", "neg": []}]


def read(path, **kw):
    kw.setdefault("negative_columns", ["neg"])
    return read_train_records([path], **kw)


def errors_of(path, **kw) -> list[DataError]:
    with pytest.raises(DataErrors) as info:
        read(path, **kw)
    return info.value.errors


def test_jsonl_good(tmp_path):
    records = read(write_jsonl(tmp_path / "t.jsonl", ROWS))
    assert [r.query for r in records] == ["q one", "q two"]
    assert records[0].positives == ("p one", "p two") and records[0].negatives == ("n one",)
    assert records[1].positives == ("p three",) and records[1].negatives == ()
    assert records[1].source.endswith("t.jsonl") and records[1].line == 2


def test_blank_lines_are_skipped_and_line_numbers_kept(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n\n" + json.dumps(ROWS[1]) + "\n")
    assert [r.line for r in read(path)] == [1, 3]


def test_st_style_string_negative_columns(tmp_path):
    rows = [{"anchor": "a", "positive": "p", "negative_1": "n1", "negative_2": "n2"}]
    records = read(write_jsonl(tmp_path / "t.jsonl", rows), query_column="anchor", positive_column="positive",
                   negative_columns=["negative_1", "negative_2"])
    assert records[0].negatives == ("n1", "n2")


def test_tsv(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("query\tpos\tneg\nq one\tp one\tn one\nq two\tp two\tn two\n")
    records = read(path)
    assert [(r.query, r.positives, r.negatives, r.line) for r in records] == [
        ("q one", ("p one",), ("n one",), 2), ("q two", ("p two",), ("n two",), 3)]


def test_tsv_wrong_field_count(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("query\tpos\tneg\nq one\tp one\n")
    (error,) = errors_of(path)
    assert error.line == 2 and "expected 3 tab-separated fields" in str(error) and str(path) in str(error)


def test_parquet_and_hf_dir(tmp_path):
    import datasets

    ds = datasets.Dataset.from_list(ROWS[:1] + [{"query": "q two", "pos": ["p three"], "neg": ["n two"]}])
    ds.to_parquet(str(tmp_path / "t.parquet"))
    ds.save_to_disk(str(tmp_path / "hf"))
    for path in (tmp_path / "t.parquet", tmp_path / "hf"):
        records = read(path)
        assert [r.query for r in records] == ["q one", "q two"] and records[1].line == 2
        assert records[0].positives == ("p one", "p two")


def test_hf_dataset_dict_is_an_error(tmp_path):
    import datasets

    datasets.DatasetDict({"train": datasets.Dataset.from_list(ROWS[:1])}).save_to_disk(str(tmp_path / "dd"))
    (error,) = errors_of(tmp_path / "dd")
    assert "DatasetDict" in str(error) and "train" in str(error)


def test_missing_file_names_path_and_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (error,) = errors_of(Path("nope.jsonl"))
    assert "nope.jsonl" in str(error) and "not found" in str(error) and str(tmp_path) in str(error)


def test_unsupported_suffix(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("x")
    (error,) = errors_of(path)
    assert ".csv" in str(error) and ".jsonl" in str(error)


def test_zero_record_file(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("\n")
    (error,) = errors_of(path)
    assert "no records" in str(error) and str(path) in str(error)


@pytest.mark.parametrize("line, field, expected", [
    ('{"query": "q", "pos": ["p"], "neg": []', None, "malformed JSON"),
    ('["q", "p"]', None, "expected a JSON object"),
    ('{"query": "q", "neg": []}', "pos", "missing column; this record has columns ['neg', 'query']"),
    ('{"query": "   ", "pos": ["p"], "neg": []}', "query", "empty query"),
    ('{"query": "q", "pos": [], "neg": []}', "pos", "empty list"),
    ('{"query": "q", "pos": "", "neg": []}', "pos", "empty text"),
    ('{"query": "q", "pos": ["p", " "], "neg": []}', "pos", "position(s) [1]"),
    ('{"query": 7, "pos": ["p"], "neg": []}', "query", "expected a string, got int 7"),
    ('{"query": "q", "pos": [3], "neg": []}', "pos", "expected a string or a list of strings, got list [3]"),
    ('{"query": "q", "pos": "p", "neg": null}', "neg", "got NoneType None"),
])
def test_bad_record_names_file_line_field(tmp_path, line, field, expected):
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + line + "\n")
    (error,) = errors_of(path)
    assert error.path == str(path) and error.line == 2 and error.field == field
    assert expected in str(error)
    assert f"{path}:2" in str(error)
    if field:
        assert f"field '{field}'" in str(error)


def test_all_problems_in_all_files_reported_together(tmp_path):
    good = write_jsonl(tmp_path / "good.jsonl", ROWS)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "", "pos": "p", "neg": []}\nnot json\n{"query": "q", "pos": 1, "neg": []}\n')
    with pytest.raises(DataErrors) as info:
        read_train_records([good, bad, tmp_path / "missing.jsonl"], negative_columns=["neg"])
    lines = [(Path(e.path).name, e.line) for e in info.value.errors]
    assert lines == [("bad.jsonl", 1), ("bad.jsonl", 2), ("bad.jsonl", 3), ("missing.jsonl", None)]
    assert "4 problem(s)" in str(info.value)
