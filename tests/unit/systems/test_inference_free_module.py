"""InferenceFreeSpladeModule: the query table in its own optimiser group, document-only FLOPS, routed training."""

import pytest
import torch

from splade_lightning.errors import ConfigError
from splade_lightning.models import QueryDocRouter, SpladeEncoder, StaticSparseEncoder
from splade_lightning.systems import InferenceFreeSpladeModule
from splade_lightning.types import TrainBatch


@pytest.fixture()
def router(tiny_bert_dir):
    return QueryDocRouter(SpladeEncoder(tiny_bert_dir), StaticSparseEncoder(tiny_bert_dir))


def test_parameter_groups(router):
    module = InferenceFreeSpladeModule(router, lr=2e-5, weight_decay=0.01, idf_lr=1e-3, idf_weight_decay=0.1)
    groups = module.parameter_groups()
    idf = [g for g in groups if g["name"] == "idf"]
    assert len(idf) == 1 and idf[0]["lr"] == 1e-3 and idf[0]["weight_decay"] == 0.1
    assert idf[0]["params"] == [router.query_encoder.weight]
    others = [p for g in groups if g["name"] != "idf" for p in g["params"]]
    assert {id(p) for p in others} == {id(p) for p in router.doc_encoder.parameters()}
    assert {g["weight_decay"] for g in groups if g["name"] != "idf"} == {0.01, 0.0}
    optimizer = torch.optim.AdamW(groups, lr=2e-5)
    assert [g["lr"] for g in optimizer.param_groups if g["name"] == "idf"] == [1e-3]
    assert all(g["lr"] == 2e-5 for g in optimizer.param_groups if g["name"] != "idf")


def test_frozen_table_has_no_group(tiny_bert_dir):
    router = QueryDocRouter(SpladeEncoder(tiny_bert_dir), StaticSparseEncoder(tiny_bert_dir, frozen=True))
    module = InferenceFreeSpladeModule(router)
    assert all(g["name"] != "idf" for g in module.parameter_groups())


def test_defaults_regularise_documents_only(router):
    module = InferenceFreeSpladeModule(router)
    assert module.hparams.query_reg_weight == 0.0 and module.hparams.doc_reg_weight == 3e-4
    assert module.hparams.idf_lr == 1e-3


def test_bad_arguments(tiny_bert_dir, router):
    with pytest.raises(ConfigError, match="expected a splade_lightning.models.QueryDocRouter"):
        InferenceFreeSpladeModule(SpladeEncoder(tiny_bert_dir))
    with pytest.raises(ConfigError, match="idf_lr=0"):
        InferenceFreeSpladeModule(router, idf_lr=0)


def test_training_batch_follows_its_routes(router, tokenizer_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    q = tok(["cat on a mat", "python"], padding=True, return_tensors="pt")
    d = tok(["the cat sat", "a snake", "dogs", "mats"], padding=True, return_tensors="pt")
    module = InferenceFreeSpladeModule(router).eval()  # no dropout: compare outputs exactly
    batch = TrainBatch(q["input_ids"], q["attention_mask"], d["input_ids"], d["attention_mask"], 1)
    torch.testing.assert_close(module.encode(batch.query_route, batch.query_input_ids, batch.query_attention_mask),
                               router.query_encoder(q["input_ids"], q["attention_mask"]))
    swapped = module.encode("document", q["input_ids"], q["attention_mask"])  # e.g. router_mapping {query: document}
    torch.testing.assert_close(swapped, router.doc_encoder(q["input_ids"], q["attention_mask"]))
    # gradients reach both the table and the document encoder through the ranking loss
    terms = module.compute_loss(module.encode("query", q["input_ids"], q["attention_mask"]),
                                module.encode("document", d["input_ids"], d["attention_mask"]), 1)
    terms["loss"].backward()
    assert router.query_encoder.weight.grad.abs().sum() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in router.doc_encoder.parameters())
