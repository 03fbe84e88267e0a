"""``export --format qdrant``: the exported collection, loaded into qdrant-client's in-process Qdrant from its REST
bodies exactly as the module docstring documents, returns our exact search's top 10 for the exported query vectors
(ids, and scores to 1e-5), for every architecture; bad option combinations are refused before the model loads."""

import json
from itertools import islice
from pathlib import Path

import pytest
import torch

from splade_lightning.api import SparseModel
from splade_lightning.formats.beir_files import stream_id_texts
from splade_lightning.models import DenseEncoder, QueryDocRouter, SparseAutoEncoder, SpladeEncoder, StaticSparseEncoder
from splade_lightning.models.csr_encoder import CSREncoder
from splade_lightning.retrieval.exact import exact_search, to_run
from splade_lightning.tools.main import main

qdrant_client = pytest.importorskip("qdrant_client")
models = qdrant_client.models

REPO = Path(__file__).resolve().parents[2]
MSMARCO = REPO / "data" / "msmarco-trecdl-5k"
K = 10


def save(encoder, tokenizer_dir: str, path: Path) -> str:
    from transformers import AutoTokenizer

    return str(SparseModel(encoder, AutoTokenizer.from_pretrained(tokenizer_dir), 16, 32).save(path))


def sparse_splade(tiny_bert_dir: str) -> SpladeEncoder:
    """The random tiny SPLADE with its MLM bias lowered: about 170 of 30,522 dimensions active per text, as in a
    trained model (about 27,000 otherwise, which makes Qdrant's in-process scoring slow)."""
    encoder = SpladeEncoder(tiny_bert_dir)
    with torch.no_grad():
        encoder.mlm.cls.predictions.bias.fill_(-0.35)
    return encoder


@pytest.fixture(scope="module")
def splade_dir(tmp_path_factory, tiny_bert_dir, tokenizer_dir) -> str:
    return save(sparse_splade(tiny_bert_dir), tokenizer_dir, tmp_path_factory.mktemp("splade") / "model")


@pytest.fixture(scope="module")
def inference_free_dir(tmp_path_factory, tiny_bert_dir, tokenizer_dir) -> str:
    torch.manual_seed(0)
    query = StaticSparseEncoder(tiny_bert_dir)
    with torch.no_grad():
        query.weight.uniform_(-1.0, 5.0)
    return save(QueryDocRouter(sparse_splade(tiny_bert_dir), query), tokenizer_dir,
                tmp_path_factory.mktemp("if") / "model")


@pytest.fixture(scope="module")
def csr_dir(tmp_path_factory, tiny_encoder_dir) -> str:
    torch.manual_seed(0)
    encoder = CSREncoder(DenseEncoder(tiny_encoder_dir), SparseAutoEncoder(32, hidden_dim=64, k=4, k_aux=8))
    return save(encoder, tiny_encoder_dir, tmp_path_factory.mktemp("csr") / "model")


