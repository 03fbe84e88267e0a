"""DenseEncoder: parity with sentence-transformers all-MiniLM-L6-v2, pooling, freezing, rebuild from a config."""

import pytest
import torch

from splade_lightning.errors import ConfigError
from splade_lightning.models import DenseEncoder

TEXTS = ["the cat sat on the mat", "what is the capital of france?", "dense embeddings feed the sparse head " * 8, "a"]


def tokenize(path: str, texts=TEXTS, max_length: int = 128):
    from splade_lightning.hub import load_tokenizer

    tok = load_tokenizer(path)(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return tok["input_ids"], tok["attention_mask"]


def test_matches_sentence_transformers_minilm():
    from sentence_transformers import SentenceTransformer

    from splade_lightning.hub import alias_dir

    st = SentenceTransformer(str(alias_dir("all-minilm-l6-v2")), device="cpu")
    assert len(st) == 3  # Transformer -> Pooling(mean) -> Normalize
    expected = st.encode(TEXTS, convert_to_tensor=True)
    encoder = DenseEncoder("all-minilm-l6-v2").eval()
    assert encoder.embedding_dim == 384 and encoder.tokenizer_name_or_path == "all-minilm-l6-v2"
    ids, mask = tokenize("all-minilm-l6-v2", max_length=st.max_seq_length)
    with torch.inference_mode():
        ours = encoder(ids, mask)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)


def test_mean_pooling_ignores_padding(tiny_encoder_dir):
    encoder = DenseEncoder(tiny_encoder_dir, normalize=False).eval()
    ids, mask = tokenize(tiny_encoder_dir)
    with torch.no_grad():
        batched = encoder(ids, mask)
        for i, text in enumerate(TEXTS):
            alone = encoder(*tokenize(tiny_encoder_dir, [text]))
            torch.testing.assert_close(batched[i], alone[0], rtol=1e-5, atol=1e-5)
        hidden = encoder.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    assert batched.shape == (len(TEXTS), 32) and encoder.embedding_dim == 32
    torch.testing.assert_close(batched[3], hidden[3, :3].mean(0), rtol=1e-5, atol=1e-5)  # "a": [CLS] a [SEP]


def test_cls_pooling_and_normalize(tiny_encoder_dir):
    ids, mask = tokenize(tiny_encoder_dir)
    cls = DenseEncoder(tiny_encoder_dir, pooling="cls", normalize=False).eval()
    normed = DenseEncoder(tiny_encoder_dir, pooling="cls").eval()
    with torch.no_grad():
        hidden = cls.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        raw, unit = cls(ids, mask), normed(ids, mask)
    torch.testing.assert_close(raw, hidden[:, 0])
    torch.testing.assert_close(unit, torch.nn.functional.normalize(raw, dim=-1))
    torch.testing.assert_close(unit.norm(dim=-1), torch.ones(len(TEXTS)))


def test_frozen_backbone(tiny_encoder_dir):
    encoder = DenseEncoder(tiny_encoder_dir, frozen=True).train()
    assert not any(p.requires_grad for p in encoder.parameters())
    assert not encoder.encoder.training  # dropout stays off
    ids, mask = tokenize(tiny_encoder_dir)
    out = encoder(ids, mask)
    assert not out.requires_grad
    torch.testing.assert_close(out, encoder(ids, mask))
    with torch.no_grad():
        torch.testing.assert_close(encoder(ids, mask), out)
    trainable = DenseEncoder(tiny_encoder_dir).train()
    assert trainable.encoder.training and trainable(ids, mask).requires_grad


def test_rebuild_from_backbone_config(tiny_encoder_dir):
    encoder = DenseEncoder(tiny_encoder_dir).eval()
    rebuilt = DenseEncoder("unused-name", backbone_config=encoder.encoder.config.to_dict())
    rebuilt.load_state_dict(encoder.state_dict())
    rebuilt.eval()
    ids, mask = tokenize(tiny_encoder_dir)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(ids, mask), encoder(ids, mask))


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ConfigError, match="pooling='max'"):
        DenseEncoder("all-minilm-l6-v2", pooling="max")
    with pytest.raises(ConfigError, match="no-such-encoder-dir"):
        DenseEncoder(str(tmp_path / "no-such-encoder-dir"))
