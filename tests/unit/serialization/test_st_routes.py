"""Routers with any route names (an asymmetric SPLADE with two MLMs, a static route under another name) through the
sentence-transformers Router layout: saved, loaded back, identical vectors in ``SparseEncoder``; and a Router
directory written by sentence-transformers itself loads with its vectors."""

import json

import pytest
import torch

import splade_lightning
from splade_lightning.api import SparseModel
from splade_lightning.errors import ConfigError
from splade_lightning.models import QueryDocRouter, Router, SpladeEncoder, StaticSparseEncoder

QUERIES = ["what is the capital of france", "cats and dogs dogs", "a very long query that is truncated " * 6]
DOCS = ["paris is the capital of france", "dogs bark at cats", "a python is a snake " * 20]


@pytest.fixture(scope="module")
def asymmetric(tiny_bert_dir, query_bert_dir) -> SparseModel:
    from transformers import AutoTokenizer

    router = Router({"document": SpladeEncoder(tiny_bert_dir), "query": SpladeEncoder(query_bert_dir)},
                    default_route="document")
    return SparseModel(router, AutoTokenizer.from_pretrained(tiny_bert_dir), max_query_length=12, max_doc_length=32)


def dense(x):
    return x.to_dense()


def test_asymmetric_splade_saves_as_st_router_and_matches_sentence_transformers(asymmetric, tmp_path):
    from sentence_transformers import SparseEncoder

    path = asymmetric.save(tmp_path / "asym")
    config = json.loads((path / "router_config.json").read_text())
    assert config["structure"] == {"document": ["document_0_MLMTransformer", "document_1_SpladePooling"],
                                   "query": ["query_0_MLMTransformer", "query_1_SpladePooling"]}
    assert config["parameters"]["default_route"] == "document"
    assert json.loads((path / "query_0_MLMTransformer" / "sentence_bert_config.json").read_text())[
        "max_seq_length"] == 12
    card = (path / "README.md").read_text()
    assert "Router (asymmetric) SPLADE" in card and "queries -> `query`, documents -> `document`" in card

    ours_q, ours_d = dense(asymmetric.encode_query(QUERIES)), dense(asymmetric.encode_document(DOCS))
    # the two routes are different encoders: the same texts give other vectors through the query route
    assert (dense(asymmetric.encode_query(DOCS)) - dense(asymmetric.encode_document(DOCS))).abs().max() > 0.1
    st = SparseEncoder(str(path), device="cpu")
    torch.testing.assert_close(st.encode_query(QUERIES, convert_to_tensor=True).to_dense(), ours_q, rtol=0, atol=1e-6)
    torch.testing.assert_close(st.encode_document(DOCS, convert_to_tensor=True).to_dense(), ours_d, rtol=0, atol=1e-6)

    again = splade_lightning.load(path)
    assert isinstance(again.encoder, Router) and set(again.encoder.routes) == {"query", "document"}
    assert (again.max_query_length, again.max_doc_length) == (12, 32)
    torch.testing.assert_close(dense(again.encode_query(QUERIES)), ours_q, rtol=0, atol=1e-6)
    torch.testing.assert_close(dense(again.encode_document(DOCS)), ours_d, rtol=0, atol=1e-6)


def test_any_route_names_with_a_static_route(tiny_bert_dir, tmp_path):
    """Routes named ``lookup`` / ``mlm``, the tasks mapped by ``task_routes`` (ST ``route_mappings``)."""
    from sentence_transformers import SparseEncoder
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    lookup = StaticSparseEncoder(tiny_bert_dir)
    with torch.no_grad():
        lookup.weight.uniform_(-1.0, 5.0)
    router = Router({"mlm": SpladeEncoder(tiny_bert_dir), "lookup": lookup},
                    task_routes={"query": "lookup", "document": "mlm"})
    model = SparseModel(router, AutoTokenizer.from_pretrained(tiny_bert_dir), max_query_length=12, max_doc_length=32)
    path = model.save(tmp_path / "named")
    params = json.loads((path / "router_config.json").read_text())["parameters"]
    assert params["default_route"] == "mlm"
    assert params["route_mappings"] == {"('query', None)": "lookup", "('document', None)": "mlm"}
    st = SparseEncoder(str(path), device="cpu")
    ours_q = dense(model.encode_query(QUERIES))
    torch.testing.assert_close(st.encode_query(QUERIES, convert_to_tensor=True).to_dense(), ours_q, rtol=0, atol=1e-6)
    torch.testing.assert_close(st.encode_document(DOCS, convert_to_tensor=True).to_dense(),
                               dense(model.encode_document(DOCS)), rtol=0, atol=1e-6)
    again = splade_lightning.load(path)
    assert isinstance(again.encoder, Router) and again.encoder.task_routes == {"query": "lookup", "document": "mlm"}
    torch.testing.assert_close(dense(again.encode_query(QUERIES)), ours_q, rtol=0, atol=1e-6)


