"""``export --format sentence-transformers`` of inference-free models (Router layout) and ``--format anserini``."""

import json

import pytest
import torch

import splade_lightning
from splade_lightning.api import SparseModel
from splade_lightning.models import QueryDocRouter, SpladeEncoder, StaticSparseEncoder
from splade_lightning.serialization.anserini import query_line
from splade_lightning.tools.main import main

QUERIES = ["what is the capital of france", "cats and dogs dogs", "zqxjv ☃ [UNK] snowman",
           "a very long query that is truncated " * 6]
DOCS = ["paris is the capital of france", "dogs bark ☃ at cats", "a python is a snake " * 20]


@pytest.fixture(scope="module")
def inference_free_dir(tmp_path_factory, tiny_bert_dir) -> str:
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    query = StaticSparseEncoder(tiny_bert_dir)
    with torch.no_grad():
        query.weight.uniform_(-1.0, 5.0)  # some negative (relu'd)
        query.weight[100] = 3.0  # [UNK]: ST would score it, ours zeroes specials
    router = QueryDocRouter(SpladeEncoder(tiny_bert_dir), query)
    model = SparseModel(router, AutoTokenizer.from_pretrained(tiny_bert_dir), max_query_length=16, max_doc_length=32)
    return str(model.save(tmp_path_factory.mktemp("if") / "model"))


@pytest.fixture(scope="module")
def st_router_dir(tmp_path_factory, inference_free_dir) -> str:
    out = tmp_path_factory.mktemp("st") / "router"
    assert run(["--model", inference_free_dir, "--format", "sentence-transformers", "--output", str(out)]) == 0
    return str(out)


def run(args):
    exit_info = main(["export", *args])
    return exit_info


