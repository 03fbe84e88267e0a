"""``python -m splade_lightning score``: output layout and order, scores equal to an independent computation per
teacher kind, the ensemble formula, rescoring, and clear errors (exit 2) on bad input."""

import json

import numpy as np
import pytest
import torch

import splade_lightning
from splade_lightning.models import DenseEncoder
from splade_lightning.tools.main import main

DOCS = {"d1": ("Cats", "the cat sat on the mat"), "d2": ("", "dogs bark at the postman"),
        "d3": ("Python", "python is a programming language"), "d4": ("", "the mat was red"),
        "d5": ("Snakes", "a python is a large snake"), "d6": ("", "lightning strikes twice"),
        "d7": ("", "the mat was red")}  # same text as d4: encoded once, same score
QUERIES = {"q1": "cat on a mat", "q2": "python language", "q3": "barking dogs"}
GROUPS = [{"qid": "q1", "pos": ["d1"], "neg": {"bm25": ["d4", "d1", "d7"], "dense": ["d6", "d4"]}},
          {"qid": "q2", "pos": ["d3", "d5"], "neg": ["d1"]},
          {"qid": "q3", "pos": ["d2"]}]
EXPECTED_IDS = [["d1", "d4", "d7", "d6"], ["d3", "d5", "d1"], ["d2"]]
EXPECTED_POS = [["d1"], ["d3", "d5"], ["d2"]]


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def doc_text(doc_id: str) -> str:
    title, text = DOCS[doc_id]
    return f"{title} {text}" if title else text


@pytest.fixture()
def data(tmp_path):
    write_jsonl(tmp_path / "corpus.jsonl", [{"_id": i, "title": t, "text": x} for i, (t, x) in DOCS.items()])
    write_jsonl(tmp_path / "queries.jsonl", [{"_id": i, "text": x} for i, x in QUERIES.items()])
    write_jsonl(tmp_path / "hard_negatives.jsonl", GROUPS)
    return tmp_path


@pytest.fixture(scope="module")
def cross_dir(tmp_path_factory, tokenizer_dir) -> str:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, num_labels=1)
    out = tmp_path_factory.mktemp("tiny_cross")
    BertForSequenceClassification(cfg).save_pretrained(out)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(out)
    return str(out)


def run(data, *teachers, extra=(), output="scores.jsonl", input_file="hard_negatives.jsonl"):
    args = ["score", "--input", str(data / input_file), "--queries", str(data / "queries.jsonl"),
            "--corpus", str(data), "--output", str(data / output), "--device", "cpu", "--no_progress"]
    for teacher in teachers:
        args += ["--teacher", teacher]
    exit_info = main([*args, *extra])
    return exit_info


def read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def check_layout(records, keys=("qid", "pos", "doc_ids", "scores")):
    assert [r["qid"] for r in records] == ["q1", "q2", "q3"]
    assert [r["doc_ids"] for r in records] == EXPECTED_IDS and [r["pos"] for r in records] == EXPECTED_POS
    for record in records:
        assert tuple(record) == keys and len(record["scores"]) == len(record["doc_ids"])


def test_sparse_teacher_equals_encode_and_dot(data, tiny_bert_dir):
    assert run(data, f"sparse:{tiny_bert_dir}") == 0
    records = read(data / "scores.jsonl")
    check_layout(records)
    model = splade_lightning.load(tiny_bert_dir)
    for record in records:
        query = model.encode_query(QUERIES[record["qid"]]).to_dense()
        docs = model.encode_document([doc_text(d) for d in record["doc_ids"]]).to_dense()
        np.testing.assert_allclose(record["scores"], (docs @ query).numpy(), rtol=1e-5, atol=1e-5)
    first = records[0]["scores"]
    assert first[1] == first[2]  # d4 and d7 share a text


def test_dense_teacher_equals_dense_encoder(data, tiny_encoder_dir):
    from transformers import AutoTokenizer

    assert run(data, f"dense:{tiny_encoder_dir}", extra=["--chunk_size", "2", "--batch_size", "3"]) == 0
    records = read(data / "scores.jsonl")
    check_layout(records)
    encoder, tokenizer = DenseEncoder(tiny_encoder_dir).eval(), AutoTokenizer.from_pretrained(tiny_encoder_dir)

    def embed(texts):
        batch = tokenizer(texts, padding=True, truncation=True, max_length=128, return_tensors="pt")
        with torch.no_grad():
            return encoder(batch["input_ids"], batch["attention_mask"])

    for record in records:
        expected = embed([doc_text(d) for d in record["doc_ids"]]) @ embed([QUERIES[record["qid"]]])[0]
        np.testing.assert_allclose(record["scores"], expected.numpy(), rtol=1e-5, atol=1e-6)


def test_cross_teacher_equals_the_logit(data, cross_dir):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    assert run(data, f"cross:{cross_dir}") == 0
    records = read(data / "scores.jsonl")
    check_layout(records)
    model, tokenizer = AutoModelForSequenceClassification.from_pretrained(cross_dir).eval(), \
        AutoTokenizer.from_pretrained(cross_dir)
    for record in records:
        docs = [doc_text(d) for d in record["doc_ids"]]
        batch = tokenizer([QUERIES[record["qid"]]] * len(docs), docs, padding=True, return_tensors="pt")
        with torch.no_grad():
            expected = model(**batch).logits[:, 0]
        np.testing.assert_allclose(record["scores"], expected.numpy(), rtol=1e-5, atol=1e-6)


