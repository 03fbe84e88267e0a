"""The efficient head's tile helpers (``models/head_tiles.py``)."""

import pytest
import torch

from splade_lightning.models.head_tiles import first_max


@pytest.mark.parametrize("positions", [1, 2, 8, 16, 255])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_first_max_is_max_with_indices(positions, dtype):
    generator = torch.Generator().manual_seed(positions)
    # few distinct values: many ties, so the first position on ties is what is tested
    logits = torch.randint(-3, 3, (positions, 24, 40), generator=generator).to(dtype)
    logits[:, 5] = float("-inf")  # a row that is all padding here
    logits[positions - 1, 6] = float("-inf")
    expected_values, expected_index = logits.max(dim=0)
    values, found = first_max(logits, 37, torch.int16)
    assert found.dtype == torch.int16 and values.dtype == dtype
    assert torch.equal(values, expected_values)
    assert torch.equal(found.long(), expected_index + 37)


def test_first_max_on_continuous_values():
    logits = torch.randn(8, 64, 1024, generator=torch.Generator().manual_seed(0))
    logits[3, :, 100] = logits[5, :, 100] = 50.0  # ties at a high value
    values, found = first_max(logits, 0, torch.int32)
    expected_values, expected_index = logits.max(dim=0)
    assert torch.equal(values, expected_values) and torch.equal(found.long(), expected_index)
    assert bool((found[:, 100] == 3).all())


def test_a_nan_maximum_gets_a_position_within_the_tile():
    logits = torch.zeros(4, 2, 3)
    logits[2, 1, 1] = float("nan")
    values, found = first_max(logits, 10, torch.int16)  # 4 positions: 10..13
    assert torch.isnan(values[1, 1]) and int(found[1, 1]) == 13  # the last position, within the tile
    assert int(found[0, 0]) == 10 and int(found[1, 2]) == 10


def test_many_positions_fall_back_to_max():
    logits = torch.randint(-2, 2, (300, 3, 5), generator=torch.Generator().manual_seed(1)).float()
    values, found = first_max(logits, 4, torch.int32)
    expected_values, expected_index = logits.max(dim=0)
    assert torch.equal(values, expected_values) and torch.equal(found.long(), expected_index + 4)


@pytest.mark.parametrize("positions", [1, 8, 255])
def test_positions_up_to_the_dtype_limit(positions):
    logits = torch.randint(-2, 2, (positions, 4, 6), generator=torch.Generator().manual_seed(2)).float()
    offset = 2**15 - positions  # the last position is 32767, the largest int16
    _, found = first_max(logits, offset, torch.int16)
    assert torch.equal(found.long(), logits.max(dim=0).indices + offset)
