"""Id-based records and datasets: resolution, caching, bad input with file:line, negative sampling, teacher scores
through the real collator, DataLoader workers; and text-inline scored records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, write_jsonl
from torch.utils.data import DataLoader

from splade_lightning.data import NoDuplicatesBatchSampler, TrainCollator
from splade_lightning.data.ids.dataset import IdTrainDataset
from splade_lightning.data.ids.records import read_hard_negatives, read_teacher_scores
from splade_lightning.data.ids.text_store import TextStore
from splade_lightning.data.scored.dataset import ScoredTextDataset
from splade_lightning.data.scored.records import read_scored_records
from splade_lightning.errors import ConfigError, DataError, DataErrors

N_QUERIES = 12


def score(q: int, d: int) -> float:
    """Teacher score of doc d for query q: positives 20, negatives decreasing with d (distinct)."""
    return 20.0 if d == 100 * q else 10.0 - (d % 100) / 10


def hard_negative_rows() -> list[dict]:
    """Query q: positive doc (100q), bm25 negatives 100q+1..5, dense 100q+4..9 (two overlap bm25), the positive is
    also listed by dense (dropped)."""
    return [{"qid": f"q{q}", "pos": [f"d{100 * q}"],
             "neg": {"bm25": [f"d{100 * q + k}" for k in range(1, 6)],
                     "dense": [f"d{100 * q + k}" for k in (4, 5, 6, 7, 8, 9, 0)]}} for q in range(N_QUERIES)]


def teacher_rows(skip_neg: int | None = None) -> list[dict]:
    rows = []
    for q in range(N_QUERIES):
        docs = [100 * q + k for k in range(10) if k != skip_neg]
        rows.append({"qid": f"q{q}", "doc_ids": [f"d{d}" for d in docs], "scores": [score(q, d) for d in docs]})
    return rows


@pytest.fixture()
def files(tmp_path) -> dict[str, Path]:
    docs = [{"_id": f"d{100 * q + k}", "title": "", "text": f"document {q} {k}"} for q in range(N_QUERIES)
            for k in range(10)]
    return {"corpus": write_jsonl(tmp_path / "corpus.jsonl", docs),
            "queries": write_jsonl(tmp_path / "queries.jsonl", [{"_id": f"q{q}", "text": f"question {q}"}
                                                                for q in range(N_QUERIES)]),
            "hard": write_jsonl(tmp_path / "hard.jsonl", hard_negative_rows()),
            "teacher": write_jsonl(tmp_path / "teacher.jsonl", teacher_rows())}


def stores(files, tmp_path):
    return (TextStore(files["corpus"], cache_dir=tmp_path / "cache"),
            TextStore(files["queries"], cache_dir=tmp_path / "cache", require_text=True))


def dataset(files, tmp_path, hard=True, teacher=True, **kw) -> IdTrainDataset:
    return IdTrainDataset.from_files(files["corpus"], files["queries"], [files["hard"]] if hard else None,
                                     [files["teacher"]] if teacher else None, cache_dir=tmp_path / "cache", **kw)


def doc_numbers(ds: IdTrainDataset, index: int, epoch: int) -> list[int]:
    return [int(text.split()[1]) * 100 + int(text.split()[2]) for text in ds.example(index, epoch).docs]


# -- records ---------------------------------------------------------------------------------------------------------
def test_hard_negatives_resolved_to_rows(files, tmp_path):
    corpus, queries = stores(files, tmp_path)
    flat = write_jsonl(tmp_path / "flat.jsonl", [{"qid": "q1", "pos": ["d100", "d101"], "neg": ["d102", "d103"]}])
    groups = read_hard_negatives([files["hard"], flat], corpus, queries, cache_dir=tmp_path / "cache")
    assert len(groups) == N_QUERIES + 1 and groups.system_names == ["bm25", "dense", "default"]
    assert queries.ids_at(groups.query[:2]) == ["q0", "q1"] and groups.where(12) == f"{flat}:1"
    last = slice(groups.doc_offsets[12], groups.doc_offsets[13])
    assert corpus.ids_at(groups.docs[last]) == ["d102", "d103"] and groups.systems[last].tolist() == [2, 2]
    assert corpus.ids_at(groups.pos[groups.pos_offsets[12]:]) == ["d100", "d101"]
    first = slice(groups.doc_offsets[0], groups.doc_offsets[1])
    assert [groups.system_names[s] for s in groups.systems[first]] == ["bm25"] * 5 + ["dense"] * 7


def test_integer_ids_are_read_as_strings(tmp_path):
    corpus = TextStore(write_jsonl(tmp_path / "c.jsonl", [{"_id": str(i), "text": f"t{i}"} for i in range(5)]),
                       cache_dir=tmp_path)
    queries = TextStore(write_jsonl(tmp_path / "q.jsonl", [{"_id": 571018, "text": "q"}]), cache_dir=tmp_path)
    hard = write_jsonl(tmp_path / "h.jsonl", [{"qid": 571018, "pos": [0], "neg": {"bm25": [1, 2, "3"]}}])
    groups = read_hard_negatives([hard], corpus, queries, cache_dir=tmp_path)
    assert groups.pos.tolist() == [0] and groups.docs.tolist() == [1, 2, 3]


def record_errors(read, rows_text: str, files, tmp_path) -> list[DataError]:
    path = tmp_path / "bad.jsonl"
    path.write_text(rows_text)
    corpus, queries = stores(files, tmp_path)
    with pytest.raises(DataErrors) as info:
        read([path], corpus, queries, cache_dir=tmp_path / "cache")
    assert all(e.path == str(path) for e in info.value.errors)
    return info.value.errors


def test_hard_negative_errors_name_file_line_and_field(files, tmp_path):
    lines = ['{"qid": "q0", "pos": ["d0"], "neg": {"bm25": ["d1"]}}', '{"qid": "q0", "pos": ["d0"]',
             '{"pos": ["d0"], "neg": []}', '{"qid": "q1", "neg": []}', '{"qid": "nope", "pos": ["d0"], "neg": []}',
             '{"qid": "q1", "pos": ["ghost"], "neg": {"bm25": ["d1", "ghost2"]}}', '{"qid": "q1", "pos": []}',
             '{"qid": "q1", "pos": ["d0"], "neg": {"bm25": "d1"}}', '{"qid": 1.5, "pos": [null], "neg": []}']
    errors = record_errors(read_hard_negatives, "\n".join(lines) + "\n", files, tmp_path)
    assert [(e.line, e.field) for e in errors] == [
        (2, None), (3, "qid"), (4, "pos"), (7, "pos"), (8, "neg.bm25"), (9, "qid"), (9, "pos"),
        (5, "qid"), (6, "pos"), (6, "neg.bm25")]
    text = [str(e) for e in errors]
    assert "malformed JSON" in text[0] and "missing field" in text[1] and "empty list" in text[3]
    assert f"query id 'nope' is not in {files['queries']}" in text[7]
    assert f"doc id 'ghost' is not in {files['corpus']}" in text[8] and "'ghost2'" in text[9]


def test_teacher_score_errors_name_file_line_and_field(files, tmp_path):
    lines = ['{"qid": "q0", "doc_ids": ["d0", "d1"], "scores": [1.0, 2]}',
             '{"qid": "q1", "doc_ids": ["d100", "d101"], "scores": [1.0]}',
             '{"qid": "q2", "doc_ids": ["d200", "d201"], "scores": [NaN, 1.0]}',
             '{"qid": "q3", "doc_ids": ["d300"], "scores": [Infinity]}',
             '{"qid": "q4", "doc_ids": ["d400", "d401"], "scores": [1.0, "2"]}',
             '{"qid": "q5", "doc_ids": ["d500", "d500"], "scores": [1.0, 2.0]}',
             '{"qid": "q6", "scores": [1.0]}', '{"qid": "q7", "doc_ids": ["d700"], "scores": [1e39]}',
             '{"qid": "q0", "doc_ids": ["d0"], "scores": [1.0]}']
    errors = record_errors(read_teacher_scores, "\n".join(lines) + "\n", files, tmp_path)
    assert [(e.line, e.field) for e in errors] == [(2, "scores"), (5, "scores"), (7, "doc_ids"), (3, "scores"),
                                                   (4, "scores"), (8, "scores"), (6, "doc_ids"), (9, "qid")]
    text = [str(e) for e in errors]
    assert "duplicate query id 'q0' (also on line 1)" in text[7]  # reported with the other problems
    assert "1 scores for 2 doc_ids" in text[0] and "non-finite score nan at list position 0" in text[3]
    assert "'d500' is scored more than once" in text[6]
    path = tmp_path / "bad.jsonl"
    path.write_text(lines[0] + "\n" + lines[-1] + "\n")  # the only problem left: q0 scored twice
    corpus, queries = stores(files, tmp_path)
    with pytest.raises(DataErrors, match=r"bad.jsonl:2: field 'qid': duplicate query id 'q0' \(also on line 1\)"):
        read_teacher_scores([path], corpus, queries, cache_dir=tmp_path / "cache")


def test_problems_in_all_files_reported_together(files, tmp_path):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"qid": "q0", "pos": ["zzz"], "neg": []}])
    corpus, queries = stores(files, tmp_path)
    with pytest.raises(DataErrors) as info:
        read_hard_negatives([bad, tmp_path / "missing.jsonl", files["hard"]], corpus, queries)
    assert [(Path(e.path).name, e.line) for e in info.value.errors] == [("bad.jsonl", 1), ("missing.jsonl", None)]


def test_record_cache_reused_and_rebuilt_when_the_corpus_changes(files, tmp_path, monkeypatch):
    from splade_lightning.data.ids import records as id_records

    corpus, queries = stores(files, tmp_path)
    first = read_hard_negatives([files["hard"]], corpus, queries, cache_dir=tmp_path / "cache")
    parsed = []
    real = id_records._parse_file
    monkeypatch.setattr(id_records, "_parse_file", lambda *a: (parsed.append(a), real(*a))[1])
    again = read_hard_negatives([files["hard"]], corpus, queries, cache_dir=tmp_path / "cache")
    assert parsed == [] and np.array_equal(again.docs, first.docs) and again.system_names == first.system_names
    write_jsonl(files["corpus"], [{"_id": "extra", "text": "shifts every row"}] +
                [json.loads(line) for line in files["corpus"].read_text().splitlines()])
    corpus, queries = stores(files, tmp_path)
    moved = read_hard_negatives([files["hard"]], corpus, queries, cache_dir=tmp_path / "cache")
    assert len(parsed) == 1 and np.array_equal(moved.docs, first.docs + 1)
    assert len([p for p in (tmp_path / "cache").iterdir() if p.name.startswith("hard.jsonl")]) == 1


# -- sampling --------------------------------------------------------------------------------------------------------
def test_choices_deterministic_per_seed_and_epoch_and_vary_across_epochs(files, tmp_path):
    a, b = dataset(files, tmp_path, num_negatives=3, seed=1), dataset(files, tmp_path, num_negatives=3, seed=1)
    pairs = [(i, e) for i in range(4) for e in range(3)]
    assert [a.example(i, e) for i, e in pairs] == [b.example(i, e) for i, e in pairs]
    per_epoch = {tuple(doc_numbers(a, 0, e)) for e in range(12)}
    assert len(per_epoch) > 6
    other_seed = dataset(files, tmp_path, num_negatives=3, seed=2)
    assert [doc_numbers(a, i, 0) for i in range(8)] != [doc_numbers(other_seed, i, 0) for i in range(8)]
    a.set_epoch(4)
    assert a[2] == a.example(2, 4) and a.__getitems__([2, 3]) == [a.example(2, 4), a.example(3, 4)]
    for docs in per_epoch:  # positive first; negatives distinct, never the positive, from bm25 or dense (1..9)
        assert docs[0] == 0 and len(set(docs[1:])) == 3 and all(1 <= d <= 9 for d in docs[1:])
    assert a.texts(0, 5) == ("q:0", *(f"d:{d}" for d in doc_numbers(a, 0, 5)))  # keys: rows of the stores


def test_negative_systems_filter(files, tmp_path):
    ds = dataset(files, tmp_path, teacher=False, num_negatives=2, negative_systems=["bm25"])
    assert {d for e in range(20) for d in doc_numbers(ds, 3, e)[1:]} == {301, 302, 303, 304, 305}
    ds = dataset(files, tmp_path, teacher=False, num_negatives=2, negative_systems=["dense"])
    assert {d for e in range(20) for d in doc_numbers(ds, 3, e)[1:]} == {304, 305, 306, 307, 308, 309}
    assert ds.example(0).scores is None
    with pytest.raises(DataError, match=r"negative_systems \['bm26'\] not found .* systems there are \['bm25', "):
        dataset(files, tmp_path, teacher=False, negative_systems=["bm26"])


def test_score_range_filter_and_skipped_groups(files, tmp_path):
    ds = dataset(files, tmp_path, num_negatives=2, score_range=[9.0, 9.5])  # docs k = 5..10 -> 9.5..9.0: k in 5..9
    chosen = {d % 100 for i in range(len(ds)) for e in range(10) for d in doc_numbers(ds, i, e)[1:]}
    assert chosen == {5, 6, 7, 8, 9}
    narrow = dataset(files, tmp_path, num_negatives=2, score_range=[9.15, 9.25])  # only k = 8: too few
    assert len(narrow) == 0 and len(narrow.skipped) == N_QUERIES
    message = narrow.skipped_message()
    assert f"skipped {N_QUERIES} training group(s)" in message and f"{files['hard']}:1, {files['hard']}:2" in message


def test_top_takes_the_highest_teacher_scores(files, tmp_path):
    top = dataset(files, tmp_path, num_negatives=3, negative_sampling="top")
    assert all(doc_numbers(top, 2, e) == [200, 201, 202, 203] for e in range(3))
    assert top.example(2).scores == pytest.approx([20.0, 9.9, 9.8, 9.7])
    by_order = dataset(files, tmp_path, teacher=False, num_negatives=2, negative_sampling="top",
                       negative_systems=["dense"])
    assert doc_numbers(by_order, 2, 0) == [200, 204, 205]  # no scores: file order
    rand = dataset(files, tmp_path, num_negatives=3)
    assert {tuple(doc_numbers(rand, 2, e)) for e in range(8)} != {(200, 201, 202, 203)}


def test_scores_align_with_docs(files, tmp_path):
    ds = dataset(files, tmp_path, num_negatives=4)
    for i in range(len(ds)):
        for e in range(3):
            example = ds.example(i, e)
            assert example.scores == pytest.approx([score(i, d) for d in doc_numbers(ds, i, e)])


def test_negatives_without_a_teacher_score_are_never_chosen(files, tmp_path):
    write_jsonl(files["teacher"], teacher_rows(skip_neg=3))
    ds = dataset(files, tmp_path, num_negatives=7)
    assert all(3 not in [d % 100 for d in doc_numbers(ds, i, e)] for i in range(len(ds)) for e in range(5))
    assert f"{N_QUERIES} hard negative(s) have no teacher score" in ds.skipped_message()
    assert dataset(files, tmp_path, num_negatives=9).skipped_message().startswith(f"skipped {N_QUERIES}")


def test_teacher_only_groups_need_positives(files, tmp_path):
    rows = [{**row, "pos": [row["doc_ids"][0]]} for row in teacher_rows()]
    write_jsonl(files["teacher"], rows)
    ds = dataset(files, tmp_path, hard=False, num_negatives=3, negative_sampling="top")
    assert doc_numbers(ds, 1, 0) == [100, 101, 102, 103]
    assert ds.example(1).scores == pytest.approx([20.0, 9.9, 9.8, 9.7])
    write_jsonl(files["teacher"], rows[:2] + teacher_rows()[2:3] + [{**rows[3], "pos": ["d0"]}] + rows[4:])
    with pytest.raises(DataErrors) as info:
        dataset(files, tmp_path, hard=False)
    assert [(e.line, e.field) for e in info.value.errors] == [(3, "pos"), (4, "pos")]
    assert "must name its positives" in str(info.value.errors[0])
    assert "positive doc id 'd0' has no teacher score" in str(info.value.errors[1])


def test_dataset_level_errors_name_the_record(files, tmp_path):
    rows = hard_negative_rows()
    rows[1]["neg"] = {"bm25": ["d100"]}  # only its own positive: no negatives
    rows[2]["pos"] = ["d200", "d1"]  # d1 is not scored for q2
    rows.append({"qid": "q0", "pos": ["d0"], "neg": []})
    write_jsonl(files["hard"], rows)
    write_jsonl(files["teacher"], teacher_rows()[:-1])  # the last query has no teacher record
    with pytest.raises(DataErrors) as info:
        dataset(files, tmp_path)
    assert [(e.line, e.field) for e in info.value.errors] == [(N_QUERIES, "qid"), (3, "pos"), (2, "neg"),
                                                              (N_QUERIES + 1, "neg")]
    text = str(info.value)
    assert f"query id 'q{N_QUERIES - 1}' has no record in the teacher-score file(s)" in text
    assert "positive doc id 'd1' has no teacher score (its teacher record is" in text and "no negatives left" in text
    assert len(dataset(files, tmp_path, teacher=False, num_negatives=0)) == N_QUERIES + 1  # pairs: fine


def test_query_scored_in_two_teacher_files_is_an_error(files, tmp_path):
    second = write_jsonl(tmp_path / "teacher2.jsonl", teacher_rows()[:1])
    corpus, queries = stores(files, tmp_path)
    teacher = read_teacher_scores([files["teacher"], second], corpus, queries, cache_dir=tmp_path / "cache")
    with pytest.raises(DataErrors, match=rf"teacher2.jsonl:1: field 'qid': query id 'q0' is scored twice: also at "
                                         rf"{files['teacher']}:1"):
        IdTrainDataset(corpus, queries, teacher_scores=teacher)


def test_chunked_selection_matches_a_single_chunk(files, tmp_path, monkeypatch):
    from splade_lightning.data import negatives

    whole = dataset(files, tmp_path, num_negatives=3, negative_sampling="top", score_range=[9.0, 9.8])
    monkeypatch.setattr(negatives, "CHUNK", 5)  # a few groups per chunk (one when a group is larger)
    chunked = dataset(files, tmp_path, num_negatives=3, negative_sampling="top", score_range=[9.0, 9.8])
    for name in ("query", "pos_offsets", "pos", "pos_scores", "cand_offsets", "cand", "cand_scores"):
        assert np.array_equal(getattr(whole, name), getattr(chunked, name)), name
    assert list(negatives.group_chunks(np.array([0, 3, 3, 9, 10]), 4)) == [(0, 2), (2, 3), (3, 4)]


def test_bad_options(files, tmp_path):
    corpus, queries = stores(files, tmp_path)
    with pytest.raises(ConfigError) as info:
        IdTrainDataset(corpus, queries, num_negatives=-1, negative_sampling="best", score_range=[2, 1],
                       negative_systems=[])
    for expected in ("num_negatives", "negative_sampling", "score_range must be", "give hard_negatives",
                     "negative_systems selects", "no teacher_scores"):
        assert expected in str(info.value)


# -- through the collator and DataLoader workers ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    from splade_lightning.hub import load_tokenizer

    return load_tokenizer(tokenizer_dir)


def test_teacher_scores_reach_the_batch(files, tmp_path, tokenizer):
    ds = dataset(files, tmp_path, num_negatives=2)
    examples = [ds.example(i, 0) for i in range(4)]
    batch = TrainCollator(tokenizer, 8, 16)(examples)
    assert batch.teacher_scores.shape == (4, 3) and batch.num_negatives == 2
    assert batch.teacher_scores.tolist() == [e.scores for e in examples]
    decoded = tokenizer.decode(batch.doc_input_ids[4], skip_special_tokens=True)  # column 1, row 0: query 0's 1st neg
    assert decoded == examples[0].docs[1]


def test_dataloader_workers_give_the_same_batches(files, tmp_path, tokenizer):
    ds = dataset(files, tmp_path, num_negatives=3)
    collate = TrainCollator(tokenizer, 8, 16)

    def batches(workers: int, epoch: int):
        sampler = NoDuplicatesBatchSampler(ds, 4, seed=3)
        sampler.set_epoch(epoch)
        return list(DataLoader(ds, batch_sampler=sampler, collate_fn=collate, num_workers=workers))

    for epoch in (0, 1):
        single, multi = batches(0, epoch), batches(2, epoch)
        assert len(single) == len(multi) == N_QUERIES // 4
        for a, b in zip(single, multi):
            assert a.doc_input_ids.equal(b.doc_input_ids) and a.teacher_scores.equal(b.teacher_scores)
    assert not batches(0, 0)[0].doc_input_ids.equal(batches(0, 1)[0].doc_input_ids)


def test_no_duplicate_ids_in_a_batch(tmp_path):
    docs = [{"_id": f"d{i}", "text": f"doc {i}"} for i in range(8)]
    corpus = write_jsonl(tmp_path / "c.jsonl", docs)
    queries = write_jsonl(tmp_path / "q.jsonl", [{"_id": f"q{i}", "text": f"query {i}"} for i in range(30)])
    hard = write_jsonl(tmp_path / "h.jsonl", [{"qid": f"q{i}", "pos": [f"d{i % 8}"], "neg": [f"d{(i + k) % 8}"
                                                                                              for k in (1, 2, 3)]}
                                              for i in range(30)])
    ds = IdTrainDataset.from_files(corpus, queries, [hard], num_negatives=1, cache_dir=tmp_path / "cache")
    sampler = NoDuplicatesBatchSampler(ds, 3, seed=0, max_extra_passes=20)
    with pytest.warns(UserWarning, match="reshuffled passes"):
        batches = list(sampler)
    for batch in batches:
        keys = [k for i in batch for k in ds.texts(i, 0)]
        assert len(keys) == len(set(keys))
        texts = [t for i in batch for t in ds.example(i, 0).docs]
        assert len(texts) == len(set(texts))


# -- text-inline scored records --------------------------------------------------------------------------------------
SCORED = [{"query": "q one", "pos": ["p one"], "neg": ["n1", "n2", "n3", "p one"], "pos_scores": [9.0],
           "neg_scores": [1.0, 3.0, 2.0, 9.0]},
          {"query": "q two", "pos": "p two", "neg": ["n1", "n4"], "pos_scores": 7, "neg_scores": [5, 4]}]


def test_scored_text_records(tmp_path):
    path = write_jsonl(tmp_path / "kd.jsonl", SCORED)
    records = read_scored_records([path])
    assert records[1].positives == ("p two",) and records[1].positive_scores == (7.0,) and records[1].line == 2
    top = ScoredTextDataset(records, num_negatives=2, negative_sampling="top")
    # the positive listed as a negative is dropped
    assert top.example(0) == ("q one", ["p one", "n2", "n3"], [9.0, 3.0, 2.0], None)
    assert top.example(1) == ("q two", ["p two", "n1", "n4"], [7.0, 5.0, 4.0], None)
    rand = ScoredTextDataset(records, num_negatives=2, seed=0)
    seen = {tuple(rand.example(0, e).docs) for e in range(10)}
    assert len(seen) > 1 and all(ex[0] == "p one" and "p one" not in ex[1:] for ex in seen)
    for e in range(5):
        example = rand.example(0, e)
        assert example.scores == [{"p one": 9.0, "n1": 1.0, "n2": 3.0, "n3": 2.0}[d] for d in example.docs]
    assert rand.texts(1, 0)[2:] in {("d:1", "d:5"), ("d:5", "d:1")}  # "n1" shares its key with record 0's "n1"
    ranged = ScoredTextDataset(records, num_negatives=2, score_range=[2.5, 5.0])  # leaves n2 only in record 1
    assert len(ranged) == 1 and ranged.skipped == [f"{path}:1"] and ranged.example(0).query == "q two"


@pytest.mark.parametrize(("line", "field", "expected"), [
    ('{"query": "q", "pos": ["p"], "neg": ["n"], "pos_scores": [1.0]}', "neg_scores", "missing field"),
    ('{"query": "q", "pos": ["p"], "neg": ["n", "m"], "pos_scores": [1], "neg_scores": [1]}', "neg_scores",
     "1 scores for 2 text(s) in 'neg'"),
    ('{"query": "q", "pos": ["p"], "neg": ["n"], "pos_scores": [NaN], "neg_scores": [1]}', "pos_scores",
     "non-finite score(s) at list position(s) [0]"),
    ('{"query": "q", "pos": ["p"], "neg": ["n"], "pos_scores": ["1"], "neg_scores": [1]}', "pos_scores",
     "expected a list of numbers"),
    ('{"query": "", "pos": ["p"], "neg": ["n"], "pos_scores": [1], "neg_scores": [1]}', "query", "empty query"),
])
def test_scored_text_errors_name_file_line_field(tmp_path, line, field, expected):
    path = tmp_path / "kd.jsonl"
    path.write_text(json.dumps(SCORED[0]) + "\n" + line + "\n")
    with pytest.raises(DataErrors) as info:
        read_scored_records([path])
    (error,) = info.value.errors
    assert (error.path, error.line, error.field) == (str(path), 2, field) and expected in str(error)


def test_scored_group_without_negatives_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "kd.jsonl", SCORED + [{"query": "q", "pos": ["p"], "neg": ["p"], "pos_scores": [1],
                                                         "neg_scores": [1]}])
    with pytest.raises(DataErrors, match=r"kd.jsonl:3: field 'neg': no negatives left"):
        ScoredTextDataset.from_files([path])
    assert len(ScoredTextDataset.from_files([path], num_negatives=0)) == 3


@pytest.mark.skipif(not (SHARED_DATA / "flagembedding-kd-samples").is_dir(), reason="no shared data")
def test_real_flagembedding_scores_follow_their_passages():
    path = SHARED_DATA / "flagembedding-kd-samples" / "kd.jsonl"
    raw = [json.loads(line) for line in path.read_text().splitlines()]
    ds = ScoredTextDataset.from_files([path], num_negatives=7)
    assert len(ds) == 39 and ds.skipped == []
    for i in (0, 12, 38):
        lookup = {**dict(zip(raw[i]["neg"], raw[i]["neg_scores"])), **dict(zip(raw[i]["pos"], raw[i]["pos_scores"]))}
        example = ds.example(i, 2)
        assert example.query == raw[i]["query"] and example.docs[0] in raw[i]["pos"]
        assert example.scores == pytest.approx([lookup[d] for d in example.docs])