def test_router_written_by_sentence_transformers_loads(tiny_bert_dir, query_bert_dir, tmp_path):
    from sentence_transformers import SparseEncoder
    from sentence_transformers.base.modules import Router as STRouter
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sparse_encoder.modules import SpladePooling

    def stack(name):
        mlm = Transformer(name, transformer_task="fill-mask", max_seq_length=24)
        return [mlm, SpladePooling(pooling_strategy="max", activation_function="relu")]

    router = STRouter({"q": stack(query_bert_dir), "d": stack(tiny_bert_dir)}, default_route="d",
                      route_mappings={("query", None): "q", ("document", None): "d"})
    st = SparseEncoder(modules=[router], similarity_fn_name="dot", device="cpu")
    path = tmp_path / "st_written"
    st.save(str(path))

    ours = splade_lightning.load(path)
    assert isinstance(ours.encoder, Router) and ours.encoder.task_routes == {"query": "q", "document": "d"}
    assert (ours.max_query_length, ours.max_doc_length) == (24, 24)
    st_q = st.encode_query(QUERIES, convert_to_tensor=True).to_dense()
    st_d = st.encode_document(DOCS, convert_to_tensor=True).to_dense()
    assert (st_q - st.encode_document(QUERIES, convert_to_tensor=True).to_dense()).abs().max() > 0.1
    torch.testing.assert_close(dense(ours.encode_query(QUERIES)), st_q, rtol=0, atol=1e-6)
    torch.testing.assert_close(dense(ours.encode_document(DOCS)), st_d, rtol=0, atol=1e-6)


def test_inference_free_router_dir_still_loads_as_query_doc_router(tiny_bert_dir, tmp_path):
    from transformers import AutoTokenizer

    router = QueryDocRouter(SpladeEncoder(tiny_bert_dir), StaticSparseEncoder(tiny_bert_dir))
    model = SparseModel(router, AutoTokenizer.from_pretrained(tiny_bert_dir), max_query_length=12, max_doc_length=32)
    from splade_lightning.serialization.model_dir import save_encoder

    path = save_encoder(router, model.tokenizer, tmp_path / "if", 12, 32, st_router=True)
    assert isinstance(splade_lightning.load(path).encoder, QueryDocRouter)


def test_unknown_route_modules_are_refused(asymmetric, tmp_path):
    path = asymmetric.save(tmp_path / "asym")
    config = json.loads((path / "router_config.json").read_text())
    config["types"]["query_1_SpladePooling"] = "sentence_transformers.base.modules.Normalize"
    (path / "router_config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"router_config.json: a route of modules \['MLMTransformer', 'Normalize'\]"):
        splade_lightning.load(path)


def test_checkpoint_payload_round_trip(asymmetric):
    from splade_lightning.serialization.checkpoint import checkpoint_payload
    from splade_lightning.serialization.registry import encoder_from_checkpoint

    state = {f"encoder.{k}": v for k, v in asymmetric.encoder.state_dict().items()}
    payload = checkpoint_payload(asymmetric.encoder)
    assert payload["route_backbones"]["query"]["backbone_config"]["num_hidden_layers"] == 3
    encoder, tokenizer = encoder_from_checkpoint({"state_dict": state, "splade_lightning": payload})
    rebuilt = SparseModel(encoder, tokenizer, 12, 32)
    torch.testing.assert_close(dense(rebuilt.encode_query(QUERIES)), dense(asymmetric.encode_query(QUERIES)))
    torch.testing.assert_close(dense(rebuilt.encode_document(DOCS)), dense(asymmetric.encode_document(DOCS)))
