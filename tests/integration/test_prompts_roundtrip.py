"""Prompts through the sentence-transformers exports: ``SparseEncoder(path).encode_query`` / ``encode_document`` give
our vectors for SPLADE, inference-free (Router) and CSR models saved with prompts, and the prompts load back (ours and
a third-party ``config_sentence_transformers.json``)."""

import json

import pytest
import torch

import splade_lightning
from splade_lightning.api import SparseModel
from splade_lightning.errors import ConfigError
from splade_lightning.models import QueryDocRouter, SpladeEncoder, StaticSparseEncoder

PROMPTS = {"query": "query: ", "document": "passage: "}
QUERIES = ["what is the capital of france", "cats and dogs"]
DOCS = ["paris is the capital of france", "dogs bark at cats"]


def dense(x: torch.Tensor) -> torch.Tensor:
    return (x.to_dense() if x.is_sparse else x).cpu()


def assert_st_matches(ours: SparseModel, path, atol: float = 1e-6) -> None:
    """sentence-transformers on ``path`` gives ``ours``' vectors, and they differ from encoding without prompts."""
    from sentence_transformers import SparseEncoder

    st = SparseEncoder(str(path), device="cpu")
    assert {k: st.prompts[k] for k in PROMPTS} == ours.prompts
    for encode, texts in (("encode_query", QUERIES), ("encode_document", DOCS)):
        mine = dense(getattr(ours, encode)(texts))
        torch.testing.assert_close(dense(getattr(st, encode)(texts)), mine, rtol=0, atol=atol)
        unprompted = dense(getattr(ours, encode)(texts, prompt=""))
        assert (mine - unprompted).abs().max() > 1e-3, f"{encode}: the prompt changes nothing; the test cannot fail"


@pytest.fixture(scope="module")
def tokenizer(tiny_bert_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_bert_dir)


def test_splade_export_round_trip(tiny_bert_dir, tokenizer, tmp_path):
    model = SparseModel(SpladeEncoder(tiny_bert_dir), tokenizer, 32, 32, prompts=PROMPTS)
    path = model.save(tmp_path / "splade")
    assert json.loads((path / "config_sentence_transformers.json").read_text())["prompts"] == PROMPTS
    assert json.loads((path / "splade_lightning.json").read_text())["prompts"] == PROMPTS
    again = splade_lightning.load(path)
    assert again.prompts == PROMPTS
    assert_st_matches(again, path)
    torch.testing.assert_close(again.encode_query(QUERIES).to_dense(), model.encode_query(QUERIES).to_dense())


def test_inference_free_router_export_round_trip(tiny_bert_dir, tokenizer, tmp_path):
    from splade_lightning.serialization.model_dir import save_encoder

    torch.manual_seed(0)
    query = StaticSparseEncoder(tiny_bert_dir)
    with torch.no_grad():
        query.weight.uniform_(0.0, 5.0)
    model = SparseModel(QueryDocRouter(SpladeEncoder(tiny_bert_dir), query), tokenizer, 16, 32, prompts=PROMPTS)
    path = save_encoder(model.encoder, tokenizer, tmp_path / "router", 16, 32, st_router=True, prompts=PROMPTS)
    assert splade_lightning.load(path).prompts == PROMPTS
    assert_st_matches(model, path)
    opensearch = splade_lightning.load(model.save(tmp_path / "opensearch"))  # prompts kept in splade_lightning.json
    assert opensearch.prompts == PROMPTS
    torch.testing.assert_close(opensearch.encode_query(QUERIES).to_dense(), model.encode_query(QUERIES).to_dense())


def test_csr_export_round_trip(tiny_encoder_dir, tmp_path):
    from transformers import AutoTokenizer

    from splade_lightning.models import DenseEncoder, SparseAutoEncoder
    from splade_lightning.models.csr_encoder import CSREncoder

    torch.manual_seed(0)
    sae = SparseAutoEncoder(32, hidden_dim=64, k=4, k_aux=8)
    with torch.no_grad():
        sae.encoder.weight.normal_()
    encoder = CSREncoder(DenseEncoder(tiny_encoder_dir, pooling="mean", normalize=True), sae)
    model = SparseModel(encoder, AutoTokenizer.from_pretrained(tiny_encoder_dir), 48, 48, prompts=PROMPTS)
    path = model.save(tmp_path / "csr")
    again = splade_lightning.load(path)
    assert again.prompts == PROMPTS
    assert_st_matches(again, path, atol=1e-5)  # the dense backbone's float error, as the CSR parity tests


def test_third_party_sentence_transformers_prompts(tiny_bert_dir, tokenizer, tmp_path):
    """A SparseEncoder directory without our prompts: config_sentence_transformers.json decides, with
    SparseEncoder's semantics ("passage" is not used by encode_document)."""
    path = SparseModel(SpladeEncoder(tiny_bert_dir), tokenizer, 32, 32).save(tmp_path / "third_party")
    meta_file, st_file = path / "splade_lightning.json", path / "config_sentence_transformers.json"
    meta_file.unlink()
    st_config = json.loads(st_file.read_text())
    st_file.write_text(json.dumps({**st_config, "prompts": {"query": "query: ", "passage": "passage: "},
                                   "default_prompt_name": "query"}))
    model = splade_lightning.load(path)
    assert model.prompts == {"query": "query: ", "document": ""}
    from sentence_transformers import SparseEncoder

    st = SparseEncoder(str(path), device="cpu")
    for encode, texts in (("encode_query", QUERIES), ("encode_document", DOCS)):
        torch.testing.assert_close(dense(getattr(st, encode)(texts)), dense(getattr(model, encode)(texts)),
                                   rtol=0, atol=1e-6)
    st_file.write_text(json.dumps({**st_config, "prompts": {"query": 7}}))
    with pytest.raises(ConfigError, match=r"config_sentence_transformers.json: prompts.query=7: expected a string"):
        splade_lightning.load(path)


def test_csr_without_prompt_tokens_in_pooling_is_refused(tiny_encoder_dir, tmp_path):
    from transformers import AutoTokenizer

    from splade_lightning.models import DenseEncoder, SparseAutoEncoder
    from splade_lightning.models.csr_encoder import CSREncoder

    encoder = CSREncoder(DenseEncoder(tiny_encoder_dir), SparseAutoEncoder(32, hidden_dim=64, k=4, k_aux=8))
    path = SparseModel(encoder, AutoTokenizer.from_pretrained(tiny_encoder_dir), prompts=PROMPTS).save(tmp_path / "c")
    (path / "splade_lightning.json").unlink()  # a sentence-transformers directory
    pooling = path / "1_Pooling" / "config.json"
    pooling.write_text(json.dumps({**json.loads(pooling.read_text()), "include_prompt": False}))
    with pytest.raises(ConfigError, match="include_prompt is false"):
        splade_lightning.load(path)


def test_opensearch_export_refuses_prompts(tiny_bert_dir, tokenizer, tmp_path, capsys):
    from splade_lightning.tools.main import main

    path = SparseModel(SpladeEncoder(tiny_bert_dir), tokenizer, prompts=PROMPTS).save(tmp_path / "m")
    assert main(["export", "--model", str(path), "--format", "opensearch", "--output", str(tmp_path / "os")]) == 2
    assert "cannot hold" in capsys.readouterr().err and not (tmp_path / "os").exists()
    st_out = tmp_path / "st"
    assert main(["export", "--model", str(path), "--format", "sentence-transformers", "--output", str(st_out)]) == 0
    assert splade_lightning.load(st_out).prompts == PROMPTS
