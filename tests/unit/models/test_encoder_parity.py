"""SpladeEncoder vectors equal sentence-transformers 6.x SparseEncoder (MLM transformer + SpladePooling)."""

import pytest
import torch

from splade_lightning.models import SpladeEncoder

TEXTS = ["the cat sat on the mat", "what is the capital of france?", "SPLADE expands queries and documents " * 6, "a"]


@pytest.mark.parametrize(("pooling", "activation"), [("max", "relu"), ("max", "log1p_relu"), ("sum", "relu")])
def test_matches_sentence_transformers(tiny_bert_dir, pooling, activation):
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.models import MLMTransformer, SpladePooling

    st = SparseEncoder(modules=[MLMTransformer(tiny_bert_dir),
                                SpladePooling(pooling_strategy=pooling, activation_function=activation)], device="cpu")
    expected = st.encode_document(TEXTS, convert_to_tensor=True, convert_to_sparse_tensor=False)

    encoder = SpladeEncoder(tiny_bert_dir, pooling=pooling, activation=activation).eval()
    tok = st.tokenizer(TEXTS, padding=True, truncation=True, max_length=st.max_seq_length, return_tensors="pt")
    with torch.inference_mode():
        ours = encoder(tok["input_ids"], tok["attention_mask"])
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


def test_bare_mlm_dir_loads_like_sentence_transformers_default(tiny_bert_dir):
    """A bare HF *ForMaskedLM dir becomes SPLADE max/relu in sentence-transformers; our defaults agree."""
    from sentence_transformers import SparseEncoder

    st = SparseEncoder(tiny_bert_dir, device="cpu")
    expected = st.encode_query(TEXTS[:2], convert_to_tensor=True, convert_to_sparse_tensor=False)
    encoder = SpladeEncoder(tiny_bert_dir).eval()
    tok = st.tokenizer(TEXTS[:2], padding=True, return_tensors="pt")
    with torch.inference_mode():
        torch.testing.assert_close(encoder(tok["input_ids"], tok["attention_mask"]), expected, rtol=1e-5, atol=1e-5)


def test_bad_arguments_are_named():
    from splade_lightning.errors import ConfigError

    with pytest.raises(ConfigError, match="pooling='mean'"):
        SpladeEncoder("splade-tiny", pooling="mean")
    with pytest.raises(ConfigError, match="no-such-model-dir"):
        SpladeEncoder("./no-such-model-dir")
