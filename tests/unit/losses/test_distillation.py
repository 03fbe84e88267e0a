"""Distillation losses: hand-computed values, the T^2 scaling, parity (values and gradients) with
sentence-transformers 6.2 SparseMarginMSELoss / SparseDistillKLDivLoss, and input validation."""

import math

import pytest
import torch
from torch import nn

from splade_lightning.errors import ConfigError
from splade_lightning.losses import (
    KLDistillationLoss,
    MarginMSELoss,
    SpladeV3DistillationLoss,
    candidate_scores,
)

# B=2 queries, n=2 negatives, V=3. doc_reps is column-major: [pos_0, pos_1, neg1_0, neg1_1, neg2_0, neg2_1].
QUERIES = torch.tensor([[1.0, 2.0, 0.0], [0.0, 1.0, 1.0]])
DOCS = torch.tensor([
    [1.0, 1.0, 0.0],  # pos of q0    -> 3
    [0.0, 2.0, 1.0],  # pos of q1    -> 3
    [1.0, 0.0, 1.0],  # neg1 of q0   -> 1
    [1.0, 0.0, 0.0],  # neg1 of q1   -> 0
    [0.0, 0.0, 1.0],  # neg2 of q0   -> 0
    [0.0, 1.0, 0.0],  # neg2 of q1   -> 1
])
STUDENT = [[3.0, 1.0, 0.0], [3.0, 0.0, 1.0]]
TEACHER = torch.tensor([[4.0, 1.0, 1.0], [2.0, 1.0, 0.0]])


def kl_by_hand(temperature: float) -> float:
    """batchmean KL(softmax(t/T) || softmax(s/T)) of the tiny example, in plain Python."""
    total = 0.0
    for t_row, s_row in zip(TEACHER.tolist(), STUDENT):
        t_exp = [math.exp(x / temperature) for x in t_row]
        s_exp = [math.exp(x / temperature) for x in s_row]
        p_t = [x / sum(t_exp) for x in t_exp]
        p_s = [x / sum(s_exp) for x in s_exp]
        total += sum(p * math.log(p / q) for p, q in zip(p_t, p_s))
    return total / len(STUDENT)


def random_batch(batch, num_negatives, seed, vocab=64):
    g = torch.Generator().manual_seed(seed)

    def mask(rows):
        return torch.rand(rows, vocab, generator=g) > 0.6

    queries = torch.relu(torch.randn(batch, vocab, generator=g)) * mask(batch)
    docs = torch.relu(torch.randn(batch * (1 + num_negatives), vocab, generator=g)) * mask(batch * (1 + num_negatives))
    teacher = 5 * torch.randn(batch, 1 + num_negatives, generator=g)
    return queries, docs, teacher


def test_candidate_scores_are_column_major_pairwise_dots():
    assert candidate_scores(QUERIES, DOCS, 2).tolist() == STUDENT


def test_margin_mse_hand_computed():
    # student margins [[2, 3], [3, 2]], teacher margins [[3, 3], [1, 2]] -> errors -1, 0, 2, 0 -> 5 / 4
    assert MarginMSELoss()(QUERIES, DOCS, 2, TEACHER).item() == pytest.approx(1.25, rel=1e-6)


def test_kl_hand_computed():
    assert kl_by_hand(1.0) == pytest.approx(0.1406707798065982, rel=1e-12)
    assert KLDistillationLoss()(QUERIES, DOCS, 2, TEACHER).item() == pytest.approx(kl_by_hand(1.0), rel=1e-6)
    at_two = KLDistillationLoss(temperature=2.0)(QUERIES, DOCS, 2, TEACHER)
    assert at_two.item() == pytest.approx(4 * kl_by_hand(2.0), rel=1e-6)
    assert at_two.item() == pytest.approx(0.2190845228007896, rel=1e-6)


@pytest.mark.parametrize("temperature", [0.5, 2.0, 4.0])
def test_kl_temperature_squared_scaling(temperature):
    scaled = KLDistillationLoss(temperature, scale_by_temperature_squared=True)(QUERIES, DOCS, 2, TEACHER)
    unscaled = KLDistillationLoss(temperature, scale_by_temperature_squared=False)(QUERIES, DOCS, 2, TEACHER)
    torch.testing.assert_close(scaled, temperature**2 * unscaled)
    assert unscaled.item() == pytest.approx(kl_by_hand(temperature), rel=1e-6)
    # at T = 1 the flag makes no difference (NAVER / OpenSearch / sentence-transformers all agree)
    torch.testing.assert_close(KLDistillationLoss(1.0, False)(QUERIES, DOCS, 2, TEACHER),
                               KLDistillationLoss(1.0, True)(QUERIES, DOCS, 2, TEACHER))


