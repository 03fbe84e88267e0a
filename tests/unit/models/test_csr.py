"""SparseAutoEncoder (CSR head): parity with sentence-transformers 6.2, TopK, dead-latent tracking, config errors."""

import pytest
import torch

from splade_lightning.errors import ConfigError
from splade_lightning.models import SparseAutoEncoder
from splade_lightning.models.csr import topk_relu

D, H, K, K_AUX, THR = 16, 64, 4, 8, 5

# sentence-transformers output key -> CSROutput attribute
ST_KEYS = {"sentence_embedding": "z_k", "sentence_embedding_backbone": "x", "sentence_embedding_encoded":
           "pre_activation", "sentence_embedding_encoded_4k": "z_4k", "auxiliary_embedding": "z_aux",
           "decoded_embedding_k": "decoded_k", "decoded_embedding_4k": "decoded_4k",
           "decoded_embedding_aux": "decoded_aux", "decoded_embedding_k_pre_bias": "decoded_k_pre_bias"}


def make_pair(normalize: bool, seed: int = 0):
    """Ours with random biases and sentence-transformers' with the same state dict."""
    from sentence_transformers.sparse_encoder.modules import SparseAutoEncoder as STSparseAutoEncoder

    torch.manual_seed(seed)
    ours = SparseAutoEncoder(D, hidden_dim=H, k=K, k_aux=K_AUX, normalize=normalize, dead_threshold=THR)
    with torch.no_grad():
        ours.pre_bias.normal_()
        ours.latent_bias.normal_(std=0.1)
    theirs = STSparseAutoEncoder(D, hidden_dim=H, k=K, k_aux=K_AUX, normalize=normalize, dead_threshold=THR)
    theirs.load_state_dict(ours.state_dict(), strict=True)
    return ours, theirs


def assert_outputs_equal(ours_out, st_out):
    for st_key, name in ST_KEYS.items():
        torch.testing.assert_close(getattr(ours_out, name), st_out[st_key], rtol=1e-5, atol=1e-5, msg=name)


@pytest.mark.parametrize("normalize", [False, True])
@pytest.mark.parametrize("with_dead", [False, True])
def test_forward_matches_sentence_transformers(normalize, with_dead):
    ours, theirs = make_pair(normalize)
    if with_dead:  # values != THR: ST tests stats > THR, we test stats >= THR (see the class docstring)
        stats = torch.randint(0, 2 * THR, (H,))
        stats[stats == THR] = THR + 1
        ours.stats_last_nonzero.copy_(stats)
        theirs.stats_last_nonzero.copy_(stats)
    x = torch.randn(6, D) * 3 + 1
    ours_out = ours(x)
    # ST updates its counters inside a grad-enabled training forward *before* computing z_aux; under no_grad it
    # computes the same training outputs without touching them, so both see the same dead mask.
    with torch.no_grad():
        st_out = theirs({"sentence_embedding": x.clone()})
    assert_outputs_equal(ours_out, st_out)
    assert (ours_out.z_aux.abs().sum() > 0) == with_dead
    assert ((ours_out.z_k > 0).sum(-1) <= K).all()


def test_dead_convention_equals_st_training_update():
    """ST's stats > THR after its in-forward update == ours stats >= THR before it, for non-firing latents."""
    ours, theirs = make_pair(normalize=False, seed=1)
    x = torch.randn(5, D)
    fired = (ours(x).z_k > 1e-5).any(0)
    stats = torch.zeros(H, dtype=torch.long)
    idle = (~fired).nonzero().squeeze(1)
    stats[idle[::2]] = THR  # exactly at the threshold: dead for us now, dead for ST after its +1
    ours.stats_last_nonzero.copy_(stats)
    theirs.stats_last_nonzero.copy_(stats)
    theirs.train()
    st_out = theirs({"sentence_embedding": x.clone()})  # grad enabled: ST's counters move during the call
    ours_out = ours(x)
    assert ours_out.z_aux.abs().sum() > 0
    assert_outputs_equal(ours_out, {k: v.detach() for k, v in st_out.items()})
    assert not torch.equal(theirs.stats_last_nonzero, stats)  # ST: +2 per call (top-k and top-4k)
    assert torch.equal(ours.stats_last_nonzero, stats)  # ours: forward is pure


