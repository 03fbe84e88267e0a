"""TREC run / qrels readers: formats accepted and file:line errors."""

import pytest

from splade_lightning.errors import DataError
from splade_lightning.formats.trec import read_qrels, read_trec_run


def test_read_trec_run(tmp_path):
    path = tmp_path / "a.trec"
    path.write_text("q1 Q0 d1 1 2.5 tag\nq1 Q0 d2 2 1e-3 tag\n\nq2 0 d3 1 -1 tag\n")
    assert read_trec_run(path) == {"q1": {"d1": 2.5, "d2": 0.001}, "q2": {"d3": -1.0}}


@pytest.mark.parametrize("bad_line, message", [
    ("q1 Q0 d2 2 0.5", "expected 6 whitespace-separated fields"),
    ("q1 Q0 d2 two 0.5 tag", "integer rank"),
    ("q1 Q0 d2 2 high tag", "finite number"),
    ("q1 Q0 d2 2 nan tag", "finite number"),
    ("q1 Q0 d1 2 0.5 tag", "listed twice"),
])
def test_run_errors_name_file_and_line(tmp_path, bad_line, message):
    path = tmp_path / "bad.trec"
    path.write_text(f"q1 Q0 d1 1 1.0 tag\n{bad_line}\n")
    with pytest.raises(DataError, match=message) as info:
        read_trec_run(path)
    assert f"{path}:2" in str(info.value)


def test_run_missing_or_empty(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_trec_run(tmp_path / "nope.trec")
    (tmp_path / "empty.trec").write_text("\n")
    with pytest.raises(DataError, match="no run lines"):
        read_trec_run(tmp_path / "empty.trec")


def test_read_qrels_beir_and_trec(tmp_path):
    beir = tmp_path / "test.tsv"
    beir.write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\nq2\td3\t1\n")
    trec = tmp_path / "qrels.txt"
    trec.write_text("q1 0 d1 2\nq1 0 d2 0\nq2 0 d3 1\n")
    expected = {"q1": {"d1": 2, "d2": 0}, "q2": {"d3": 1}}
    assert read_qrels(beir) == expected == read_qrels(trec)


@pytest.mark.parametrize("text, line, message", [
    ("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\n", 3, "expected 3 fields"),
    ("q1 0 d1 2\nq1 0 d2 x\n", 2, "integer grade"),
    ("q1 0 d1 2\nq1 0 d1 1\n", 2, "duplicate judgment"),
    ("q1 0 d1 2\nq1 d2 1\n", 2, "expected 4 fields"),
])
def test_qrels_errors_name_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "qrels.tsv"
    path.write_text(text)
    with pytest.raises(DataError, match=message) as info:
        read_qrels(path)
    assert f"{path}:{line}" in str(info.value)
