"""SPLADE pooling against the reference formula (sentence-transformers SpladePooling / NAVER): values and grads."""

import pytest
import torch

from splade_lightning.models.pooling import splade_pool


def reference_pool(logits, mask, pooling, activation):
    """sentence-transformers 6.x SpladePooling, padded path: relu(x*m) -> log1p [-> log1p] -> max/sum over L."""
    z = torch.relu(logits * mask.unsqueeze(-1).to(logits.dtype))
    a = torch.log1p(z)
    if activation == "log1p_relu":
        a = torch.log1p(a)
    return a.max(dim=1).values if pooling == "max" else a.sum(dim=1)


def random_case(seed=0, B=4, L=7, V=50):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, L, V, generator=g) * 3
    mask = (torch.rand(B, L, generator=g) > 0.3).long()
    mask[:, 0] = 1
    logits[1] = -torch.rand(L, V, generator=g) - 0.1  # an all-negative row -> all-zero vector
    mask[2, 3:] = 0
    return logits, mask


@pytest.mark.parametrize("pooling", ["max", "sum"])
@pytest.mark.parametrize("activation", ["relu", "log1p_relu"])
def test_values_and_gradients_match_reference(pooling, activation):
    logits, mask = random_case()
    ours_in = logits.clone().requires_grad_(True)
    ref_in = logits.clone().requires_grad_(True)
    ours = splade_pool(ours_in, mask, pooling, activation)
    ref = reference_pool(ref_in, mask, pooling, activation)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    upstream = torch.randn_like(ours)
    (ours * upstream).sum().backward()
    (ref * upstream).sum().backward()
    torch.testing.assert_close(ours_in.grad, ref_in.grad, rtol=1e-5, atol=1e-6)
    assert (ours >= 0).all()
    assert torch.count_nonzero(ours[1]) == 0  # all-negative logits give an empty vector


def test_padding_never_contributes():
    logits, mask = random_case(seed=1)
    spiked = logits.clone()
    spiked[mask == 0] = 100.0  # huge logits at padded positions must be ignored
    torch.testing.assert_close(splade_pool(spiked, mask, "max"), splade_pool(logits, mask, "max"))
    torch.testing.assert_close(splade_pool(spiked, mask, "sum"), splade_pool(logits, mask, "sum"))


def test_fully_padded_row_is_zero_and_inplace_matches():
    logits, mask = random_case(seed=2)
    mask[3] = 0
    out = splade_pool(logits.clone(), mask, "max", inplace=True)
    assert torch.count_nonzero(out[3]) == 0
    torch.testing.assert_close(out, splade_pool(logits, mask, "max"))


def test_hand_computed_value():
    logits = torch.tensor([[[1.0, -2.0], [3.0, 0.5]]])  # (1, 2, 2)
    mask = torch.tensor([[1, 1]])
    expected_max = torch.log1p(torch.tensor([[3.0, 0.5]]))
    expected_sum = torch.log1p(torch.tensor([[1.0, 0.0]])) + torch.log1p(torch.tensor([[3.0, 0.5]]))
    torch.testing.assert_close(splade_pool(logits, mask, "max"), expected_max)
    torch.testing.assert_close(splade_pool(logits, mask, "sum"), expected_sum)