def test_splade_v3_combination_hand_computed_and_parts():
    out = SpladeV3DistillationLoss(alpha=0.3, temperature=2.0)(QUERIES, DOCS, 2, TEACHER)
    assert set(out) == {"loss", "kl", "margin_mse"}
    assert out["kl"].item() == pytest.approx(4 * kl_by_hand(2.0), rel=1e-6)
    assert out["margin_mse"].item() == pytest.approx(1.25, rel=1e-6)
    assert out["loss"].item() == pytest.approx(0.3 * 4 * kl_by_hand(2.0) + 0.7 * 1.25, rel=1e-6)


def test_splade_v3_equals_weighted_sum_of_the_two_losses():
    q, d, t = random_batch(5, 3, seed=4)
    out = SpladeV3DistillationLoss(alpha=0.8, temperature=1.5)(q, d, 3, t)
    kl = KLDistillationLoss(temperature=1.5)(q, d, 3, t)
    mse = MarginMSELoss()(q, d, 3, t)
    torch.testing.assert_close(out["kl"], kl)
    torch.testing.assert_close(out["margin_mse"], mse)
    torch.testing.assert_close(out["loss"], 0.8 * kl + 0.2 * mse)
    default = SpladeV3DistillationLoss()
    assert (default.alpha, default.kl.temperature) == (0.95, 1.0)
    for alpha, expected in ((1.0, kl), (0.0, mse)):
        torch.testing.assert_close(SpladeV3DistillationLoss(alpha, 1.5)(q, d, 3, t)["loss"], expected)


# --- parity with sentence-transformers 6.2 ---------------------------------------------------------------------

def st_losses(temperature):
    """The sentence-transformers losses; their constructors only store the model, so a stand-in module does."""
    from sentence_transformers.sparse_encoder.losses import SparseDistillKLDivLoss, SparseMarginMSELoss

    model = nn.Identity()
    return SparseMarginMSELoss(model), SparseDistillKLDivLoss(model, temperature=temperature)


def columns(queries, docs, batch):
    """Our (B, V) + column-major (B(1+n), V) layout as sentence-transformers' [query, pos, neg_1..neg_n] columns."""
    return [queries, *docs.split(batch)]


@pytest.mark.parametrize("num_negatives", [1, 3])
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_parity_with_sentence_transformers(num_negatives, temperature):
    batch = 6
    queries, docs, teacher = random_batch(batch, num_negatives, seed=num_negatives)
    queries.requires_grad_(True)
    docs.requires_grad_(True)
    st_mse, st_kl = st_losses(temperature)
    cols = columns(queries, docs, batch)
    pairs = [
        (MarginMSELoss()(queries, docs, num_negatives, teacher), st_mse.compute_loss_from_embeddings(cols, teacher)),
        (KLDistillationLoss(temperature)(queries, docs, num_negatives, teacher),
         st_kl.compute_loss_from_embeddings(cols, teacher)),
    ]
    for ours, theirs in pairs:
        torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
        ours_grads = torch.autograd.grad(ours, (queries, docs))
        theirs_grads = torch.autograd.grad(theirs, (queries, docs))
        for mine, ref in zip(ours_grads, theirs_grads):
            torch.testing.assert_close(mine, ref, rtol=1e-6, atol=1e-6)


def test_splade_v3_parity_with_weighted_sentence_transformers_losses():
    queries, docs, teacher = random_batch(4, 3, seed=7)
    st_mse, st_kl = st_losses(1.0)
    cols = columns(queries, docs, 4)
    expected = 0.95 * st_kl.compute_loss_from_embeddings(cols, teacher) + 0.05 * st_mse.compute_loss_from_embeddings(
        cols, teacher)
    torch.testing.assert_close(SpladeV3DistillationLoss()(queries, docs, 3, teacher)["loss"], expected,
                               rtol=1e-6, atol=1e-6)


