"""CSR models save as sentence-transformers SparseEncoder directories and load back, both ways (the layout of
sentence-transformers 6.2.0's sparse_encoder/modules/sparse_auto_encoder.py)."""

import json
import logging

import pytest
import torch

import splade_lightning
from splade_lightning.api import SparseModel
from splade_lightning.errors import ConfigError
from splade_lightning.models import DenseEncoder, SparseAutoEncoder
from splade_lightning.models.csr_encoder import CSREncoder

QUERIES = ["what is the capital of france", "cats and dogs", "a"]
DOCS = ["paris is the capital of france", "dogs bark at cats " * 20, "a python is a snake"]
D, H, K, K_AUX = 32, 64, 4, 8


def randomise(sae, seed: int = 1) -> None:
    """As if trained: non-zero biases and dead-latent counters (the module is ours or sentence-transformers')."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        sae.pre_bias.copy_(torch.randn(sae.pre_bias.shape, generator=gen) * 0.05)
        sae.latent_bias.copy_(torch.randn(sae.latent_bias.shape, generator=gen) * 0.1)
        sae.encoder.weight.copy_(torch.randn(sae.encoder.weight.shape, generator=gen))
        sae.stats_last_nonzero.copy_(torch.randint(0, 50, sae.stats_last_nonzero.shape, generator=gen))


def make_model(tiny_encoder_dir, pooling="mean", normalize=True, sae_normalize=False, max_active_dims=None,
               max_query_length=16, max_doc_length=48) -> SparseModel:
    from transformers import AutoTokenizer

    sae = SparseAutoEncoder(D, hidden_dim=H, k=K, k_aux=K_AUX, normalize=sae_normalize,
                            max_active_dims=max_active_dims)
    randomise(sae)
    encoder = CSREncoder(DenseEncoder(tiny_encoder_dir, pooling=pooling, normalize=normalize), sae)
    return SparseModel(encoder, AutoTokenizer.from_pretrained(tiny_encoder_dir), max_query_length, max_doc_length)


def assert_same_vectors(a: SparseModel, b, atol: float = 0.0) -> None:
    """``b``: a SparseModel or a sentence-transformers SparseEncoder."""
    def dense(x):
        return x.to_dense() if x.is_sparse else x

    for encode in ("encode_query", "encode_document"):
        texts = QUERIES if encode == "encode_query" else DOCS
        kwargs = {} if isinstance(b, SparseModel) else {"convert_to_tensor": True}
        expected = dense(getattr(b, encode)(texts, **kwargs)).cpu()
        torch.testing.assert_close(getattr(a, encode)(texts).to_dense(), expected, rtol=0, atol=atol)


@pytest.mark.parametrize(("pooling", "normalize", "sae_normalize"),
                         [("mean", True, False), ("cls", False, True), ("mean", False, False), ("cls", True, False)])
def test_save_load_roundtrip(tiny_encoder_dir, tmp_path, pooling, normalize, sae_normalize):
    model = make_model(tiny_encoder_dir, pooling, normalize, sae_normalize)
    path = model.save(tmp_path / "csr")
    modules = json.loads((path / "modules.json").read_text())
    sae_dir = f"{3 if normalize else 2}_SparseAutoEncoder"
    assert [m["path"] for m in modules] == ["", "1_Pooling", *(["2_Normalize"] if normalize else []), sae_dir]
    assert (path / "model.safetensors").is_file() and (path / sae_dir / "model.safetensors").is_file()
    st_cfg = json.loads((path / "config_sentence_transformers.json").read_text())
    assert st_cfg["model_type"] == "SparseEncoder" and st_cfg["similarity_fn_name"] == "dot"
    assert "max_active_dims" not in st_cfg

    again = splade_lightning.load(path)
    assert isinstance(again.encoder, CSREncoder)
    assert (again.max_query_length, again.max_doc_length) == (16, 48)
    assert again.encoder.dense.pooling == pooling and again.encoder.dense.normalize == normalize
    assert again.encoder.autoencoder.export_config() == model.encoder.autoencoder.export_config()
    ours, theirs = model.encoder.state_dict(), again.encoder.state_dict()
    assert ours.keys() == theirs.keys()
    for key in ours:
        torch.testing.assert_close(theirs[key], ours[key], rtol=0, atol=0, msg=key)
    assert again.encoder.autoencoder.stats_last_nonzero.dtype == torch.long
    assert_same_vectors(again, model)


@pytest.mark.parametrize(("pooling", "normalize"), [("mean", True), ("cls", False)])
def test_sentence_transformers_loads_export(tiny_encoder_dir, tmp_path, caplog, pooling, normalize):
    from sentence_transformers import SparseEncoder
    from sentence_transformers.sparse_encoder.modules import SparseAutoEncoder as STSparseAutoEncoder

    model = make_model(tiny_encoder_dir, pooling, normalize, max_query_length=48, max_doc_length=48)
    path = model.save(tmp_path / "csr")
    with caplog.at_level(logging.INFO, logger="sentence_transformers"):
        st = SparseEncoder(str(path), device="cpu")
    assert "Loading SparseEncoder model" in caplog.text
    assert "Converting" not in caplog.text  # no SentenceTransformer fallback with a random SAE appended
    assert len(st) == (4 if normalize else 3) and isinstance(st[-1], STSparseAutoEncoder)
    assert st.max_seq_length == 48 and st[1].pooling_mode == pooling
    torch.testing.assert_close(st[-1].stats_last_nonzero, model.encoder.autoencoder.stats_last_nonzero)
    torch.testing.assert_close(st[-1].encoder.weight, model.encoder.autoencoder.encoder.weight)
    assert_same_vectors(model, st, atol=1e-5)


def test_sentence_transformers_csr_dir_loads(tiny_encoder_dir, tmp_path):
    """The other way: a CSR model built and saved by sentence-transformers 6.2 (its ST6 file layout)."""
    from sentence_transformers import SparseEncoder
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from sentence_transformers.sparse_encoder.modules import SparseAutoEncoder as STSparseAutoEncoder

    sae = STSparseAutoEncoder(D, hidden_dim=H, k=K, k_aux=K_AUX)
    randomise(sae, seed=3)
    modules = [Transformer(tiny_encoder_dir, max_seq_length=40), Pooling(D, pooling_mode="cls"), Normalize(), sae]
    st = SparseEncoder(modules=modules, device="cpu")
    st.save(str(tmp_path / "st_csr"))
    assert "max_seq_length" not in json.loads((tmp_path / "st_csr" / "sentence_bert_config.json").read_text())

    ours = splade_lightning.load(tmp_path / "st_csr")
    assert isinstance(ours.encoder, CSREncoder) and ours.encoder.dense.pooling == "cls"
    assert ours.encoder.dense.normalize and (ours.max_query_length, ours.max_doc_length) == (40, 40)
    torch.testing.assert_close(ours.encoder.autoencoder.stats_last_nonzero, sae.stats_last_nonzero)
    assert_same_vectors(ours, st, atol=1e-5)


def test_max_active_dims_is_honoured(tiny_encoder_dir, tmp_path):
    from sentence_transformers import SparseEncoder

    path = make_model(tiny_encoder_dir, max_active_dims=3, max_query_length=48).save(tmp_path / "csr")
    config_file = path / "config_sentence_transformers.json"
    assert json.loads(config_file.read_text())["max_active_dims"] == 3
    config = json.loads(config_file.read_text())
    config["max_active_dims"] = 2  # edited by hand: both libraries read it
    config_file.write_text(json.dumps(config))
    ours = splade_lightning.load(path)
    assert ours.encoder.autoencoder.max_active_dims == 2
    docs = ours.encode_document(DOCS).to_dense()
    assert ((docs > 0).sum(dim=1) <= 2).all() and ((docs > 0).sum(dim=1) > 0).all()
    assert_same_vectors(ours, SparseEncoder(str(path), device="cpu"), atol=1e-5)


def test_decode_names_latents(tiny_encoder_dir):
    model = make_model(tiny_encoder_dir)
    vector = model.encode_query("cats and dogs")
    pairs = model.decode(vector)
    assert 0 < len(pairs) <= K
    assert all(name.startswith("latent_") for name, _ in pairs)
    dense = vector.to_dense()
    assert [w for _, w in pairs] == sorted(dense[dense > 0].tolist(), reverse=True)
    assert {int(name.split("_")[1]) for name, _ in pairs} == set(dense.nonzero().flatten().tolist())


def test_checkpoint_payload_roundtrip(tiny_encoder_dir):
    from splade_lightning.serialization.checkpoint import checkpoint_payload
    from splade_lightning.serialization.registry import encoder_from_checkpoint

    model = make_model(tiny_encoder_dir, pooling="cls", normalize=False, max_active_dims=3)
    state = {f"encoder.{k}": v for k, v in model.encoder.state_dict().items()}
    encoder, tokenizer = encoder_from_checkpoint({"state_dict": state,
                                                  "splade_lightning": checkpoint_payload(model.encoder)})
    assert isinstance(encoder, CSREncoder) and encoder.autoencoder.max_active_dims == 3
    torch.testing.assert_close(encoder.autoencoder.stats_last_nonzero, model.encoder.autoencoder.stats_last_nonzero)
    assert_same_vectors(SparseModel(encoder, tokenizer, 16, 48), model)


def test_input_dim_mismatch_names_the_config(tiny_encoder_dir, tmp_path):
    path = make_model(tiny_encoder_dir).save(tmp_path / "csr")
    config_file = path / "3_SparseAutoEncoder" / "config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "input_dim": 16}))
    with pytest.raises(ConfigError, match=r"3_SparseAutoEncoder/config\.json: input_dim=16 .* hidden size 32"):
        splade_lightning.load(path)


def test_missing_sae_weights_names_the_file(tiny_encoder_dir, tmp_path):
    path = make_model(tiny_encoder_dir, normalize=False).save(tmp_path / "csr")
    weights = path / "2_SparseAutoEncoder" / "model.safetensors"
    weights.unlink()
    with pytest.raises(ConfigError, match="missing") as info:
        splade_lightning.load(path)
    assert str(weights) in str(info.value)


def test_missing_stats_buffer_is_an_error(tiny_encoder_dir, tmp_path):
    """sentence-transformers loads SAE weights strictly; so do we (stats_last_nonzero is part of the model)."""
    from safetensors.torch import load_file, save_file

    path = make_model(tiny_encoder_dir, normalize=False).save(tmp_path / "csr")
    weights = path / "2_SparseAutoEncoder" / "model.safetensors"
    state = load_file(str(weights))
    assert set(state) == {"pre_bias", "decoder.linear.weight", "latent_bias", "stats_last_nonzero"}
    del state["stats_last_nonzero"]
    save_file(state, str(weights))
    with pytest.raises(ConfigError, match="stats_last_nonzero") as info:
        splade_lightning.load(path)
    assert str(weights) in str(info.value)


@pytest.mark.parametrize(("file", "content", "message"), [
    ("1_Pooling/config.json", {"embedding_dimension": D, "pooling_mode": "max"}, "pooling mode 'max'"),
    ("2_SparseAutoEncoder/config.json", {"input_dim": D, "hidden": H}, "expected input_dim"),
])
def test_bad_module_configs(tiny_encoder_dir, tmp_path, file, content, message):
    path = make_model(tiny_encoder_dir, normalize=False).save(tmp_path / "csr")
    (path / file).write_text(json.dumps(content))
    with pytest.raises(ConfigError, match=message) as info:
        splade_lightning.load(path)
    assert str(path / file) in str(info.value)


def test_unsupported_module_stack(tiny_encoder_dir, tmp_path):
    path = make_model(tiny_encoder_dir, normalize=False).save(tmp_path / "csr")
    modules = json.loads((path / "modules.json").read_text())
    modules.insert(2, {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"})
    modules[-1]["idx"] = 3
    (path / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(ConfigError, match=r"modules\.json: modules .*'Dense'"):
        splade_lightning.load(path)
