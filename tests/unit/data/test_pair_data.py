"""TextPairs: (text1, text2, score | label) records read from JSONL / TSV, validated with file:line, collated into
batches with (B,) labels; the other column kinds map onto the existing sources."""

import pytest
import torch
from conftest import write_jsonl

from splade_lightning.data import PairDataset, TextPairs
from splade_lightning.data.collate import TrainCollator
from splade_lightning.data.pairs.records import read_pair_records
from splade_lightning.errors import DataErrors
from splade_lightning.problems import SkippedRecords

ROWS = [{"sentence1": f"a sentence {i}", "sentence2": f"another one {i}", "score": i / 2} for i in range(4)]


def test_reads_scores_and_builds_examples(tmp_path):
    path = write_jsonl(tmp_path / "sts.jsonl", ROWS)
    dataset = TextPairs([str(path)], divide_labels_by=2.0).load(0, "raise", SkippedRecords())
    assert isinstance(dataset, PairDataset) and len(dataset) == 4
    assert dataset[3] == ("a sentence 3", ["another one 3"], None, 0.75)
    assert dataset.texts(1) == ("a sentence 1", "another one 1")
    assert dataset.skipped_message() is None


def test_tsv_fields_are_parsed_and_integer_labels_accepted(tmp_path):
    tsv = tmp_path / "nli.tsv"
    tsv.write_text("premise\thypothesis\tlabel\nthe cat sat\ta cat is sitting\t1\nthe dog ran\ta cat slept\t0\n")
    records = read_pair_records([tsv], "premise", "hypothesis", "label", "label")
    assert [(r.text1, r.label, r.line) for r in records] == [("the cat sat", 1.0, 2), ("the dog ran", 0.0, 3)]
    bools = write_jsonl(tmp_path / "b.jsonl", [{"a": "x y", "b": "y z", "label": True}, {"a": "u", "b": "v",
                                                                                          "label": 2.0}])
    assert [r.label for r in read_pair_records([bools], "a", "b", "label", "label")] == [1.0, 2.0]


def test_every_bad_record_is_reported_with_file_line_and_column(tmp_path):
    rows = [ROWS[0],
            {"sentence1": "x", "score": 1.0},                                  # line 2: missing sentence2
            {"sentence1": "x", "sentence2": "y", "score": "high"},             # line 3: not a number
            {"sentence1": "x", "sentence2": "y", "score": float("nan")},       # line 4: NaN
            {"sentence1": " ", "sentence2": "y", "score": 1.0},                # line 5: empty text
            {"sentence1": ["x"], "sentence2": "y", "score": 1.0}]              # line 6: not a string
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataErrors) as info:
        read_pair_records([path])
    message = str(info.value)
    assert "6 problem" not in message and "5 problem(s)" in message
    for expected in (f"{path}:2: field 'sentence2': missing column",
                     f"{path}:3: field 'score': expected a number (the pair's similarity score), got str 'high'",
                     f"{path}:4: field 'score': non-finite score nan",
                     f"{path}:5: field 'sentence1': empty text",
                     f"{path}:6: field 'sentence1': expected a string, got list"):
        assert expected in message, expected
    skipped = SkippedRecords()
    assert len(read_pair_records([path], on_bad_record="skip", skipped=skipped)) == 1
    assert skipped.total == 5


def test_a_score_is_not_an_integer_label(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"s1": "x", "s2": "y", "label": 0.5}])
    with pytest.raises(DataErrors, match=r"p.jsonl:1: field 'label': expected an integer class label .*0.5.*"
                                         r"label_type: score"):
        read_pair_records([path], "s1", "s2", "label", "label")


def test_argument_problems_name_the_flag(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", ROWS)
    problems = TextPairs([str(path)], text2_column="sentence1", label_type="float", divide_labels_by=0).problems()
    text = "\n".join(problems)
    assert "--data.init_args.train.init_args.label_type: must be 'score' or 'label', got 'float'" in text
    assert "text1_column/text2_column/label_column: must be three distinct non-empty names" in text
    assert "divide_labels_by: must be a positive finite number, got 0" in text
    assert TextPairs([str(path)]).problems() == []
    assert "router_mapping" in "\n".join(TextPairs([str(path)], router_mapping={"query": "query"}).problems())


def test_collator_stacks_labels(tokenizer_dir):
    from transformers import AutoTokenizer

    collate = TrainCollator(AutoTokenizer.from_pretrained(tokenizer_dir), 8, 8)
    batch = collate([("a b", ["c d"], None, 0.5), ("e f", ["g h"], None, 2.0)])
    assert batch.num_negatives == 0 and batch.teacher_scores is None
    assert torch.equal(batch.labels, torch.tensor([0.5, 2.0]))
    assert collate([("a b", ["c d"]), ("e f", ["g h"])]).labels is None
    with pytest.raises(ValueError, match="pair label must be given for every example"):
        collate([("a b", ["c d"], None, 0.5), ("e f", ["g h"])])


def test_sources_declare_what_their_batches_carry(tmp_path, toy_triplets):
    from splade_lightning.data import ScoredGroups, TextTriplets

    assert TextPairs(["x.jsonl"]).batch_fields == {"labels"} and TextPairs(["x.jsonl"]).num_negatives == 0
    assert ScoredGroups(["x.jsonl"]).batch_fields == {"teacher_scores"}
    assert TextTriplets([str(toy_triplets)]).batch_fields == frozenset()


def test_scored_groups_read_query_docs_scores(tmp_path):
    from splade_lightning.data import ScoredGroups

    rows = [{"query": f"query {i}", "docs": [f"pos {i}", f"neg a {i}", f"neg b {i}"], "scores": [9.0, 2.0, 1.0 + i]}
            for i in range(3)]
    path = write_jsonl(tmp_path / "distill.jsonl", rows)
    source = ScoredGroups([str(path)], num_negatives=2, negative_sampling="top", layout="docs")
    assert source.problems() == [] and source.route_keys == ("query", "docs")
    example = source.load(0, "raise", SkippedRecords())[2]
    assert example.query == "query 2" and example.docs[0] == "pos 2"
    assert example.scores == [9.0, 3.0, 2.0]  # positive first, then the negatives by teacher score ("top")
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"query": "q", "docs": ["a", "b"], "scores": [1.0]},
                                               {"query": "q2", "docs": ["a"], "scores": ["x"]},
                                               {"query": "q3", "scores": [1.0]}])
    with pytest.raises(DataErrors) as info:
        ScoredGroups([str(bad)], layout="docs").load(0, "raise", SkippedRecords())
    message = str(info.value)
    assert f"{bad}:1: field 'scores': 1 scores for 2 text(s) in 'docs'" in message
    assert f"{bad}:2: field 'scores': expected a list of numbers" in message
    assert f"{bad}:3: field 'docs': missing column" in message
    assert "layout: must be 'pos_neg' or 'docs'" in "".join(ScoredGroups([str(path)], layout="x").problems())