@pytest.fixture()
def msmarco_slice(tmp_path) -> Path:
    """The first 100 documents of data/msmarco-trecdl-5k with its 43 queries."""
    root = tmp_path / "msmarco-100"
    root.mkdir()
    with open(MSMARCO / "corpus.jsonl", encoding="utf-8") as corpus:
        (root / "corpus.jsonl").write_text("".join(islice(corpus, 100)), encoding="utf-8")
    (root / "queries.jsonl").write_text((MSMARCO / "queries.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    return root


def export(*args: str) -> int:
    return main(["export", "--format", "qdrant", "--no_progress", *args])


def load_collection(out: Path, name: str = "export") -> qdrant_client.QdrantClient:
    """The documented qdrant-client loader (serialization/qdrant.py), on an in-process Qdrant."""
    client = qdrant_client.QdrantClient(":memory:")
    body = models.CreateCollection.model_validate_json((out / "collection.json").read_text())
    client.create_collection(name, sparse_vectors_config=body.sparse_vectors)
    for f in sorted((out / "points").glob("*.json")):
        client.upsert(name, models.PointsList.model_validate_json(f.read_text()).points)
    return client


def qdrant_run(client: qdrant_client.QdrantClient, out: Path, name: str = "export") -> dict[str, list]:
    """``{query id: [(doc id, score), ...]}``: Qdrant's top K for every exported query vector."""
    run = {}
    for line in (out / "queries.jsonl").read_text().splitlines():
        query = json.loads(line)
        hits = client.query_points(name, query=models.SparseVector(indices=query["indices"], values=query["values"]),
                                   using="splade", limit=K, with_payload=True).points
        run[query["_id"]] = [(hit.payload["_id"], hit.score) for hit in hits]
    return run


def exact_run(model_name: str, data: Path) -> dict[str, dict[str, float]]:
    """Every document's score for every query, in our exact search's order (score desc, corpus order in ties)."""
    import splade_lightning

    model = splade_lightning.load(model_name)
    doc_ids, docs = zip(*stream_id_texts(data, "doc"))
    query_ids, queries = zip(*stream_id_texts(data, "query"))
    query_reps, doc_reps = model.encode_query(list(queries)), model.encode_document(list(docs), batch_size=64)
    scores, indices = exact_search(query_reps, doc_reps, len(doc_ids))
    return to_run(list(query_ids), list(doc_ids), scores, indices)


def assert_same_top(theirs: dict[str, list], ours: dict[str, dict[str, float]]) -> None:
    """Qdrant's hits are a top K of ours: the same scores rank by rank, each hit's score is its score here, and every
    document scoring above the K-th score is a hit (documents tied at the K-th score may differ). Qdrant leaves out
    documents sharing no dimension with the query, which score 0 here."""
    assert theirs.keys() == ours.keys()
    close = {"rel": 1e-5, "abs": 1e-5}
    for query_id, hits in theirs.items():
        expected = [(doc, score) for doc, score in islice(ours[query_id].items(), K) if score > 0]
        assert [score for _, score in hits] == pytest.approx([score for _, score in expected], **close), query_id
        assert {doc: score for doc, score in hits} == pytest.approx({doc: ours[query_id][doc] for doc, _ in hits},
                                                                    **close)
        cut = expected[-1][1] * (1 + 1e-5) + 1e-5 if expected else 0.0
        assert {doc for doc, score in expected if score > cut} <= {doc for doc, _ in hits}, query_id


@pytest.mark.parametrize(("model", "data"), [("splade_dir", "toy_beir"), ("inference_free_dir", "toy_beir"),
                                             ("csr_dir", "msmarco_slice")])
def test_qdrant_returns_our_exact_top10(model, data, request, tmp_path):
    model, data = request.getfixturevalue(model), request.getfixturevalue(data)
    out = tmp_path / "qdrant"
    assert export("--model", model, "--corpus", str(data), "--queries", str(data), "--batch_size", "16",
                  "--output", str(out)) == 0
    info = json.loads((out / "export_info.json").read_text())
    n_docs = sum(1 for _ in stream_id_texts(data, "doc"))
    assert (info["documents"], info["points_files"]) == (n_docs, (n_docs + 999) // 1000)
    assert_same_top(qdrant_run(load_collection(out), out), exact_run(model, data))


@pytest.mark.parametrize(("args", "message"), [
    (["--corpus", "CORPUS", "--quantization", "100"],
     "--quantization only applies to --format anserini (got --format qdrant); qdrant stores the float32 weights"),
    ([], "--corpus is required with --format qdrant"),
    (["--corpus", "CORPUS", "--batch_size", "0"], "--batch_size 0: expected an integer >= 1"),
    (["--corpus", "CORPUS", "--queries", "missing.jsonl"], "--queries"),
])
def test_bad_options_are_refused_before_loading(args, message, toy_beir, tmp_path, capsys, monkeypatch):
    import splade_lightning.api

    def no_load(*_args, **_kwargs):
        raise AssertionError("the model must not be loaded before the arguments are checked")

    monkeypatch.setattr(splade_lightning.api, "load", no_load)
    args = [str(toy_beir) if a == "CORPUS" else a for a in args]
    assert export("--model", "splade-tiny", "--output", str(tmp_path / "o"), *args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_splade_tiny_on_msmarco_5k_matches_exact_search(tmp_path):
    """SPLADE-tiny, 5,000 passages, all 43 TREC DL queries: Qdrant's top 10 is our exact top 10."""
    out = tmp_path / "qdrant"
    assert export("--model", "splade-tiny", "--corpus", str(MSMARCO), "--queries", str(MSMARCO), "--batch_size", "64",
                  "--output", str(out)) == 0
    theirs = qdrant_run(load_collection(out), out)
    assert len(theirs) == 43 and all(len(hits) == K for hits in theirs.values())
    assert_same_top(theirs, exact_run("splade-tiny", MSMARCO))
