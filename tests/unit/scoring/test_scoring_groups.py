"""Reading ``score`` inputs: candidate order, both input layouts, and errors naming file:line."""

import json

import pytest

from splade_lightning.errors import DataErrors
from splade_lightning.formats.records import write_jsonl_atomic
from splade_lightning.scoring import load_inputs


def jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.fixture()
def beir(tmp_path):
    jsonl(tmp_path / "corpus.jsonl", [{"_id": f"d{i}", "title": "T" if i == 1 else "", "text": f"doc {i}"}
                                      for i in range(1, 6)])
    jsonl(tmp_path / "queries.jsonl", [{"_id": q, "text": f"query {q}"} for q in ("q1", "2", "q3", "q4", "q5", "q6")])
    return tmp_path


def test_hard_negatives_and_score_records(beir):
    path = jsonl(beir / "in.jsonl", [
        {"qid": "q1", "pos": ["d2", "d5"], "neg": {"bm25": ["d3", "d2", "d1"], "dense": ["d1", "d4"]}},
        {"qid": 2, "pos": "d5", "neg": ["d5", "d1"]},  # int qid, one positive as a string, flat negatives
        {"qid": "q3", "doc_ids": ["d4", "d3", "d4"], "scores": [1, 2, 3]},  # a score file record: rescored
        {"qid": "q4", "pos": ["d1"]},  # no negatives
        {"qid": "q5", "doc_ids": ["d4", "d3", "d2"], "scores": [1, 2, 3], "pos": ["d3"]},  # names its positive
        {"qid": "q6", "neg": ["d2"]},  # no positives
    ])
    groups, queries, corpus = load_inputs(path, beir / "queries.jsonl", beir, max_candidates=None)
    assert [(g.qid, g.doc_ids, g.pos, g.line) for g in groups] == [
        ("q1", ("d2", "d5", "d3", "d1", "d4"), ("d2", "d5"), 1), ("2", ("d5", "d1"), ("d5",), 2),
        ("q3", ("d4", "d3"), (), 3), ("q4", ("d1",), ("d1",), 4), ("q5", ("d4", "d3", "d2"), ("d3",), 5),
        ("q6", ("d2",), (), 6)]
    assert corpus["d1"] == "T doc 1" and corpus["d2"] == "doc 2" and queries["2"] == "query 2"
    groups, _, _ = load_inputs(path, beir, beir, max_candidates=1)
    assert [(g.doc_ids, g.pos) for g in groups] == [(("d2",), ("d2",)), (("d5",), ("d5",)), (("d4",), ()),
                                                    (("d1",), ("d1",)), (("d4",), ()), (("d2",), ())]


def test_every_problem_is_reported_with_file_and_line(beir):
    path = jsonl(beir / "in.jsonl", [
        {"qid": "q1", "pos": ["d1"], "neg": ["d9"]},
        {"qid": "q7", "pos": ["d1"]},
        {"qid": "q6", "pos": [], "neg": {}},
        "not json",
        {"pos": ["d1"]},
        {"qid": "q3", "neg": ["d1"], "doc_ids": ["d1"]},
        {"qid": "q4", "neg": 3.5},
        {"qid": "q4", "pos": [1.5]},
        {"qid": "q4", "text": "x"},
        {"qid": "q5", "doc_ids": ["d1"], "scores": [1], "pos": ["d2"]},
        {"qid": "q1", "pos": ["d1"]},
    ])
    with pytest.raises(DataErrors) as info:
        load_inputs(path, beir, beir, None)
    message = str(info.value)
    assert "11 problem(s)" in message
    for expected in ("in.jsonl:1: 1 doc id(s) not in the corpus: ['d9']",
                     "in.jsonl:2: field 'qid': query id 'q7' is not in the queries file",
                     "in.jsonl:3: query 'q6' has no candidates",
                     "in.jsonl:4: malformed JSON",
                     "in.jsonl:5: field 'qid': expected a query id",
                     "in.jsonl:6: record has both 'doc_ids' (a score file) and 'neg'",
                     "in.jsonl:7: field 'neg': expected a list of doc ids or {system: [doc ids]}",
                     "in.jsonl:8: field 'pos': expected doc ids",
                     "in.jsonl:9: expected hard negatives",
                     "in.jsonl:10: field 'pos': positive(s) ['d2'] are not among doc_ids",
                     "in.jsonl:11: field 'qid': duplicate query id 'q1' (also on line 1)"):
        assert expected in message, message


def test_missing_files_are_reported_before_the_groups(tmp_path):
    with pytest.raises(DataErrors) as info:
        load_inputs(tmp_path / "in.jsonl", tmp_path / "q.jsonl", tmp_path, None)
    message = str(info.value)
    assert "q.jsonl: queries not found" in message and "directory has no corpus.jsonl" in message


def test_empty_input_file(beir):
    with pytest.raises(DataErrors, match="no records"):
        load_inputs(jsonl(beir / "in.jsonl", []), beir, beir, None)


def test_atomic_write_keeps_the_old_file_on_failure(tmp_path):
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")

    def records():
        yield {"a": 1}
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_jsonl_atomic(out, records())
    assert out.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl"]
    assert write_jsonl_atomic(out, iter([{"a": 1}, {"b": [2.5]}])) == 2
    assert out.read_text() == '{"a": 1}\n{"b": [2.5]}\n'