@pytest.mark.parametrize("max_active_dims", [None, 2, 10])
def test_encode_matches_st_inference(max_active_dims):
    ours, theirs = make_pair(normalize=True)
    x = torch.randn(4, D)
    with torch.inference_mode():
        expected = theirs({"sentence_embedding": x.clone()}, max_active_dims=max_active_dims)["sentence_embedding"]
        got = ours.encode(x, max_active_dims=max_active_dims)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert ((got > 0).sum(-1) <= (max_active_dims or K)).all()


def test_encode_k_precedence():
    sae = SparseAutoEncoder(D, hidden_dim=H, k=3, k_aux=K_AUX, max_active_dims=6)
    with torch.no_grad():
        sae.latent_bias.fill_(10.0)  # every latent positive: exactly k active
    x = torch.randn(2, D)
    assert ((sae.encode(x) > 0).sum(-1) == 6).all()
    assert ((sae.encode(x, max_active_dims=5) > 0).sum(-1) == 5).all()
    sae.max_active_dims = None
    assert ((sae.encode(x) > 0).sum(-1) == 3).all()
    with pytest.raises(ConfigError, match="max_active_dims=65"):
        sae.encode(x, max_active_dims=65)


def test_state_dicts_interchangeable_with_st():
    from sentence_transformers.sparse_encoder.modules import SparseAutoEncoder as STSparseAutoEncoder

    theirs = STSparseAutoEncoder(D, hidden_dim=H, k=K, k_aux=K_AUX)
    theirs.stats_last_nonzero.fill_(7)
    ours = SparseAutoEncoder(D, hidden_dim=H, k=K, k_aux=K_AUX)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    assert sorted(ours.state_dict()) == sorted(theirs.state_dict())
    # safetensors keeps the tied matrix once; either name loads
    deduped = {k: v for k, v in theirs.state_dict().items() if k != "encoder.weight"}
    fresh = SparseAutoEncoder(D, hidden_dim=H, k=K, k_aux=K_AUX)
    fresh.load_state_dict(deduped, strict=True)
    torch.testing.assert_close(fresh.encoder.weight, theirs.encoder.weight)
    assert fresh.decoder.linear.weight is fresh.encoder.weight
    assert int(fresh.stats_last_nonzero[0]) == 7


def test_topk_relu_keeps_k_largest_and_drops_negatives():
    a = torch.tensor([[5.0, -1.0, 3.0, 4.0, 0.5], [-3.0, -1.0, -2.0, 2.0, -0.5], [1.0, 1.0, 1.0, 1.0, 1.0]])
    z = topk_relu(a, 3)
    assert torch.equal(z[0], torch.tensor([5.0, 0.0, 3.0, 4.0, 0.0]))
    assert torch.equal(z[1], torch.tensor([0.0, 0.0, 0.0, 2.0, 0.0]))  # top-3 has negatives: only 1 active
    assert int((z[2] > 0).sum()) == 3  # ties: exactly k kept
    assert torch.equal(topk_relu(a, 99), torch.relu(a))  # k clamped to the width


def test_4k_larger_than_hidden_dim_keeps_all_latents():
    sae = SparseAutoEncoder(D, hidden_dim=16, k=8, k_aux=4)
    out = sae(torch.randn(3, D))
    torch.testing.assert_close(out.z_4k, torch.relu(out.pre_activation))
    assert ((out.z_k > 0).sum(-1) <= 8).all()


def test_forward_is_pure_and_differentiable():
    sae = SparseAutoEncoder(D, hidden_dim=H, k=K, k_aux=K_AUX).train()
    out = sae(torch.randn(3, D))
    assert int(sae.stats_last_nonzero.sum()) == 0
    (out.decoded_k.sum() + out.decoded_4k.sum()).backward()
    assert sae.encoder.weight.grad is not None and sae.pre_bias.grad is not None


