"""Losses and regularisers: hand-computed values and parity with sentence-transformers 6.x on the same embeddings."""

import math

import pytest
import torch

from splade_lightning.losses import FlopsRegularizer, InBatchNegativesLoss, L1Regularizer


@pytest.fixture(scope="module")
def st_model(tiny_bert_dir):
    from sentence_transformers import SparseEncoder

    return SparseEncoder(tiny_bert_dir, device="cpu")


def sparse_reps(rows, dim=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.relu(torch.randn(rows, dim, generator=g)) * (torch.rand(rows, dim, generator=g) > 0.6)
    return x


def test_infonce_hand_computed():
    q = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    d = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]])  # pos0, pos1, neg0, neg1
    s = q @ d.T  # [[1,0,1,0],[0,2,2,0]]
    expected = 0.5 * ((-1 + math.log(math.e + 1 + math.e + 1)) + (-2 + math.log(1 + 2 * math.e**2 + 1)))
    loss = InBatchNegativesLoss()(q, d, num_negatives=1)
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert s[0, 0] == 1


@pytest.mark.parametrize(("num_negatives", "scale"), [(0, 1.0), (1, 1.0), (3, 0.5)])
def test_infonce_matches_sentence_transformers(st_model, num_negatives, scale):
    from sentence_transformers.sparse_encoder.losses import SparseMultipleNegativesRankingLoss

    B = 6
    cols = [sparse_reps(B, seed=c) for c in range(2 + num_negatives)]
    st_loss = SparseMultipleNegativesRankingLoss(st_model, scale=scale).compute_loss_from_embeddings(cols, None)
    ours = InBatchNegativesLoss(scale=scale)(cols[0], torch.cat(cols[1:]), num_negatives)
    torch.testing.assert_close(ours, st_loss, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("threshold", [None, 10])
def test_flops_matches_sentence_transformers(st_model, threshold):
    from sentence_transformers.sparse_encoder.losses import FlopsLoss

    reps = sparse_reps(12, seed=3)
    expected = FlopsLoss(st_model, threshold=threshold).compute_loss_from_embeddings(reps)
    torch.testing.assert_close(FlopsRegularizer(threshold)(reps), expected, rtol=1e-6, atol=1e-7)


def test_flops_and_l1_hand_computed():
    reps = torch.tensor([[1.0, 0.0, 2.0], [3.0, 0.0, 0.0]])
    # FLOPS: mean over rows = [2, 0, 1] -> 4 + 0 + 1
    assert FlopsRegularizer()(reps).item() == pytest.approx(5.0)
    # threshold 1: row 2 has 1 active dim (<= 1) and is masked; mean still divides by N=2 -> [0.5, 0, 1]
    assert FlopsRegularizer(threshold=1)(reps).item() == pytest.approx(0.25 + 1.0)
    assert L1Regularizer()(reps).item() == pytest.approx(3.0)
    assert L1Regularizer(threshold=1)(reps).item() == pytest.approx(1.5)


def test_bad_loss_arguments():
    from splade_lightning.errors import ConfigError

    with pytest.raises(ConfigError, match="scale=0"):
        InBatchNegativesLoss(scale=0)
    with pytest.raises(ConfigError, match="threshold=-1"):
        FlopsRegularizer(threshold=-1)
    with pytest.raises(ValueError, match="B\\*\\(1\\+n\\)"):
        InBatchNegativesLoss()(torch.ones(2, 3), torch.ones(3, 3), num_negatives=1)
