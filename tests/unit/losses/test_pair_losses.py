"""CoSENT, AnglE, CosineSimilarity, Triplet and embedding-MSE losses: parity (values and gradients <= 1e-6) with
sentence-transformers 6.2's sparse losses on random sparse non-negative reps, hand-computed values, validation."""

import math

import pytest
import torch
from torch import nn

from splade_lightning.errors import ConfigError
from splade_lightning.losses import AnglELoss, CoSENTLoss, CosineSimilarityLoss, EmbeddingMSELoss, TripletLoss


def sparse_reps(rows, vocab, generator):
    """(rows, V) non-negative reps with about 60% zeros, as SPLADE's."""
    return torch.relu(torch.randn(rows, vocab, generator=generator)) * (torch.rand(rows, vocab, generator=generator)
                                                                       > 0.6)


def leaves(*tensors):
    return [t.clone().requires_grad_(True) for t in tensors]


def assert_same_value_and_grads(ours_fn, theirs_fn, inputs):
    """Both functions of the same leaf tensors: equal values and gradients within 1e-6."""
    ours_in, theirs_in = leaves(*inputs), leaves(*inputs)
    ours, theirs = ours_fn(*ours_in), theirs_fn(*theirs_in)
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
    ours.backward()
    theirs.backward()
    for mine, ref in zip(ours_in, theirs_in):
        assert mine.grad is not None and mine.grad.abs().sum() > 0
        torch.testing.assert_close(mine.grad, ref.grad, rtol=1e-6, atol=1e-6)


def st_model():
    """The sentence-transformers losses' constructors only store the model (and set its similarity name)."""
    return nn.Identity()


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("vocab", [64, 63])  # 63: AnglE pads odd widths
@pytest.mark.parametrize("kind", ["cosent", "angle", "cosine_similarity"])
def test_pair_losses_match_sentence_transformers(kind, vocab, seed):
    from sentence_transformers.sparse_encoder.losses import (
        SparseAnglELoss,
        SparseCoSENTLoss,
        SparseCosineSimilarityLoss,
    )

    g = torch.Generator().manual_seed(seed)
    batch = 8
    a, b = sparse_reps(batch, vocab, g), sparse_reps(batch, vocab, g)
    labels = torch.tensor([0.0, 0.2, 0.2, 1.0, 0.6, 0.8, 0.0, 0.4])  # ties included
    ours, theirs = {
        "cosent": (CoSENTLoss(), SparseCoSENTLoss(st_model())),
        "angle": (AnglELoss(), SparseAnglELoss(st_model())),
        "cosine_similarity": (CosineSimilarityLoss(), SparseCosineSimilarityLoss(st_model())),
    }[kind]
    assert_same_value_and_grads(lambda x, y: ours(x, y, 0, labels),
                                lambda x, y: theirs.compute_loss_from_embeddings([x, y], labels), (a, b))


def test_cosent_defaults_and_integer_labels_match_sentence_transformers():
    from sentence_transformers.sparse_encoder.losses import SparseCoSENTLoss

    reference = SparseCoSENTLoss(st_model())
    assert (CoSENTLoss().scale, CoSENTLoss().similarity) == (reference.scale, "cosine") == (20.0, "cosine")
    g = torch.Generator().manual_seed(5)
    a, b = sparse_reps(6, 32, g), sparse_reps(6, 32, g)
    labels = torch.tensor([0, 1, 1, 0, 2, 1])
    assert_same_value_and_grads(lambda x, y: CoSENTLoss(scale=7.0)(x, y, 0, labels.float()),
                                lambda x, y: SparseCoSENTLoss(st_model(), scale=7.0).compute_loss_from_embeddings(
                                    [x, y], labels), (a, b))


def test_cosent_hand_computed():
    # cosines: pair 0 -> 1, pair 1 -> 0; labels 0 < 1: one ordered pair (1 above 0), term exp(s_0 - s_1).
    a = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    loss = CoSENTLoss(scale=2.0)(a, b, 0, torch.tensor([0.0, 1.0]))
    assert loss.item() == pytest.approx(math.log(1 + math.exp(2.0 * (1 - 0))), rel=1e-6)
    same_labels = CoSENTLoss(scale=2.0)(a, b, 0, torch.tensor([1.0, 1.0]))
    assert same_labels.item() == pytest.approx(0.0, abs=1e-7)  # log(1 + 0): ties contribute nothing


def test_cosine_similarity_hand_computed():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    loss = CosineSimilarityLoss()(a, b, 0, torch.tensor([0.5, 1.0]))
    expected = ((1 - 0.5) ** 2 + (1 / math.sqrt(2) - 1.0) ** 2) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "manhattan"])
@pytest.mark.parametrize("margin", [5.0, 0.1])
def test_triplet_matches_sentence_transformers(metric, margin):
    from sentence_transformers.sentence_transformer.losses.triplet import TripletDistanceMetric
    from sentence_transformers.sparse_encoder.losses import SparseTripletLoss

    g = torch.Generator().manual_seed(3)
    batch = 6
    anchors, docs = sparse_reps(batch, 48, g), sparse_reps(2 * batch, 48, g)
    theirs = SparseTripletLoss(st_model(), distance_metric=getattr(TripletDistanceMetric, metric.upper()),
                               triplet_margin=margin)
    ours = TripletLoss(metric, margin)
    assert_same_value_and_grads(lambda q, d: ours(q, d, 1),
                                lambda q, d: theirs.compute_loss_from_embeddings([q, *d.split(batch)], None),
                                (anchors, docs))


