"""Public inference API: load / encode_query / encode_document / decode / save, and sentence-transformers interop."""

import pytest
import torch

import splade_lightning
from splade_lightning.errors import ConfigError

TEXTS = ["the quick brown fox", "jumps over the lazy dog", "sparse retrieval with splade"]


@pytest.fixture(scope="module")
def model(tiny_bert_dir):
    return splade_lightning.load(tiny_bert_dir)


def test_encode_shapes_and_order(model):
    docs = model.encode_document(TEXTS, batch_size=2)
    assert docs.is_sparse and docs.shape == (3, model.vocab_size)
    one_by_one = torch.stack([model.encode_document(t).to_dense() for t in TEXTS])
    torch.testing.assert_close(docs.to_dense(), one_by_one, rtol=1e-5, atol=1e-6)
    queries = model.encode_query(TEXTS[:1])
    assert queries.shape == (1, model.vocab_size) and (queries.to_dense() >= 0).all()


def test_decode_is_sorted_and_readable(model):
    vec = model.encode_document(TEXTS[0])
    pairs = model.decode(vec, top_k=5)
    assert len(pairs) == 5 and all(isinstance(t, str) for t, _ in pairs)
    weights = [w for _, w in pairs]
    assert weights == sorted(weights, reverse=True)
    assert len(model.decode(vec)) == int((vec.to_dense() > 0).sum())
    assert len(model.decode(model.encode_document(TEXTS[:2]), top_k=3)) == 2


def test_save_load_roundtrip_and_sentence_transformers_loads_it(model, tmp_path):
    from sentence_transformers import SparseEncoder

    path = model.save(tmp_path / "saved")
    again = splade_lightning.load(path)
    torch.testing.assert_close(again.encode_document(TEXTS).to_dense(), model.encode_document(TEXTS).to_dense())
    st = SparseEncoder(str(path), device="cpu")
    st_vecs = st.encode_document(TEXTS, convert_to_tensor=True, convert_to_sparse_tensor=False)
    torch.testing.assert_close(st_vecs, model.encode_document(TEXTS).to_dense(), rtol=1e-5, atol=1e-5)


def test_loads_sentence_transformers_directory_with_log1p_relu(tiny_bert_dir, tmp_path):
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.models import MLMTransformer, SpladePooling

    st = SparseEncoder(modules=[MLMTransformer(tiny_bert_dir), SpladePooling("max", activation_function="log1p_relu")],
                       device="cpu")
    st.save(str(tmp_path / "st"))
    ours = splade_lightning.load(tmp_path / "st")
    assert ours.encoder.activation == "log1p_relu"
    expected = st.encode_query(TEXTS, convert_to_tensor=True, convert_to_sparse_tensor=False)
    torch.testing.assert_close(ours.encode_query(TEXTS).to_dense(), expected, rtol=1e-5, atol=1e-5)


def test_alias_and_bad_names():
    assert splade_lightning.load("splade-tiny").vocab_size == 30522
    with pytest.raises(ConfigError, match="no-such-dir"):
        splade_lightning.load("./no-such-dir")
    with pytest.raises(ConfigError, match="does not exist"):
        splade_lightning.load("missing.ckpt")
