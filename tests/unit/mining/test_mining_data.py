"""``mine`` inputs and resumable output: query set and de-duplicated corpus, records, resume reading, settings."""

import json

import pytest
from conftest import write_jsonl

from splade_lightning.errors import DataError
from splade_lightning.mining.data import (
    append_lines,
    load_mining_data,
    output_record,
    read_skipped,
    read_written,
)


@pytest.fixture()
def beir(tmp_path):
    root = tmp_path / "beir"
    docs = [("d1", "Cats", "sat on the mat"), ("d2", "", "dogs bark"), ("d3", "Cats", "sat on the mat"),
            ("d4", "", "red mat"), ("d5", "", "")]
    write_jsonl(root / "corpus.jsonl", [{"_id": i, "title": t, "text": x} for i, t, x in docs])
    write_jsonl(root / "queries.jsonl", [{"_id": q, "text": f"query {q}"} for q in ("q1", "q2", "q3", "q4")])
    (root / "qrels").mkdir()
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td4\t1\nq2\td2\t0\n"
                                               "q3\td3\t1\nq3\td1\t1\n")
    return root


def test_load_mining_data_dedups_texts_and_keeps_positive_queries(beir):
    data = load_mining_data(beir, "train", 1)
    assert data.texts == ["Cats sat on the mat", "dogs bark", "red mat", ""]
    assert data.text_doc_ids == ["d1", "d2", "d4", "d5"]
    assert data.doc_rows == {"d1": 0, "d2": 1, "d3": 0, "d4": 2, "d5": 3}
    assert data.qids == ["q1", "q3"]  # q2's only row has grade 0; q4 has none
    assert data.positive_ids == [["d1", "d4"], ["d3", "d1"]]
    assert [r.tolist() for r in data.positive_rows] == [[0, 2], [0]]  # d3 and d1 share one text
    assert data.max_positives == 2
    assert load_mining_data(beir, "train", 2).qids == ["q1"]


def test_load_mining_data_without_positives(beir):
    with pytest.raises(DataError, match="--min_relevance 3"):
        load_mining_data(beir, "train", 3)


def test_output_record_layout():
    line = output_record("q1", ["d1"], "bm25", ["d7", "d9"])
    assert line.endswith("\n") and json.loads(line) == {"qid": "q1", "pos": ["d1"], "neg": {"bm25": ["d7", "d9"]}}
    record = json.loads(output_record("q1", ["d1"], "bm25", ["d7"], [2.5], [1.25]))
    assert record["scores"] == {"pos": [2.5], "bm25": [1.25]}


def _write(path, qids, tail=b""):
    append_lines(path, [output_record(q, ["d"], "bm25", ["n"]) for q in qids])
    with open(path, "ab") as f:
        f.write(tail)


def test_read_written_drops_an_incomplete_last_line(tmp_path):
    path = tmp_path / "out.jsonl"
    _write(path, ["q1", "q2"])
    complete = path.stat().st_size
    _write(path, [], tail=b'{"qid": "q3", "pos": ["d"], "ne')
    written = read_written(path, {"q1", "q2", "q3"})
    assert written.qids == ["q1", "q2"] and written.size == complete
    assert "line 3" in written.dropped and "incomplete" in written.dropped


def test_read_written_drops_an_unreadable_last_line(tmp_path):
    path = tmp_path / "out.jsonl"
    _write(path, ["q1"], tail=b"\x00\x00\x00\n")  # what a crash can leave on some file systems
    written = read_written(path, {"q1"})
    assert written.qids == ["q1"] and written.dropped.startswith("line 2: unreadable")


def test_read_written_complete_file(tmp_path):
    path = tmp_path / "out.jsonl"
    _write(path, ["q1", "q2"])
    written = read_written(path, {"q1", "q2"})
    assert written.qids == ["q1", "q2"] and written.size == path.stat().st_size and written.dropped is None


def test_read_written_rejects_damage_before_the_last_line(tmp_path):
    path = tmp_path / "out.jsonl"
    _write(path, ["q1"], tail=b"not json\n")
    _write(path, ["q2"])
    with pytest.raises(DataError, match=r"out.jsonl:2: .*only the last line may be incomplete"):
        read_written(path, {"q1", "q2"})


@pytest.mark.parametrize(("qids", "message"), [(["q1", "q1"], "duplicate query id 'q1'"),
                                               (["q1", "zz"], "'zz' is not one of the queries")])
def test_read_written_rejects_other_runs(tmp_path, qids, message):
    path = tmp_path / "out.jsonl"
    _write(path, qids)
    with pytest.raises(DataError, match=message):
        read_written(path, {"q1", "q2"})


def test_read_skipped(tmp_path):
    path = tmp_path / "skipped.jsonl"
    assert read_skipped(path) == set()
    path.write_bytes(b'"q1"\n"q\\nodd"\nbroken\n"q3')  # the last line is incomplete
    assert read_skipped(path) == {"q1", "q\nodd"}