def test_triplet_defaults_are_sentence_transformers():
    from sentence_transformers.sentence_transformer.losses.triplet import TripletDistanceMetric
    from sentence_transformers.sparse_encoder.losses import SparseTripletLoss

    reference = SparseTripletLoss(st_model())
    assert reference.distance_metric == TripletDistanceMetric.EUCLIDEAN and reference.triplet_margin == 5
    assert (TripletLoss().distance_metric, TripletLoss().triplet_margin) == ("euclidean", 5.0)


def test_triplet_hand_computed():
    anchors = torch.tensor([[0.0, 0.0]])
    docs = torch.tensor([[3.0, 4.0], [0.0, 1.0]])  # positive at distance 5, negative at 1
    assert TripletLoss(triplet_margin=2.0)(anchors, docs, 1).item() == pytest.approx(5 - 1 + 2)
    assert TripletLoss(triplet_margin=2.0)(anchors, docs.flip(0), 1).item() == 0.0  # 1 - 5 + 2 < 0


@pytest.mark.parametrize("num_negatives", [0, 2])
def test_embedding_mse_matches_sentence_transformers(num_negatives):
    from sentence_transformers.sparse_encoder.losses import SparseMSELoss

    g = torch.Generator().manual_seed(num_negatives)
    batch, vocab = 5, 40
    queries, docs = sparse_reps(batch, vocab, g), sparse_reps(batch * (1 + num_negatives), vocab, g)
    teacher_queries, teacher_docs = sparse_reps(batch, vocab, g), sparse_reps(batch * (1 + num_negatives), vocab, g)
    # sentence-transformers' labels: (B, columns, V) teacher embeddings, one per input column.
    labels = torch.stack([teacher_queries, *teacher_docs.split(batch)], dim=1)
    theirs = SparseMSELoss(st_model())

    def reference(q, d):
        columns = [q, *d.split(batch)]
        return theirs.compute_loss_from_embeddings(columns, [labels[:, i] for i in range(len(columns))])

    assert_same_value_and_grads(lambda q, d: EmbeddingMSELoss()(q, d, num_negatives, teacher_queries, teacher_docs),
                                reference, (queries, docs))


def test_embedding_mse_teacher_gets_no_gradient():
    g = torch.Generator().manual_seed(0)
    q, d, tq, td = (sparse_reps(2, 8, g).requires_grad_(True) for _ in range(4))
    EmbeddingMSELoss()(q, d, 0, tq, td).backward()
    assert tq.grad is None and td.grad is None and q.grad is not None


def test_half_precision_reps_give_float32_losses():
    g = torch.Generator().manual_seed(1)
    a, b = sparse_reps(4, 16, g).bfloat16(), sparse_reps(4, 16, g).bfloat16()
    labels = torch.tensor([0.1, 0.5, 0.9, 0.3])
    for loss in (CoSENTLoss(), AnglELoss(), CosineSimilarityLoss()):
        out = loss(a, b, 0, labels)
        assert out.dtype == torch.float32 and torch.isfinite(out)
    assert TripletLoss()(a, torch.cat([b, a]), 1).dtype == torch.float32


# --- validation --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("loss", [CoSENTLoss(), AnglELoss(), CosineSimilarityLoss()])
def test_pair_losses_reject_other_batches(loss):
    a, labels = torch.ones(2, 4), torch.ones(2)
    assert loss.uses_labels and loss.negatives_needed == (0, 0)
    with pytest.raises(ValueError, match="num_negatives=1, expected 0"):
        loss(a, torch.ones(4, 4), 1, labels)
    with pytest.raises(ValueError, match=r"labels has shape \(3,\), expected \(B,\) = \(2,\)"):
        loss(a, a, 0, torch.ones(3))
    with pytest.raises(ValueError, match=r"expected both \(B, V\)"):
        loss(a, torch.ones(2, 5), 0, labels)


def test_triplet_rejects_other_batches():
    with pytest.raises(ValueError, match="num_negatives=2, expected exactly 1"):
        TripletLoss()(torch.ones(2, 4), torch.ones(6, 4), 2)
    with pytest.raises(ValueError, match=r"expected \(B, V\) and \(2B, V\)"):
        TripletLoss()(torch.ones(2, 4), torch.ones(3, 4), 1)


def test_embedding_mse_rejects_a_teacher_of_another_width():
    with pytest.raises(ValueError, match=r"teacher_query_reps \(2, 5\) vs query_reps \(2, 4\).*vocabulary"):
        EmbeddingMSELoss()(torch.ones(2, 4), torch.ones(2, 4), 0, torch.ones(2, 5), torch.ones(2, 4))


@pytest.mark.parametrize(("make", "message"), [
    (lambda: CoSENTLoss(scale=0), "CoSENTLoss: scale=0: expected a positive finite number"),
    (lambda: CoSENTLoss(similarity="l2"), "similarity='l2': expected 'cosine' or 'dot'"),
    (lambda: AnglELoss(scale=math.inf), "AnglELoss: scale=inf"),
    (lambda: TripletLoss(distance_metric="l2"), "distance_metric='l2'"),
    (lambda: TripletLoss(triplet_margin=-1), "triplet_margin=-1: expected a finite number >= 0"),
])
def test_bad_arguments_raise_config_error(make, message):
    with pytest.raises(ConfigError, match=message):
        make()
