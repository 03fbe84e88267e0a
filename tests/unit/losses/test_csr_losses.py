"""CSR reconstruction losses: parity with sentence-transformers 6.2 CSRLoss, NMSE, the auxiliary-k term."""

import pytest
import torch
import torch.nn.functional as F

from splade_lightning.errors import ConfigError
from splade_lightning.losses import CSRReconstructionLoss, InBatchNegativesLoss, csr_total
from splade_lightning.models import DenseEncoder, SparseAutoEncoder

ANCHORS = ["the cat sat on the mat", "what is the capital of france?", "sparse codes from dense embeddings", "a"]
POSITIVES = ["a cat on a mat", "paris is the capital", "csr learns a topk autoencoder over embeddings", "b c"]


@pytest.fixture(scope="module")
def tiny_encoder_dir(tmp_path_factory, tokenizer_dir) -> str:
    """A randomly initialised 2-layer, hidden-32 BertModel without dropout, with the BERT-uncased tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=128, hidden_dropout_prob=0.0,
                     attention_probs_dropout_prob=0.0)
    out = tmp_path_factory.mktemp("tiny_encoder_nodrop")
    model = BertModel(cfg)
    with torch.no_grad():  # a fresh LayerNorm gives rows of mean 0; shift them so the per-row mean μ matters
        model.encoder.layer[-1].output.LayerNorm.bias.normal_(mean=0.5)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tokenizer_dir).save_pretrained(out)
    return str(out)


@pytest.mark.parametrize("normalize", [False, True])
def test_total_and_terms_match_st_csr_loss(tiny_encoder_dir, normalize):
    from sentence_transformers import SparseEncoder, util
    from sentence_transformers.sentence_transformer.modules import Pooling
    from sentence_transformers.sparse_encoder.losses import CSRLoss, SparseMultipleNegativesRankingLoss
    from sentence_transformers.sparse_encoder.modules import SparseAutoEncoder as STSparseAutoEncoder
    from sentence_transformers.sparse_encoder.modules import Transformer

    beta, gamma, scale = 0.3, 0.7, 20.0
    torch.manual_seed(1)
    # dead_threshold far away and stats at 0: ST's in-forward counter updates (between the anchor and the positive
    # column) cannot make any latent dead, so its z_aux equals ours; dead latents are tested by hand below.
    st_sae = STSparseAutoEncoder(32, hidden_dim=64, k=4, k_aux=16, normalize=normalize, dead_threshold=10_000)
    with torch.no_grad():
        st_sae.pre_bias.normal_(std=0.1)
        st_sae.latent_bias.normal_(std=0.1)
    sae = SparseAutoEncoder(32, hidden_dim=64, k=4, k_aux=16, normalize=normalize, dead_threshold=10_000)
    sae.load_state_dict(st_sae.state_dict(), strict=True)  # before ST's forward moves its counters
    st = SparseEncoder(modules=[Transformer(tiny_encoder_dir), Pooling(32, "mean"), st_sae], device="cpu").train()
    st_loss = CSRLoss(st, loss=SparseMultipleNegativesRankingLoss(st, scale=scale, similarity_fct=util.cos_sim),
                      beta=beta, gamma=gamma)
    features = [st.preprocess(ANCHORS), st.preprocess(POSITIVES)]
    tokens = [(f["input_ids"].clone(), f["attention_mask"].clone()) for f in features]
    expected = st_loss(features)

    dense = DenseEncoder(tiny_encoder_dir, normalize=False).train()
    outs = [sae(dense(ids, mask)) for ids, mask in tokens]
    recon = CSRReconstructionLoss(beta=beta)
    per_column = [recon(**out.reconstruction_tensors()) for out in outs]
    terms = {k: torch.stack([t[k] for t in per_column]).mean() for k in per_column[0]}
    ranking = InBatchNegativesLoss(scale=scale, similarity="cosine")(outs[0].z_k, outs[1].z_k)
    total = csr_total(terms, ranking, beta=recon.beta, gamma=gamma)

    assert terms["recon_aux"] > 0
    pairs = {"reconstruction_loss_k": terms["recon_k"], "reconstruction_loss_4k": terms["recon_4k"] / 8,
             "reconstruction_loss_aux": beta * terms["recon_aux"], "base_loss": gamma * ranking}
    assert set(expected) == set(pairs)
    for key, value in pairs.items():
        torch.testing.assert_close(value, expected[key], rtol=1e-5, atol=1e-5, msg=key)
    expected_total = sum(expected.values())
    torch.testing.assert_close(total, expected_total, rtol=1e-5, atol=1e-5)

    expected_total.backward()
    total.backward()
    theirs = dict(st.named_parameters())
    for name, param in [("encoder.weight", sae.encoder.weight), ("pre_bias", sae.pre_bias)]:
        torch.testing.assert_close(param.grad, theirs[f"2.{name}"].grad, rtol=1e-4, atol=1e-6, msg=name)
    layer = "encoder.layer.1.output.dense.weight"
    st_layer = next(p for n, p in theirs.items() if n.endswith(layer))
    torch.testing.assert_close(dense.encoder.get_parameter(layer).grad, st_layer.grad, rtol=1e-4, atol=1e-6)


def hand_nmse(pred, target):
    return ((pred - target) ** 2).mean() / ((target - target.mean(0)) ** 2).mean()


def test_aux_term_with_dead_latents_by_hand():
    torch.manual_seed(2)
    sae = SparseAutoEncoder(8, hidden_dim=12, k=2, k_aux=3, dead_threshold=4)
    with torch.no_grad():
        sae.pre_bias.normal_()
        sae.latent_bias.normal_()
    sae.stats_last_nonzero.copy_(torch.tensor([0, 4, 9, 3, 5, 0, 4, 1, 8, 0, 2, 6]))
    x = torch.randn(5, 8)
    out = sae(x)
    terms = CSRReconstructionLoss()(**out.reconstruction_tensors())

    W, b_pre = sae.encoder.weight.detach(), sae.pre_bias.detach()
    a = (x - b_pre) @ W.T + sae.latent_bias.detach()
    dead = torch.tensor([False, True, True, False, True, False, True, False, True, False, False, True])
    z_aux = torch.zeros_like(a)
    for i in range(a.shape[0]):
        candidates = torch.where(dead, a[i], torch.zeros(()))
        top = candidates.argsort(descending=True)[:3]
        z_aux[i, top] = candidates[top].clamp(min=0)
    z_k = torch.zeros_like(a)
    for i in range(a.shape[0]):
        top = a[i].argsort(descending=True)[:2]
        z_k[i, top] = a[i, top].clamp(min=0)
    expected = hand_nmse(z_aux @ W + b_pre, x - z_k @ W)
    torch.testing.assert_close(out.z_aux, z_aux, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(terms["recon_aux"], expected, rtol=1e-5, atol=1e-6)
    assert terms["recon_aux"] > 0
    torch.testing.assert_close(terms["recon_k"], F.mse_loss(x, z_k @ W + b_pre), rtol=1e-5, atol=1e-6)


def test_aux_term_zero_when_disabled():
    sae = SparseAutoEncoder(8, hidden_dim=12, k=2, k_aux=0)
    terms = CSRReconstructionLoss()(**sae(torch.randn(4, 8)).reconstruction_tensors())
    assert terms["recon_aux"].item() == 0.0 and terms["recon_k"] > 0


def test_aux_target_is_stop_gradient():
    x = torch.randn(4, 6)
    decoded_k = torch.randn(4, 6, requires_grad=True)
    decoded_aux = torch.randn(4, 6, requires_grad=True)
    pre_bias = torch.randn(4, 6, requires_grad=True)
    terms = CSRReconstructionLoss()(x, decoded_k, decoded_k.detach(), decoded_aux, pre_bias)
    terms["recon_aux"].backward()
    assert pre_bias.grad is None and decoded_k.grad is None
    assert decoded_aux.grad is not None and decoded_aux.grad.abs().sum() > 0


@pytest.mark.parametrize("case", ["random", "zero_variance", "identical_rows"])
def test_nmse_matches_st(case):
    from sentence_transformers.sparse_encoder.losses.csr import normalized_mean_squared_error

    from splade_lightning.losses.csr import normalized_mse

    torch.manual_seed(3)
    pred = torch.randn(5, 7)
    target = {"random": torch.randn(5, 7), "zero_variance": torch.full((5, 7), 2.0),
              "identical_rows": torch.randn(1, 7).expand(5, 7)}[case]
    torch.testing.assert_close(normalized_mse(pred, target), normalized_mean_squared_error(pred, target))
    if case != "random":
        torch.testing.assert_close(normalized_mse(pred, target), F.mse_loss(pred, target))
    else:
        torch.testing.assert_close(normalized_mse(pred, target), hand_nmse(pred, target))


def test_csr_total_weights():
    terms = {"recon_k": torch.tensor(1.0), "recon_4k": torch.tensor(8.0), "recon_aux": torch.tensor(2.0)}
    assert csr_total(terms, torch.tensor(3.0), beta=0.5, gamma=0.1).item() == pytest.approx(1 + 1 + 1 + 0.3)


def test_bad_beta():
    with pytest.raises(ConfigError, match="beta=-1"):
        CSRReconstructionLoss(beta=-1)
