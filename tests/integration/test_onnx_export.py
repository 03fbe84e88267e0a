"""``export --format onnx``: the graph holds the whole encoder (pooling included), onnxruntime gives our vectors, and
``splade_lightning.load`` runs the export; retrieval through it gives our nDCG@10.

Default suite: the tiny random models (SPLADE and inference-free) and a slice of msmarco-trecdl-5k and cranfield with
the real SPLADE-tiny. Slow tier: every document of the bundled evaluation corpora, and nDCG@10 on the full
msmarco-trecdl-5k and cranfield.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from conftest import SHARED_DATA, write_jsonl  # noqa: E402

import splade_lightning  # noqa: E402
from splade_lightning.api import SparseModel  # noqa: E402
from splade_lightning.errors import ConfigError  # noqa: E402
from splade_lightning.formats.beir import load_beir  # noqa: E402
from splade_lightning.models import QueryDocRouter, SpladeEncoder, StaticSparseEncoder  # noqa: E402
from splade_lightning.retrieval.evaluation import evaluate_retrieval  # noqa: E402
from splade_lightning.tools.main import main  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
# (the long text stays within the tiny model's 128 positions)
TEXTS = ["what is the capital of france", "dogs bark ☃ at cats", "a python is a snake " * 20, "x", ""]


def export(*args: str) -> int:
    return main(["export", *args])


def dense(reps: torch.Tensor) -> torch.Tensor:
    return reps.to_dense() if reps.is_sparse else reps


@pytest.fixture(scope="module")
def splade_onnx(tmp_path_factory, tiny_bert_dir) -> tuple[str, str]:
    out = tmp_path_factory.mktemp("onnx") / "splade"
    assert export("--model", tiny_bert_dir, "--format", "onnx", "--quantize", "int8", "--output", str(out)) == 0
    return tiny_bert_dir, str(out)


def test_layout_and_contract(splade_onnx):
    import onnxruntime as ort

    _, out = splade_onnx
    root = Path(out)
    assert {p.name for p in root.iterdir()} >= {"model.onnx", "model_int8.onnx", "tokenizer.json",
                                                "splade_lightning.json", "splade_lightning.manifest.json"}
    meta = json.loads((root / "splade_lightning.json").read_text())
    assert meta["layout"] == "onnx" and meta["architecture"] == "splade"
    assert (meta["pooling"], meta["activation"], meta["vocab_size"]) == ("max", "relu", 30522)
    session = ort.InferenceSession(str(root / "model.onnx"), providers=["CPUExecutionProvider"])
    inputs = [(i.name, i.type, i.shape) for i in session.get_inputs()]
    assert inputs == [("input_ids", "tensor(int64)", ["batch", "sequence"]),
                      ("attention_mask", "tensor(int64)", ["batch", "sequence"])]
    (output,) = session.get_outputs()
    assert (output.name, output.type, output.shape) == ("sparse_embedding", "tensor(float)", ["batch", 30522])


def test_onnxruntime_equals_encode_document(splade_onnx):
    source, out = splade_onnx
    ours, onnx = splade_lightning.load(source), splade_lightning.load(out)
    for texts in (TEXTS, TEXTS[:1], TEXTS[2:3]):  # batch of one and a single long text: dynamic axes
        expected = dense(ours.encode_document(texts))
        got = dense(onnx.encode_document(texts))
        assert got.shape == expected.shape
        assert (got - expected).abs().max() <= 1e-4
        assert (dense(onnx.encode_query(texts)) - dense(ours.encode_query(texts))).abs().max() <= 1e-4
    # the raw graph, as another tool calls it: the tokenizer's arrays in, our vectors out
    import numpy as np

    batch = ours.tokenizer(TEXTS[:3], padding=True, truncation=True, max_length=32, return_tensors="np")
    (raw,) = onnx.encoder.session.run(["sparse_embedding"], {k: batch[k].astype(np.int64) for k in
                                                             ("input_ids", "attention_mask")})
    with torch.no_grad():
        expected = ours.encoder.encode_doc(torch.from_numpy(batch["input_ids"]),
                                           torch.from_numpy(batch["attention_mask"]))
    assert np.abs(raw - expected.numpy()).max() <= 1e-4


def test_int8_model_loads_from_its_file(splade_onnx):
    _, out = splade_onnx
    int8 = splade_lightning.load(Path(out) / "model_int8.onnx")
    assert int8.encoder.model_file.name == "model_int8.onnx"
    reps = dense(int8.encode_document(TEXTS))
    assert reps.shape == (len(TEXTS), 30522) and bool((reps >= 0).all())


def test_inference_free_export(tmp_path, tiny_bert_dir):
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    query = StaticSparseEncoder(tiny_bert_dir)
    with torch.no_grad():
        query.weight.uniform_(-1.0, 5.0)
    model = SparseModel(QueryDocRouter(SpladeEncoder(tiny_bert_dir), query),
                        AutoTokenizer.from_pretrained(tiny_bert_dir), max_query_length=16, max_doc_length=32)
    source = model.save(tmp_path / "if")
    assert export("--model", str(source), "--format", "onnx", "--output", str(tmp_path / "onnx")) == 0
    assert (tmp_path / "onnx" / "idf.json").is_file()
    ours, onnx = splade_lightning.load(source), splade_lightning.load(tmp_path / "onnx")
    assert (onnx.max_query_length, onnx.max_doc_length) == (16, 32)
    assert (dense(onnx.encode_document(TEXTS)) - dense(ours.encode_document(TEXTS))).abs().max() <= 1e-4
    assert torch.equal(dense(onnx.encode_query(TEXTS)), dense(ours.encode_query(TEXTS)))  # the same lookup table


def test_refusals(tmp_path, splade_onnx, capsys, monkeypatch):
    source, out = splade_onnx
    onnx = splade_lightning.load(out)
    with pytest.raises(ConfigError, match="ONNX Runtime"):
        onnx.save(tmp_path / "resaved")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as on a GPU machine
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert splade_lightning.load(out, device="auto").device.type == "cpu"  # evaluate's default device
    assert splade_lightning.load(out).device.type == "cpu"  # load's default: auto
    with pytest.raises(ConfigError, match="runs on the CPU"):
        splade_lightning.load(out, device="cuda")
    monkeypatch.undo()
    assert export("--model", source, "--format", "opensearch", "--quantize", "int8", "--output",
                  str(tmp_path / "x")) == 2
    assert "--quantize only applies to --format onnx" in capsys.readouterr().err
    assert export("--model", out, "--format", "onnx", "--output", str(tmp_path / "again")) == 2
    assert "was loaded from an ONNX export" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "again").exists()


def beir_slice(source: Path, out: Path, n_queries: int, n_docs: int) -> Path:
    """The first ``n_queries`` judged queries with every document they judge, plus the first ``n_docs`` documents."""
    qrels = [line.split("\t") for line in (source / "qrels" / "test.tsv").read_text().splitlines()[1:]]
    queries = list(dict.fromkeys(q for q, _, _ in qrels))[:n_queries]
    judged = {d for q, d, _ in qrels if q in queries}
    corpus = [json.loads(line) for line in (source / "corpus.jsonl").read_text().split("\n") if line]
    write_jsonl(out / "corpus.jsonl", [r for i, r in enumerate(corpus) if i < n_docs or r["_id"] in judged])
    rows = [json.loads(line) for line in (source / "queries.jsonl").read_text().split("\n") if line]
    write_jsonl(out / "queries.jsonl", [r for r in rows if r["_id"] in queries])
    (out / "qrels").mkdir()
    (out / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(
        "\t".join(row) + "\n" for row in qrels if row[0] in queries))
    return out


def ndcg_both_ways(torch_model, onnx_model, data_dir: Path) -> tuple[float, float, float]:
    """nDCG@10 with our encoder and with the ONNX export, and the largest |Δ| between their document vectors."""
    data = load_beir(data_dir, "test")
    query_ids, doc_ids = list(data.queries), list(data.corpus)
    results, docs = [], []
    for model in (torch_model, onnx_model):
        queries = model.encode_query([data.queries[q] for q in query_ids], 32)
        docs.append(model.encode_document([data.corpus[d] for d in doc_ids], 32))
        results.append(evaluate_retrieval(query_ids, queries, doc_ids, docs[-1], data.qrels, data.min_relevance,
                                          100, ("ndcg@10",)).metrics["ndcg@10"])
    return results[0], results[1], float((docs[0] - docs[1]).coalesce().values().abs().max())


@pytest.fixture(scope="module")
def splade_tiny_onnx(tmp_path_factory) -> tuple[SparseModel, SparseModel]:
    out = tmp_path_factory.mktemp("onnx") / "splade-tiny"
    assert export("--model", "splade-tiny", "--format", "onnx", "--output", str(out)) == 0
    return splade_lightning.load("splade-tiny"), splade_lightning.load(out)


SETS = {"msmarco-trecdl-5k": REPO / "data" / "msmarco-trecdl-5k", "cranfield": SHARED_DATA / "cranfield"}


@pytest.mark.parametrize("name", sorted(SETS))
def test_ndcg_through_onnx_on_a_slice(name, splade_tiny_onnx, tmp_path):
    if not SETS[name].is_dir():
        pytest.skip(f"{SETS[name]} is not here (cranfield comes with ../shared/data)")
    data_dir = beir_slice(SETS[name], tmp_path / name, n_queries=5, n_docs=80)
    ours, onnx, delta = ndcg_both_ways(*splade_tiny_onnx, data_dir)
    assert delta <= 1e-4
    assert round(onnx, 4) == round(ours, 4)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SETS))
def test_ndcg_through_onnx_on_the_full_set(name, splade_tiny_onnx):
    if not SETS[name].is_dir():
        pytest.skip(f"{SETS[name]} is not here (cranfield comes with ../shared/data)")
    ours, onnx, delta = ndcg_both_ways(*splade_tiny_onnx, SETS[name])
    assert delta <= 1e-4
    assert round(onnx, 4) == round(ours, 4)


@pytest.mark.slow
def test_every_bundled_corpus_encodes_alike(splade_tiny_onnx):
    """hotpotqa-500's 4,858 paragraphs (msmarco-trecdl-5k is covered by the full-set test above)."""
    ours, onnx = splade_tiny_onnx
    texts = list(load_beir(REPO / "data" / "hotpotqa-500", "dev").corpus.values())
    delta = (ours.encode_document(texts, 32) - onnx.encode_document(texts, 32)).coalesce().values().abs().max()
    assert float(delta) <= 1e-4