def test_ensemble_of_two_teachers_is_the_opensearch_formula(data, tiny_bert_dir, tiny_encoder_dir):
    sparse, dense = f"sparse:{tiny_bert_dir}", f"dense:{tiny_encoder_dir}"
    assert run(data, sparse, output="sparse.jsonl") == 0
    assert run(data, dense, output="dense.jsonl") == 0
    assert run(data, sparse, dense, extra=["--keep_teacher_scores", "--scale", "30"]) == 0
    records = read(data / "scores.jsonl")
    check_layout(records, keys=("qid", "pos", "doc_ids", "scores", "teacher_scores"))
    singles = {sparse: read(data / "sparse.jsonl"), dense: read(data / "dense.jsonl")}
    for i, record in enumerate(records):
        normalised = []
        for label, single in singles.items():
            raw = np.array(record["teacher_scores"][label])
            np.testing.assert_allclose(raw, single[i]["scores"], rtol=1e-6)  # raw scores, as one teacher writes them
            normalised.append((raw - raw.min()) / (raw.max() - raw.min() + 1e-6))
        np.testing.assert_allclose(record["scores"], 30 * (normalised[0] + normalised[1]) / 2, rtol=1e-9, atol=1e-12)
    assert records[2]["scores"] == [0.0]  # one candidate: min-max gives 0, not NaN


def test_rescoring_a_score_file_keeps_its_order(data, tiny_bert_dir):
    assert run(data, f"sparse:{tiny_bert_dir}", extra=["--max_candidates", "2"], output="first.jsonl") == 0
    first = read(data / "first.jsonl")
    assert [r["doc_ids"] for r in first] == [ids[:2] for ids in EXPECTED_IDS]
    assert [r["pos"] for r in first] == [["d1"], ["d3", "d5"], ["d2"]]
    rows = [{**r, "doc_ids": r["doc_ids"][::-1], "scores": [0.0] * len(r["doc_ids"])} for r in first]
    del rows[0]["pos"]  # a score file without positives: none in the output either
    write_jsonl(data / "reversed.jsonl", rows)
    assert run(data, f"sparse:{tiny_bert_dir}", input_file="reversed.jsonl", output="second.jsonl") == 0
    second = read(data / "second.jsonl")
    assert [r["doc_ids"] for r in second] == [r["doc_ids"][::-1] for r in first]
    assert "pos" not in second[0] and [r["pos"] for r in second[1:]] == [["d3", "d5"], ["d2"]]
    for a, b in zip(first, second):
        np.testing.assert_allclose(b["scores"], a["scores"][::-1], rtol=1e-6)


def test_bad_input_exits_2_before_loading_teachers(data, tiny_bert_dir, capsys, monkeypatch):
    monkeypatch.setattr("splade_lightning.tools.score.load_teacher", lambda *a, **k: pytest.fail("teacher loaded"))
    write_jsonl(data / "bad.jsonl", [GROUPS[0], {"qid": "q9", "pos": ["d1"]}, {"qid": "q2", "pos": ["d1", "dx"]},
                                     {"qid": "q3", "pos": [], "neg": []}, {"qid": "q1", "pos": ["d2"]}])
    assert run(data, f"sparse:{tiny_bert_dir}", input_file="bad.jsonl") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: 4 problem(s)")
    assert "bad.jsonl:5: field 'qid': duplicate query id 'q1' (also on line 1)" in err
    assert "bad.jsonl:2: field 'qid': query id 'q9' is not in the queries file" in err
    assert "bad.jsonl:3: 1 doc id(s) not in the corpus: ['dx']" in err
    assert "bad.jsonl:4: query 'q3' has no candidates" in err
    assert not (data / "scores.jsonl").exists()


@pytest.mark.parametrize("teacher, extra, message", [
    ("remote:http://x", [], "unknown teacher kind 'remote'; expected one of ['sparse', 'dense', 'cross']"),
    ("dense:./no/such/model", [], "'./no/such/model' does not exist"),
    ("sparse:splade-tiny", ["--max_candidates", "0"], "--max_candidates must be >= 1, got 0"),
    ("sparse:splade-tiny", ["--scale", "nan"], "--scale nan: expected a finite number"),
    ("sparse:splade-tiny", ["--scale", "-1"], "--scale must be a finite number > 0"),
    ("sparse:splade-tiny", ["--teacher", "sparse:splade-tiny"], "given more than once"),
])
def test_bad_arguments_exit_2(data, capsys, teacher, extra, message):
    assert run(data, teacher, extra=extra) == 2
    assert message in capsys.readouterr().err


def test_missing_corpus_and_output_directory(data, capsys, tmp_path):
    (data / "corpus.jsonl").unlink()
    assert run(data, "sparse:splade-tiny") == 2
    assert "directory has no corpus.jsonl" in capsys.readouterr().err
    assert run(data, "sparse:splade-tiny", output=".") == 2
    assert "contains --input" in capsys.readouterr().err  # "." holds the inputs
    (data / "out_dir").mkdir()
    assert run(data, "sparse:splade-tiny", output=str(data / "out_dir")) == 2
    assert "is a directory" in capsys.readouterr().err


def test_cross_teacher_without_a_classification_head(data, tiny_encoder_dir, capsys):
    assert run(data, f"cross:{tiny_encoder_dir}") == 2
    err = capsys.readouterr().err
    assert "has no trained sequence-classification head" in err and not (data / "scores.jsonl").exists()
