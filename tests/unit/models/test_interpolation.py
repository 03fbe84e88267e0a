"""WiSE-FT weight interpolation (splade_lightning.models.interpolation): exact end points, the midpoint, copied
non-float buffers and frozen tensors, for SPLADE, inference-free and CSR encoders; refusals of mismatching models."""

from __future__ import annotations

import pytest
import torch

from splade_lightning.errors import ConfigError
from splade_lightning.models import DenseEncoder, QueryDocRouter, SparseAutoEncoder, SpladeEncoder, StaticSparseEncoder
from splade_lightning.models.csr_encoder import CSREncoder
from splade_lightning.models.interpolation import (
    check_same_settings,
    check_same_tensors,
    interpolate_modules,
    interpolate_state_dicts,
)

ARCHITECTURES = ("splade", "inference_free", "csr")


def perturb(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    """As if fine-tuned: every float parameter and float buffer moved, integer buffers changed."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for tensor in module.state_dict().values():
            if tensor.is_floating_point():
                tensor.add_(torch.randn(tensor.shape, generator=gen) * 0.05)
            elif tensor.dtype == torch.long and tensor.dim() == 1 and tensor.numel() > 8:
                tensor.copy_(torch.randint(0, 50, tensor.shape, generator=gen))
    return module


def build(kind: str, tiny_bert_dir: str, tiny_encoder_dir: str, seed: int, hidden: int = 64) -> torch.nn.Module:
    torch.manual_seed(0)
    if kind == "splade":
        encoder = SpladeEncoder(tiny_bert_dir)
        return perturb(encoder, seed) if seed else encoder
    if kind == "inference_free":
        encoder = QueryDocRouter(SpladeEncoder(tiny_bert_dir), StaticSparseEncoder(tiny_bert_dir))
        return perturb(encoder, seed) if seed else encoder
    sae = SparseAutoEncoder(32, hidden_dim=hidden, k=4, k_aux=8)
    perturb(sae, seed + 100)  # the autoencoder is what CSR trains; the dense backbone stays frozen
    return CSREncoder(DenseEncoder(tiny_encoder_dir, pooling="mean", normalize=True), sae)


@pytest.fixture(scope="module", params=ARCHITECTURES)
def pair(request, tiny_bert_dir, tiny_encoder_dir):
    return (build(request.param, tiny_bert_dir, tiny_encoder_dir, 0),
            build(request.param, tiny_bert_dir, tiny_encoder_dir, 1))


def test_end_points_are_exact_and_half_is_the_midpoint(pair):
    zero_shot, fine_tuned = (m.state_dict() for m in pair)
    assert any(not torch.equal(zero_shot[k], fine_tuned[k]) for k in zero_shot)  # the two models differ
    at_zero = interpolate_state_dicts(zero_shot, fine_tuned, 0.0)
    at_one = interpolate_state_dicts(zero_shot, fine_tuned, 1)
    half = interpolate_state_dicts(zero_shot, fine_tuned, 0.5)
    assert list(at_zero) == list(zero_shot)
    for key, a in zero_shot.items():
        b = fine_tuned[key]
        assert torch.equal(at_zero[key], a) and torch.equal(at_one[key], b), key
        assert at_zero[key].data_ptr() != a.data_ptr()  # fresh tensors: the inputs are never aliased
        assert half[key].dtype == a.dtype and half[key].shape == a.shape
        if a.is_floating_point():
            torch.testing.assert_close(half[key], (a + b) / 2, rtol=0, atol=1e-6)
        else:
            assert torch.equal(half[key], b), key  # copied from the nearer end point (the fine-tuned one at 0.5)


def test_quarter_weights_and_untouched_inputs(pair):
    zero_shot, fine_tuned = (m.state_dict() for m in pair)
    before = {k: v.clone() for k, v in fine_tuned.items()}
    quarter = interpolate_state_dicts(zero_shot, fine_tuned, 0.25)
    for key, a in zero_shot.items():
        if a.is_floating_point():
            torch.testing.assert_close(quarter[key], 0.75 * a + 0.25 * fine_tuned[key], rtol=0, atol=1e-6)
        else:
            assert torch.equal(quarter[key], a), key  # alpha < 0.5: the zero-shot model's
        assert torch.equal(fine_tuned[key], before[key])


def test_inference_free_query_table_and_csr_autoencoder_are_interpolated(tiny_bert_dir, tiny_encoder_dir):
    router = [build("inference_free", tiny_bert_dir, tiny_encoder_dir, s) for s in (0, 1)]
    half = interpolate_modules(*router, 0.5)
    torch.testing.assert_close(half.query_encoder.weight,
                               (router[0].query_encoder.weight + router[1].query_encoder.weight) / 2)
    torch.testing.assert_close(half.doc_encoder.state_dict()["mlm.cls.predictions.bias"],
                               (router[0].doc_encoder.state_dict()["mlm.cls.predictions.bias"]
                                + router[1].doc_encoder.state_dict()["mlm.cls.predictions.bias"]) / 2)
    csr = [build("csr", tiny_bert_dir, tiny_encoder_dir, s) for s in (0, 1)]
    mixed = interpolate_modules(*csr, 0.3)
    torch.testing.assert_close(mixed.autoencoder.encoder.weight,
                               0.7 * csr[0].autoencoder.encoder.weight + 0.3 * csr[1].autoencoder.encoder.weight)
    for key, value in mixed.dense.state_dict().items():  # the frozen backbone: equal in both, copied bit for bit
        assert torch.equal(value, csr[0].dense.state_dict()[key]), key


def test_interpolate_modules_returns_a_new_module(tiny_bert_dir, tiny_encoder_dir):
    zero_shot, fine_tuned = (build("splade", tiny_bert_dir, tiny_encoder_dir, s) for s in (0, 1))
    before = {k: v.clone() for k, v in fine_tuned.state_dict().items()}
    mixed = interpolate_modules(zero_shot, fine_tuned, 0.0)
    assert mixed is not fine_tuned and type(mixed) is type(fine_tuned)
    assert all(torch.equal(v, zero_shot.state_dict()[k]) for k, v in mixed.state_dict().items())
    assert all(torch.equal(v, before[k]) for k, v in fine_tuned.state_dict().items())


@pytest.mark.parametrize("alpha", [-0.1, 1.5, float("nan"), float("inf"), True, "0.5"])
def test_bad_alpha_is_refused(alpha):
    state = {"w": torch.zeros(2)}
    with pytest.raises(ConfigError, match=r"alpha=.*expected a number in \[0, 1\]"):
        interpolate_state_dicts(state, state, alpha)


def test_mismatching_tensors_are_refused_naming_both_models_and_the_parameter():
    names = ("--zero_shot a", "--fine_tuned b")
    base = {"x": torch.zeros(3), "y": torch.zeros(2, 2)}
    with pytest.raises(ConfigError, match=r"'y' has shape \(2, 2\) in --zero_shot a but \(2, 3\) in --fine_tuned b"):
        check_same_tensors(base, {"x": torch.zeros(3), "y": torch.zeros(2, 3)}, names)
    with pytest.raises(ConfigError, match=r"--zero_shot a has parameter 'y', which --fine_tuned b lacks"):
        check_same_tensors(base, {"x": torch.zeros(3)}, names)
    with pytest.raises(ConfigError, match=r"--fine_tuned b has parameter 'z', which --zero_shot a lacks"):
        check_same_tensors(base, {**base, "z": torch.zeros(1)}, names)
    with pytest.raises(ConfigError, match=r"'x' is torch.float32 in --zero_shot a but torch.float16"):
        check_same_tensors(base, {**base, "x": torch.zeros(3, dtype=torch.float16)}, names)
    with pytest.raises(ConfigError, match="'y' has shape"):
        interpolate_state_dicts(base, {"x": torch.zeros(3), "y": torch.zeros(4)}, 0.5)


def test_mismatching_architectures_are_refused(tiny_bert_dir, tiny_encoder_dir):
    names = ("--zero_shot a", "--fine_tuned b")
    splade, router = build("splade", tiny_bert_dir, tiny_encoder_dir, 0), build("inference_free", tiny_bert_dir,
                                                                                tiny_encoder_dir, 0)
    with pytest.raises(ConfigError, match=r"--zero_shot a is a 'splade' model but --fine_tuned b is a "
                                          r"'inference_free' model"):
        check_same_settings(splade.export_config(), router.export_config(), names)
    small, large = (build("csr", tiny_bert_dir, tiny_encoder_dir, 0, hidden=h) for h in (64, 128))
    with pytest.raises(ConfigError, match=r"differ in setting 'autoencoder.hidden_dim': 64 vs 128"):
        check_same_settings(small.export_config(), large.export_config(), names)
    with pytest.raises(ConfigError, match=r"'autoencoder.latent_bias' has shape \(64,\) in --zero_shot a but \(128,\)"):
        check_same_tensors(small.state_dict(), large.state_dict(), names)
    query = {**router.export_config()["query"], "frozen": True, "missing_weight": 0.0}
    check_same_settings(router.export_config(), {**router.export_config(), "query": query}, names)  # encode alike
    pooling = {**splade.export_config(), "pooling": "sum"}
    with pytest.raises(ConfigError, match=r"differ in setting 'pooling': 'max' vs 'sum'"):
        check_same_settings(splade.export_config(), pooling, names)
