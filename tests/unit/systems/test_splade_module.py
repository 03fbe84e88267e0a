"""SpladeModule's objective equals sentence-transformers 6.x SpladeLoss(SparseMNRL) on the same model and texts."""

import pytest
import torch

from splade_lightning.models import SpladeEncoder
from splade_lightning.systems import SpladeModule

QUERIES = ["what is splade", "capital of france", "how do cats purr"]
POSITIVES = ["splade is a sparse retriever", "paris is the capital of france", "cats purr with their larynx"]
NEGATIVES = ["dense retrievers use vectors", "berlin is in germany", "dogs bark loudly"]


def no_dropout(model):
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return model.train()


@pytest.mark.parametrize(("query_weight", "doc_weight"), [(5e-5, 3e-5), (0.1, 0.08)])
def test_loss_and_gradients_match_sentence_transformers_splade_loss(tiny_bert_dir, query_weight, doc_weight):
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.losses import SparseMultipleNegativesRankingLoss, SpladeLoss

    torch.manual_seed(0)
    st = SparseEncoder(tiny_bert_dir, device="cpu")
    # float64, so identical math agrees far below float32 noise; train mode (ST's eval path uses an in-place log1p_
    # that cannot backpropagate) with dropout off
    no_dropout(st).double()
    st_loss = SpladeLoss(st, SparseMultipleNegativesRankingLoss(st), document_regularizer_weight=doc_weight,
                         query_regularizer_weight=query_weight)
    features = [st.tokenize(texts) for texts in (QUERIES, POSITIVES, NEGATIVES)]
    st_terms = st_loss(features, None)
    st_total = sum(st_terms.values())
    st_total.backward()

    encoder = no_dropout(SpladeEncoder(tiny_bert_dir)).double()
    module = SpladeModule(encoder, query_reg_weight=query_weight, doc_reg_weight=doc_weight)
    tok = st.tokenizer
    q = tok(QUERIES, padding=True, return_tensors="pt")
    d = tok(POSITIVES + NEGATIVES, padding=True, return_tensors="pt")
    terms = module.compute_loss(encoder(q["input_ids"], q["attention_mask"]),
                                encoder(d["input_ids"], d["attention_mask"]), num_negatives=1)
    terms["loss"].backward()

    torch.testing.assert_close(terms["loss"], st_total, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(terms["loss_rank"], st_terms["base_loss"], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(doc_weight * terms["flops_doc"], st_terms["document_regularizer_loss"], rtol=1e-5,
                               atol=1e-8)
    ours_grad = dict(encoder.mlm.named_parameters())
    for name, param in st[0].auto_model.named_parameters():
        scale = param.grad.abs().max().clamp_min(1e-12)
        assert (ours_grad[name].grad - param.grad).abs().max() <= 1e-9 * scale + 1e-15, name


def test_reg_scale_multiplies_both_weights(tiny_bert_dir):
    module = SpladeModule(SpladeEncoder(tiny_bert_dir), query_reg_weight=2.0, doc_reg_weight=4.0)
    module.set_reg_scale(0.25)
    reps = torch.rand(2, module.encoder.vocab_size)
    terms = module.compute_loss(reps, torch.cat([reps, reps]), num_negatives=1)
    assert terms["reg_weight_query"].item() == pytest.approx(0.5)
    assert terms["reg_weight_doc"].item() == pytest.approx(1.0)
    expected = terms["loss_rank"] + 0.5 * terms["flops_query"] + 1.0 * terms["flops_doc"]
    torch.testing.assert_close(terms["loss"], expected)


def test_bad_module_arguments(tiny_bert_dir):
    from splade_lightning.errors import ConfigError

    encoder = SpladeEncoder(tiny_bert_dir)
    with pytest.raises(ConfigError, match="lr=-1"):
        SpladeModule(encoder, lr=-1)
    with pytest.raises(ConfigError, match="not both"):
        SpladeModule(encoder, lr_warmup_steps=10, lr_warmup_fraction=0.2)
    with pytest.raises(ConfigError, match="doc_reg_weight=-0.1"):
        SpladeModule(encoder, doc_reg_weight=-0.1)