def test_record_activity_counts_steps_and_marks_dead(tmp_path):
    sae = SparseAutoEncoder(4, hidden_dim=6, k=2, k_aux=2, dead_threshold=3)
    z = torch.zeros(2, 6)
    z[0, 1], z[1, 4] = 0.5, 1e-6  # latent 4 below the 1e-5 activity threshold
    for _ in range(2):
        sae.record_activity(z)
    assert sae.stats_last_nonzero.tolist() == [2, 0, 2, 2, 2, 2]
    assert not sae.dead_mask().any() and sae.dead_fraction() == 0.0
    sae.record_activity(z)
    assert sae.dead_mask().tolist() == [True, False, True, True, True, True]
    assert sae.dead_fraction() == pytest.approx(5 / 6)
    z2 = torch.zeros(3, 2, 6)  # (columns, rows, h) flattens
    z2[2, 0, 0] = 1.0
    sae.record_activity(z2)
    assert sae.stats_last_nonzero.tolist() == [0, 1, 4, 4, 4, 4]
    torch.save(sae.state_dict(), tmp_path / "sae.pt")
    fresh = SparseAutoEncoder(4, hidden_dim=6, k=2, k_aux=2, dead_threshold=3)
    fresh.load_state_dict(torch.load(tmp_path / "sae.pt"))
    assert fresh.stats_last_nonzero.tolist() == [0, 1, 4, 4, 4, 4]
    assert fresh.dead_fraction() == pytest.approx(4 / 6)


def test_aux_code_uses_only_dead_latents():
    sae = SparseAutoEncoder(D, hidden_dim=H, k=K, k_aux=K_AUX, dead_threshold=2)
    sae.stats_last_nonzero[: H // 2] = 2
    out = sae(torch.randn(5, D))
    assert out.z_aux[:, H // 2:].abs().sum() == 0 and out.z_aux.abs().sum() > 0
    assert ((out.z_aux > 0).sum(-1) <= K_AUX).all()


def test_export_config_round_trip():
    sae = SparseAutoEncoder(D, hidden_dim=H, k=K, k_aux=0, normalize=True, dead_threshold=7, max_active_dims=5)
    cfg = sae.export_config()
    assert cfg == {"input_dim": D, "hidden_dim": H, "k": K, "k_aux": 0, "normalize": True, "dead_threshold": 7,
                   "max_active_dims": 5}
    assert SparseAutoEncoder(**cfg).export_config() == cfg
    out = sae(torch.randn(2, D))
    assert out.z_aux is None and out.decoded_aux is None


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"k": 65}, "k=65"), ({"k": 0}, "k=0"), ({"k_aux": 65}, "k_aux=65"), ({"k_aux": -1}, "k_aux=-1"),
    ({"hidden_dim": 0}, "hidden_dim=0"), ({"input_dim": 0}, "input_dim=0"), ({"dead_threshold": 0}, "dead_threshold=0"),
    ({"max_active_dims": 0}, "max_active_dims=0"), ({"max_active_dims": 65}, "max_active_dims=65"),
])
def test_bad_config_names_argument(kwargs, match):
    args = {"input_dim": D, "hidden_dim": H, "k": K, "k_aux": K_AUX, **kwargs}
    with pytest.raises(ConfigError, match=match):
        SparseAutoEncoder(**args)


def test_bad_config_lists_every_problem():
    with pytest.raises(ConfigError) as err:
        SparseAutoEncoder(D, hidden_dim=8, k=9, k_aux=9, dead_threshold=0)
    assert all(s in str(err.value) for s in ("k=9", "k_aux=9", "dead_threshold=0"))


def test_input_width_mismatch_is_explained():
    sae = SparseAutoEncoder(768, hidden_dim=32, k=4, k_aux=8)
    with pytest.raises(ConfigError, match="input has 384 dims but input_dim=768"):
        sae(torch.randn(2, 384))
    with pytest.raises(ConfigError, match="embedding_dim"):
        sae.encode(torch.randn(2, 384))