# --- gradients, dtypes -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make_loss", [MarginMSELoss, KLDistillationLoss, SpladeV3DistillationLoss])
def test_teacher_gets_no_gradient_and_reps_do(make_loss):
    queries, docs, teacher = random_batch(3, 2, seed=1)
    for tensor in (queries, docs, teacher):
        tensor.requires_grad_(True)
    out = make_loss()(queries, docs, 2, teacher)
    (out["loss"] if isinstance(out, dict) else out).backward()
    assert teacher.grad is None
    assert queries.grad is not None and queries.grad.abs().sum() > 0
    assert docs.grad is not None and docs.grad.abs().sum() > 0


@pytest.mark.parametrize("make_loss", [MarginMSELoss, KLDistillationLoss, SpladeV3DistillationLoss])
def test_half_precision_reps_give_float32_loss(make_loss):
    queries, docs, teacher = random_batch(3, 2, seed=2)
    out = make_loss()(queries.bfloat16(), docs.bfloat16(), 2, teacher.bfloat16())
    values = out.values() if isinstance(out, dict) else [out]
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in values)


# --- validation --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("make_loss", [MarginMSELoss, KLDistillationLoss, SpladeV3DistillationLoss])
def test_bad_shapes_raise(make_loss):
    loss = make_loss()
    assert loss.uses_teacher_scores is True
    with pytest.raises(ValueError, match=r"teacher_scores has shape \(2, 2\), expected \(B, 1\+n\) = \(2, 3\)"):
        loss(QUERIES, DOCS, 2, TEACHER[:, :2])
    with pytest.raises(ValueError, match=r"teacher_scores has shape \(3,\), expected \(B, 1\+n\) = \(2, 3\)"):
        loss(QUERIES, DOCS, 2, TEACHER[0])
    with pytest.raises(ValueError, match=r"doc_reps has shape \(5, 3\), expected \(B\*\(1\+n\), V\)"):
        loss(QUERIES, DOCS[:5], 2, TEACHER)
    with pytest.raises(ValueError, match=r"query_reps has shape \(3,\), expected \(B, V\)"):
        loss(QUERIES[0], DOCS, 2, TEACHER)
    with pytest.raises(ValueError, match="num_negatives=0, expected at least 1"):
        loss(QUERIES, DOCS[:2], 0, TEACHER[:, :1])


@pytest.mark.parametrize(("make_loss", "message"), [
    (lambda: KLDistillationLoss(temperature=0.0), "temperature=0.0: expected a positive finite number"),
    (lambda: KLDistillationLoss(temperature=-1.0), "temperature=-1.0"),
    (lambda: KLDistillationLoss(temperature=math.inf), "temperature=inf"),
    (lambda: KLDistillationLoss(scale_by_temperature_squared="yes"), "scale_by_temperature_squared='yes'"),
    (lambda: SpladeV3DistillationLoss(alpha=1.5), r"alpha=1.5: expected a number with 0 <= alpha <= 1"),
    (lambda: SpladeV3DistillationLoss(alpha=-0.1), "alpha=-0.1"),
    (lambda: SpladeV3DistillationLoss(alpha=math.nan), "alpha=nan"),
    (lambda: SpladeV3DistillationLoss(temperature=0), "temperature=0"),
])
def test_bad_arguments_raise_config_error(make_loss, message):
    with pytest.raises(ConfigError, match=message):
        make_loss()


def test_all_bad_arguments_reported_together():
    with pytest.raises(ConfigError, match=r"temperature=0.*alpha=2"):
        SpladeV3DistillationLoss(alpha=2, temperature=0)


def test_splade_module_logs_the_parts(tiny_bert_dir):
    from splade_lightning.models import SpladeEncoder
    from splade_lightning.systems import SpladeModule

    module = SpladeModule(SpladeEncoder(tiny_bert_dir), loss=SpladeV3DistillationLoss(alpha=0.5))
    terms = module.compute_loss(QUERIES, DOCS, 2, TEACHER)
    assert terms["loss_kl"].item() == pytest.approx(kl_by_hand(1.0), rel=1e-6)
    assert terms["loss_margin_mse"].item() == pytest.approx(1.25, rel=1e-6)
    torch.testing.assert_close(terms["loss_rank"], 0.5 * terms["loss_kl"] + 0.5 * terms["loss_margin_mse"])
