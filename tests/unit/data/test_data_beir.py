"""BEIR evaluation-set loader: good input, and every bad-input case with file, line and field."""

from __future__ import annotations

import json

import pytest
from conftest import SHARED_DATA, write_jsonl

from splade_lightning.data import BeirSet, load_beir, load_beir_set
from splade_lightning.errors import DataError, DataErrors


def errors_of(path, split="test") -> list[DataError]:
    with pytest.raises(DataErrors) as info:
        load_beir(path, split)
    return info.value.errors


def test_toy_beir(toy_beir):
    data = load_beir(toy_beir, "test", min_relevance=2)
    assert data.name == "toy_beir" and data.min_relevance == 2 and data.split == "test"
    assert data.corpus["d1"] == "Cats the cat sat on the mat"  # title + " " + text
    assert data.corpus["d2"] == "dogs bark at the postman"  # empty title: text only
    assert data.queries == {"q1": "cat on a mat", "q2": "python language", "q3": "barking dogs"}
    assert data.qrels == {"q1": {"d1": 2, "d4": 1}, "q2": {"d3": 2, "d5": 1}, "q3": {"d2": 1}}


def test_beir_set_defaults_and_name(toy_beir):
    assert BeirSet(str(toy_beir)).display_name == "toy_beir"
    assert load_beir_set(BeirSet(str(toy_beir), name="toy", min_relevance=3)).name == "toy"