def test_router_layout(st_router_dir, inference_free_dir):
    from pathlib import Path

    root = Path(st_router_dir)
    assert json.loads((root / "modules.json").read_text()) == [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Router"}]
    config = json.loads((root / "router_config.json").read_text())
    assert config["structure"] == {"query": ["query_0_SparseStaticEmbedding"],
                                   "document": ["document_0_MLMTransformer", "document_1_SpladePooling"]}
    assert config["parameters"]["default_route"] == "document"
    assert json.loads((root / "config_sentence_transformers.json").read_text())["model_type"] == "SparseEncoder"
    assert (root / "document_0_MLMTransformer" / "model.safetensors").is_file()
    from safetensors.torch import load_file

    weight = load_file(str(root / "query_0_SparseStaticEmbedding" / "model.safetensors"))["weight"]
    ours = splade_lightning.load(inference_free_dir).encoder.query_term_weights()
    assert weight.dtype == torch.float32 and torch.equal(weight, ours)
    assert weight[100] == 0.0 and weight.min() >= 0.0  # [UNK] (special) and negatives exported as 0


def test_sentence_transformers_loads_router_with_our_vectors(st_router_dir, inference_free_dir):
    from sentence_transformers import SparseEncoder

    st = SparseEncoder(st_router_dir, device="cpu")
    ours = splade_lightning.load(inference_free_dir)
    torch.testing.assert_close(st.encode_query(QUERIES, convert_to_tensor=True).to_dense(),
                               ours.encode_query(QUERIES).to_dense(), rtol=0, atol=1e-5)
    torch.testing.assert_close(st.encode_document(DOCS, convert_to_tensor=True).to_dense(),
                               ours.encode_document(DOCS).to_dense(), rtol=0, atol=1e-5)


def test_router_dir_loads_back(st_router_dir, inference_free_dir):
    again, ours = splade_lightning.load(st_router_dir), splade_lightning.load(inference_free_dir)
    assert isinstance(again.encoder, QueryDocRouter)
    assert (again.max_query_length, again.max_doc_length) == (16, 32)
    torch.testing.assert_close(again.encode_query(QUERIES).to_dense(), ours.encode_query(QUERIES).to_dense())
    torch.testing.assert_close(again.encode_document(DOCS).to_dense(), ours.encode_document(DOCS).to_dense())


def read_shards(out):
    return [json.loads(line) for f in sorted(out.glob("collection/docs-*.jsonl"))
            for line in f.read_text().splitlines()]


def test_anserini_export(inference_free_dir, toy_beir, tmp_path):
    out = tmp_path / "impacts"
    assert run(["--model", inference_free_dir, "--format", "anserini", "--corpus", str(toy_beir), "--queries",
                str(toy_beir), "--quantization", "50", "--batch_size", "4", "--output", str(out)]) == 0
    model = splade_lightning.load(inference_free_dir)
    records = read_shards(out)
    corpus = [json.loads(line) for line in (toy_beir / "corpus.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [d["_id"] for d in corpus]  # every id, in corpus order
    texts = [f"{d['title']} {d['text']}" if d["title"] else d["text"] for d in corpus]
    reps = model.encode_document(texts).to_dense()
    for record, rep in zip(records, reps):
        assert record["contents"] == ""
        expected = {tok: round(w * 50) for tok, w in model.decode(rep) if round(w * 50) != 0}
        assert record["vector"] == expected and all(v != 0 for v in record["vector"].values())
    assert json.loads((out / "export_info.json").read_text())["quantization"] == 50.0

    lines = (out / "queries.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["q1", "q2", "q3"]
    query_rep = model.encode_query(["cat on a mat"]).to_dense()[0]
    tokens = lines[0].split("\t")[1].split(" ")
    expected = {tok: round(w * 50) for tok, w in model.decode(query_rep) if round(w * 50) > 0}
    assert {tok: tokens.count(tok) for tok in set(tokens)} == expected


def test_query_line_repeats_tokens_by_impact():
    assert query_line("q7", {2: 1, 0: 3, 1: 0}, ["cat", "dog", "##s"]) == "q7\tcat cat cat ##s"


def test_anserini_shards(inference_free_dir, toy_beir, tmp_path):
    from splade_lightning.serialization.anserini import export_corpus

    (tmp_path / "o").mkdir()
    n = export_corpus(splade_lightning.load(inference_free_dir), toy_beir, tmp_path / "o", shard_size=4,
                      progress=False)
    assert n == 6 and sorted(p.name for p in (tmp_path / "o").iterdir()) == ["collection"]
    assert sorted(p.name for p in (tmp_path / "o" / "collection").iterdir()) == ["docs-00000.jsonl",
                                                                                 "docs-00001.jsonl"]
    assert len(read_shards(tmp_path / "o")) == 6


@pytest.mark.parametrize(("args", "names"), [
    (["--format", "anserini"], ["--corpus"]),
    (["--format", "opensearch", "--corpus", "c.jsonl"], ["--corpus", "anserini"]),
    (["--format", "sentence-transformers", "--queries", "q.jsonl", "--quantization", "10"],
     ["--queries", "--quantization"]),
    (["--format", "anserini", "--corpus", "missing_dir"], ["--corpus", "missing_dir"]),
    (["--format", "anserini", "--corpus", "CORPUS", "--quantization", "0"], ["--quantization"]),
    (["--format", "anserini", "--corpus", "CORPUS", "--batch_size", "0"], ["--batch_size"]),
])
def test_argument_errors_before_loading(args, names, toy_beir, tmp_path, capsys, monkeypatch):
    import splade_lightning.api

    def no_load(*_args, **_kwargs):
        raise AssertionError("the model must not be loaded before the arguments are checked")

    monkeypatch.setattr(splade_lightning.api, "load", no_load)
    args = [str(toy_beir) if a == "CORPUS" else a for a in args]
    assert run(["--model", "does/not-matter", "--output", str(tmp_path / "o"), *args]) == 2
    err = capsys.readouterr().err
    assert all(name in err for name in names), err
    assert not (tmp_path / "o").exists()


def test_bad_corpus_record_leaves_no_output(inference_free_dir, tmp_path, capsys):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "a", "text": "ok"}\n{"text": "no id"}\n')
    out = tmp_path / "o"
    assert run(["--model", inference_free_dir, "--format", "anserini", "--corpus", str(corpus),
                "--output", str(out)]) == 2
    assert "_id" in capsys.readouterr().err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".o.tmp")]


def test_anserini_csr_latent_names(tmp_path, tiny_encoder_dir, toy_beir):
    from transformers import AutoTokenizer

    from splade_lightning.models import DenseEncoder, SparseAutoEncoder
    from splade_lightning.models.csr_encoder import CSREncoder
    from splade_lightning.serialization.anserini import export_corpus

    torch.manual_seed(0)
    model = SparseModel(CSREncoder(DenseEncoder(tiny_encoder_dir), SparseAutoEncoder(32, hidden_dim=64, k=4, k_aux=8)),
                        AutoTokenizer.from_pretrained(tiny_encoder_dir), 16, 32)
    assert export_corpus(model, toy_beir, tmp_path, quantization=1000, progress=False) == 6
    records = read_shards(tmp_path)
    assert all(0 < len(r["vector"]) <= 4 and all(k.startswith("latent_") for k in r["vector"]) for r in records)
