"""Inference-free models save in OpenSearch's layout (MLM directory + idf.json) and load back through ``load``."""

import json

import pytest
import torch

import splade_lightning
from splade_lightning.api import SparseModel
from splade_lightning.models import QueryDocRouter, SpladeEncoder, StaticSparseEncoder

QUERIES = ["what is the capital of france", "cats and dogs"]
DOCS = ["paris is the capital of france", "dogs bark at cats", "a python is a snake"]


@pytest.fixture()
def model(tiny_bert_dir):
    from transformers import AutoTokenizer

    torch.manual_seed(0)
    query = StaticSparseEncoder(tiny_bert_dir)
    with torch.no_grad():
        query.weight.uniform_(-1.0, 5.0)  # as if trained: some weights negative (clamped), some zero
        query.weight[:1000] = 0.0
    router = QueryDocRouter(SpladeEncoder(tiny_bert_dir), query)
    return SparseModel(router, AutoTokenizer.from_pretrained(tiny_bert_dir), max_query_length=16, max_doc_length=64)


def test_export_is_opensearch_layout_and_reloads(model, tmp_path):
    path = model.save(tmp_path / "exported")
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    assert json.loads((path / "config.json").read_text())["architectures"] == ["BertForMaskedLM"]
    table = json.loads((path / "idf.json").read_text())
    assert len(table) == len(model.tokenizer) and min(table.values()) >= 0.0  # every token, relu'd
    assert table["[CLS]"] == 0.0
    assert not (path / "modules.json").exists()  # sentence-transformers would load it as a siamese SPLADE

    again = splade_lightning.load(path)
    assert isinstance(again.encoder, QueryDocRouter)
    torch.testing.assert_close(again.encode_query(QUERIES).to_dense(), model.encode_query(QUERIES).to_dense())
    torch.testing.assert_close(again.encode_document(DOCS).to_dense(), model.encode_document(DOCS).to_dense())
    assert again.max_query_length == 16 and again.max_doc_length == 64


def test_plain_opensearch_directory_loads(model, tmp_path):
    """An OpenSearch inference-free model: an MLM directory with idf.json beside the weights, nothing of ours."""
    path = model.save(tmp_path / "os_model")
    (path / "splade_lightning.json").unlink()
    loaded = splade_lightning.load(path)
    assert isinstance(loaded.encoder, QueryDocRouter) and loaded.encoder.query_encoder.frozen
    torch.testing.assert_close(loaded.encode_query(QUERIES).to_dense(), model.encode_query(QUERIES).to_dense())
    torch.testing.assert_close(loaded.encode_document(DOCS).to_dense(), model.encode_document(DOCS).to_dense())
    query = loaded.encode_query("capital of france")
    tokens = {t for t, _ in loaded.decode(query)}
    assert tokens <= {"capital", "of", "france"}  # a lookup: no expansion, no special tokens


def test_idf_aware_factor_is_folded_into_the_export(tiny_bert_dir, tmp_path):
    from transformers import AutoTokenizer

    score = tmp_path / "score.json"
    score.write_text(json.dumps({"capital": 3.0}))
    router = QueryDocRouter(SpladeEncoder(tiny_bert_dir), StaticSparseEncoder(tiny_bert_dir), score_idf=str(score))
    model = SparseModel(router, AutoTokenizer.from_pretrained(tiny_bert_dir))
    loaded = splade_lightning.load(model.save(tmp_path / "m"))
    torch.testing.assert_close(loaded.encode_query(QUERIES).to_dense(), model.encode_query(QUERIES).to_dense())
    assert json.loads((tmp_path / "m" / "idf.json").read_text())["capital"] == 3.0


def test_checkpoint_payload_roundtrip(model):
    from splade_lightning.serialization.checkpoint import checkpoint_payload
    from splade_lightning.serialization.registry import encoder_from_checkpoint

    state = {f"encoder.{k}": v for k, v in model.encoder.state_dict().items()}
    checkpoint = {"state_dict": state, "splade_lightning": checkpoint_payload(model.encoder)}
    encoder, tokenizer = encoder_from_checkpoint(checkpoint)
    rebuilt = SparseModel(encoder, tokenizer, 16, 64)
    torch.testing.assert_close(rebuilt.encode_query(QUERIES).to_dense(), model.encode_query(QUERIES).to_dense())
    torch.testing.assert_close(rebuilt.encode_document(DOCS).to_dense(), model.encode_document(DOCS).to_dense())