def test_unjudged_queries_dropped_grade_zero_and_empty_docs_kept(toy_beir):
    write_jsonl(toy_beir / "queries.jsonl", [{"_id": "q1", "text": "cat"}, {"_id": "q9", "text": "unjudged"}])
    with open(toy_beir / "corpus.jsonl", "a") as f:
        f.write(json.dumps({"_id": "empty", "title": "", "text": ""}) + "\n")
    (toy_beir / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td2\t0\n")
    data = load_beir(toy_beir)
    assert data.queries == {"q1": "cat"} and data.qrels == {"q1": {"d1": 1, "d2": 0}} and data.corpus["empty"] == ""


def test_missing_dir_and_files(tmp_path, toy_beir):
    (error,) = errors_of(tmp_path / "nowhere")
    assert "BEIR directory not found" in str(error)
    (toy_beir / "corpus.jsonl").unlink()
    (toy_beir / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\n")
    errors = errors_of(toy_beir, split="train")
    assert [e.path.split("/")[-1] for e in errors] == ["corpus.jsonl", "train.tsv"]
    assert "splits present under qrels/: ['dev', 'test']" in str(errors[1])


@pytest.mark.parametrize("file, line, field, expected", [
    ("corpus.jsonl", "not json", None, "malformed JSON"),
    ("corpus.jsonl", '{"title": "t", "text": "x"}', "_id", "missing field"),
    ("corpus.jsonl", '{"_id": "d1", "text": "again"}', "_id", "duplicate id 'd1' (first seen on line 1)"),
    ("corpus.jsonl", '{"_id": "d9", "text": 5}', "text", "expected a string, got int 5"),
    ("queries.jsonl", '{"_id": "q8", "text": "  "}', "text", "empty query text"),
    ("queries.jsonl", '{"_id": "q8"}', "text", "missing field"),
    ("queries.jsonl", '["q8"]', None, "expected a JSON object"),
])
def test_bad_jsonl_lines(toy_beir, file, line, field, expected):
    path = toy_beir / file
    n_lines = len(path.read_text().splitlines())
    with open(path, "a") as f:
        f.write(line + "\n")
    (error,) = errors_of(toy_beir)
    assert error.path == str(path) and error.line == n_lines + 1 and error.field == field
    assert expected in str(error) and f"{path}:{n_lines + 1}" in str(error)


@pytest.mark.parametrize("row, field, expected", [
    ("q1\td1\thigh", "score", "expected an integer grade, got 'high'"),
    ("q1\td1", None, "expected 3 tab-separated fields"),
    ("qX\td1\t1", "query-id", "query id 'qX' is not in queries.jsonl"),
    ("q1\tdX\t1", "corpus-id", "corpus id 'dX' is not in corpus.jsonl"),
    ("q1\td1\t1", None, "duplicate judgment"),
])
def test_bad_qrels_rows(toy_beir, row, field, expected):
    path = toy_beir / "qrels" / "test.tsv"
    with open(path, "a") as f:
        f.write(row + "\n")
    (error,) = errors_of(toy_beir)
    assert error.path == str(path) and error.line == 7 and error.field == field
    assert expected in str(error) and "test.tsv:7" in str(error)


def test_all_problems_collected(toy_beir):
    with open(toy_beir / "queries.jsonl", "a") as f:
        f.write('{"_id": "q1", "text": "dup"}\n')
    with open(toy_beir / "qrels" / "test.tsv", "a") as f:
        f.write("q1\tmissing\t1\nq2\td3\tx\n")
    assert len(errors_of(toy_beir)) == 3


@pytest.mark.skipif(not (SHARED_DATA / "cranfield").is_dir(), reason="shared data not available")
def test_real_cranfield():
    data = load_beir(SHARED_DATA / "cranfield")
    assert len(data.corpus) == 1400 and len(data.queries) == 225
    assert sum(len(v) for v in data.qrels.values()) == 1612
    assert sum(1 for text in data.corpus.values() if not text) == 2


# -- max_queries: a fixed subset for quick evaluation runs -------------------------------------------------------------
@pytest.fixture()
def twenty_queries(tmp_path):
    """20 judged queries (q0..q19, each with docs d<q>a grade 1 and d<q>b grade 0), 2 unjudged queries, 60 more
    documents: 100 documents, 5 per judged query."""
    root = tmp_path / "twenty"
    docs = [f"d{q}{s}" for q in range(20) for s in "ab"] + [f"x{i}" for i in range(60)]
    write_jsonl(root / "corpus.jsonl", [{"_id": d, "title": "", "text": f"text of {d}"} for d in docs])
    write_jsonl(root / "queries.jsonl", [{"_id": f"q{q}", "text": f"query {q}"} for q in range(22)])
    (root / "qrels").mkdir()
    (root / "qrels" / "test.tsv").write_text("".join(f"q{q}\td{q}a\t1\nq{q}\td{q}b\t0\n" for q in range(20)))
    return root


def test_max_queries_keeps_a_fixed_sample_with_its_judged_documents(twenty_queries):
    full = load_beir_set(BeirSet(str(twenty_queries)))
    five = load_beir_set(BeirSet(str(twenty_queries), max_queries=5))
    assert len(full.queries) == 20 and len(full.corpus) == 100
    assert len(five.queries) == 5 and set(five.qrels) == set(five.queries) <= set(full.queries)
    assert all(five.qrels[q] == full.qrels[q] for q in five.queries)
    judged = {d for grades in five.qrels.values() for d in grades}  # grade-0 judgments too
    assert len(judged) == 10 and judged <= set(five.corpus)
    assert len(five.corpus) == 25  # 100 documents x 5 / 20 queries: the same 5 documents per query
    assert all(five.corpus[d] == full.corpus[d] for d in five.corpus)
    assert (five.name, five.min_relevance, five.split) == (full.name, full.min_relevance, full.split)
    again = load_beir_set(BeirSet(str(twenty_queries), max_queries=5))
    assert (again.queries, again.corpus, again.qrels) == (five.queries, five.corpus, five.qrels)  # deterministic
    assert set(load_beir_set(BeirSet(str(twenty_queries), max_queries=3)).queries) < set(five.queries)  # nested
    renamed = load_beir_set(BeirSet(str(twenty_queries), name="other", max_queries=5))
    assert set(renamed.queries) != set(five.queries)  # the seed is the set's name
    assert load_beir_set(BeirSet(str(twenty_queries), max_queries=20)).corpus == full.corpus


def test_max_queries_keeps_every_judged_document_beyond_the_ratio(twenty_queries):
    from splade_lightning.formats.beir import subsample

    full = load_beir(twenty_queries)
    for grades in full.qrels.values():
        grades.update({f"x{i}": 0 for i in range(30)})  # every query also judges the same 30 documents
    sample = subsample(full, 2)
    judged = {d for grades in sample.qrels.values() for d in grades}
    assert len(judged) == 34 and set(sample.corpus) == judged  # more than 100 documents x 2 / 20 queries = 10
    assert subsample(full, 20) is full
