"""The bf16 screen of the efficient head (``models/head_screen.py``): its error bound holds on this CPU's bf16 matmul,
and the screened head equals the float32 head (values, arg-max positions, gradients) wherever it runs."""

import pytest
import torch
from torch.overrides import TorchFunctionMode

from splade_lightning.errors import ConfigError
from splade_lightning.models import SpladeEncoder, head_screen
from splade_lightning.models.head_screen import bucket_rows, error_factor, screen_applies, screened_max
from splade_lightning.models.head_tiles import position_chunks
from splade_lightning.models.pooling import splade_activation
from splade_lightning.models.sparse_head import _running_max, max_pool_projection


def sparse_case(seed, B=6, L=40, H=48, V=3000, padding="right"):
    """Random activations and a decoder whose bias leaves ~1% of the entries active, as after SPLADE training."""
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(B, L, H, generator=g) * 3
    weight = torch.randn(V, H, generator=g) * 0.1
    lengths = torch.tensor([L, L - 3, 17, 9, 1, 30, 25, 12, 5, 2, 40, 33][:B])
    lengths[-1] = 0  # the last row has no tokens
    positions = torch.arange(L).unsqueeze(0)
    if padding == "right":
        mask = positions < lengths.unsqueeze(1)
    elif padding == "left":
        mask = positions >= L - lengths.unsqueeze(1)
    else:  # holes
        mask = torch.rand(B, L, generator=g) > 0.4
        mask[-1] = False
    hidden[~mask] = float("nan")  # whatever is at padding never reaches the output
    exact_max = (hidden.nan_to_num() @ weight.T).masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(dim=1)
    bias = -exact_max[:-1].amax(dim=0) - 0.3  # no entry active ...
    bias[torch.rand(V, generator=g) < 0.04] += 1.5  # ... but some of 4% of the vocabulary: ~1% of the entries
    return hidden, weight, bias, mask


def float32_head(hidden, weight, bias, mask):
    best, positions = _running_max(hidden, weight, bias, mask, 64, track=True, exact=True)
    return best, positions


def test_the_bound_holds_on_this_cpus_bf16_matmul():
    """|bf16 logit - float32 logit| <= c ||h|| ||W_v|| for every entry, over scales from 1e-3 to 1e3 (the bound is
    stated for the exact product; here the float32 product stands in for it, within c's margin)."""
    g = torch.Generator().manual_seed(0)
    for width in (16, 128, 384, 1024):
        for scale in (1e-3, 1.0, 1e3):
            h = torch.randn(256, width, generator=g) * scale
            w = torch.randn(2048, width, generator=g) * torch.rand(2048, 1, generator=g)
            h[:8] = h[:8].abs()
            w[:8] = w[:8].abs()  # all terms of one sign: the worst case for cancellation-free sums
            exact = h.double() @ w.double().T
            approx = (h.bfloat16() @ w.bfloat16().T).double()
            bound = error_factor(width) * h.double().norm(dim=1, keepdim=True) * w.double().norm(dim=1)
            assert bool(((approx - exact).abs() <= bound).all()), (width, scale)
            assert float(((approx - exact).abs() / bound).max()) > 0.05  # and it is not vacuous


@pytest.mark.parametrize("padding", ["right", "left", "holes"])
@pytest.mark.parametrize("positions", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_screened_head_equals_the_float32_head(padding, positions, seed):
    hidden, weight, bias, mask = sparse_case(seed, padding=padding)
    screened = screened_max(hidden, weight, bias, mask, 64, positions)
    assert screened is not None
    best, winner = screened
    reference, reference_positions = float32_head(hidden, weight, bias, mask)
    active = reference > 0
    assert 0.002 < float(active.float().mean()) < 0.05
    torch.testing.assert_close(splade_activation(best), splade_activation(reference), rtol=1e-6, atol=1e-6)
    assert torch.equal(best > 0, active)
    assert bool((best[~active] <= 0).all())
    assert torch.equal(torch.isneginf(best), torch.isneginf(reference))  # rows without tokens stay -inf
    if positions:
        assert torch.equal(winner[active].long(), reference_positions[active].long())
    else:
        assert winner is None


def test_edge_entries_on_a_sparse_batch():
    """Biases that put 80 entries' true maximum within +-1e-3 of zero, far inside the bf16 error: each of them whose
    float32 value is positive must survive the screen."""
    hidden, weight, bias, mask = sparse_case(4, B=6, V=4000, padding="right")
    exact_max, _ = float32_head(hidden, weight, None, mask)
    g = torch.Generator().manual_seed(2)
    edge = torch.randperm(4000, generator=g)[:80]  # 2% of row 1's entries at the edge
    bias[edge] = -exact_max[1, edge] + (torch.rand(80, generator=g) - 0.5) * 2e-3
    reference, positions = float32_head(hidden, weight, bias, mask)
    screened = screened_max(hidden, weight, bias, mask, 64, True)
    assert screened is not None
    best, winner = screened
    assert 10 < int((reference[1, edge] > 0).sum()) < 70
    assert torch.equal(best > 0, reference > 0)
    active = reference > 0
    assert torch.equal(winner[active].long(), positions[active].long())


def test_without_a_margin_the_edge_entries_are_lost(monkeypatch):
    """The test above fails when the bound is dropped: it can fail."""
    monkeypatch.setattr(head_screen, "error_factor", lambda width: 0.0)
    hidden, weight, bias, mask = sparse_case(4, B=6, V=4000, padding="right")
    exact_max, _ = float32_head(hidden, weight, None, mask)
    g = torch.Generator().manual_seed(2)
    edge = torch.randperm(4000, generator=g)[:80]
    bias[edge] = -exact_max[1, edge] + (torch.rand(80, generator=g) - 0.5) * 2e-3
    reference, _ = float32_head(hidden, weight, bias, mask)
    best, _ = screened_max(hidden, weight, bias, mask, 64, True)
    assert not torch.equal(best > 0, reference > 0)


def test_dense_activations_give_way_to_the_float32_head():
    hidden, weight, _, mask = sparse_case(5)
    bias = torch.full((weight.shape[0],), 50.0)  # every entry active: an untrained head's regime
    assert screened_max(hidden, weight, bias, mask, 64, True) is None
    out = max_pool_projection(hidden, weight, bias, mask, 64, screen="bf16")
    torch.testing.assert_close(out, max_pool_projection(hidden, weight, bias, mask, 64, screen="off"), rtol=0, atol=0)


def test_a_nan_in_a_text_is_not_screened_away():
    hidden, weight, bias, mask = sparse_case(6, B=10)
    hidden[2, 3] = float("nan")  # a real position of row 2
    best, _ = screened_max(hidden, weight, bias, mask, 64, False)
    reference, _ = float32_head(hidden, weight, bias, mask)
    assert bool(best[2].isnan().all()) and bool(reference[2].isnan().all())
    others = [0, 1, 3, 4, 5, 6, 7, 8, 9]
    torch.testing.assert_close(best[others].clamp_min(0), reference[others].clamp_min(0), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("with_bias", [True, False])
def test_gradients_equal_the_float32_heads(with_bias):
    """Training through the screen: outputs and the gradients of hidden, weight and bias match the float32 head's,
    ties included (the first tied position gets the gradient)."""
    hidden, weight, bias, mask = sparse_case(7)
    hidden = hidden.nan_to_num()
    hidden[0, 9] = hidden[0, 2]  # an exact tie between two positions
    if not with_bias:  # the same logits from a constant feature: h' = [h, 1], W' = [W, b]
        hidden = torch.cat([hidden, torch.ones(*hidden.shape[:2], 1)], dim=-1)
        weight, bias = torch.cat([weight, bias.unsqueeze(1)], dim=1), None
    upstream = torch.randn(hidden.shape[0], weight.shape[0])

    def run(screen):
        leaves = [t.detach().clone().requires_grad_(True) if t is not None else None for t in (hidden, weight, bias)]
        out = splade_activation(max_pool_projection(*leaves, mask, 64, screen=screen))
        (out * upstream).sum().backward()
        return out.detach(), [t.grad for t in leaves if t is not None]

    out, got = run("bf16")
    ref, want = run("off")
    assert 0 < float((ref > 0).float().mean()) < 0.2
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_when_the_screen_applies(monkeypatch):
    hidden = torch.zeros(1, 2, 4)
    monkeypatch.setattr(head_screen, "bf16_dot_available", lambda: False)
    assert not screen_applies("auto", hidden) and screen_applies("bf16", hidden)
    monkeypatch.setattr(head_screen, "bf16_dot_available", lambda: True)
    assert screen_applies("auto", hidden) and not screen_applies("off", hidden)
    assert not screen_applies("bf16", hidden.double()) and not screen_applies("bf16", hidden.bfloat16())


def test_encoder_option(tiny_bert_dir):
    with pytest.raises(ConfigError, match="head_screen='fp8': expected 'auto', 'bf16' or 'off'"):
        SpladeEncoder(tiny_bert_dir, head_screen="fp8")
    encoder = SpladeEncoder(tiny_bert_dir, head_screen="bf16").eval()
    decoder = encoder.output_decoder()
    with torch.no_grad():
        decoder.bias -= 3.0 + decoder.weight.norm(dim=1).max() * 10  # a sparse head
        ids = torch.randint(5, encoder.vocab_size, (3, 11))
        mask = torch.ones_like(ids)
        mask[1, 6:] = 0
        screened = encoder(ids, mask)
        encoder.head_screen = "off"
        torch.testing.assert_close(screened, encoder(ids, mask), rtol=1e-6, atol=1e-6)


def test_row_counts_are_rounded_to_few_values():
    for count in range(1, 5000):
        rounded = bucket_rows(count)
        assert count <= rounded <= count + max(63, count // 8)
    assert len({bucket_rows(count) for count in range(1, 513)}) == 8


def test_bf16_tiles_take_few_shapes():
    """oneDNN builds a primitive per bf16 matmul shape, and memory grew with each: batches of texts of every length
    from 1 to 128 tokens give the screen's tiles at most 8 row counts (unrounded: dozens)."""
    g = torch.Generator().manual_seed(0)
    rounded, raw = set(), set()
    for batch in (64, 37, 9):
        lengths = torch.randint(1, 129, (batch,), generator=g)
        mask = torch.arange(128).unsqueeze(0) < lengths.unsqueeze(1)
        hidden = torch.randn(batch, 128, 16, generator=g)
        for _, rows, block, padded in position_chunks(hidden, mask, 512):
            raw.add(block.shape[0])
            _, tile_rows, count = head_screen._bf16_block(rows, block, padded)
            assert count == block.shape[0] and tile_rows.shape[0] == bucket_rows(count)
            assert tile_rows.dtype == torch.bfloat16
            rounded.add(tile_rows.shape[0])
    assert len(rounded) <= 8 < len(raw)


class _MatmulShapes(TorchFunctionMode):
    """Records the (rows, inner, columns) shape of every bf16 ``@``/``matmul``/``addmm`` call."""

    def __init__(self):
        super().__init__()
        self.shapes = set()
        self.addmm = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in (torch.Tensor.matmul, torch.matmul, torch.Tensor.mm, torch.mm) and args[0].dtype == torch.bfloat16:
            self.shapes.add((args[0].shape[0], args[0].shape[1], args[1].shape[1]))
        if func in (torch.addmm, torch.Tensor.addmm) and args[1].dtype == torch.bfloat16:
            self.addmm += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("padding", ["right", "left", "holes"])
def test_one_matmul_shape_per_row_count(padding):
    """From 16,384 vocabulary entries on, the last block (20,000 = 19 x 1,024 + 544 columns) and the sample (every
    32nd entry: 625 columns) are padded to 1,024 columns, and padding takes no bias: every bf16 product is
    (rows, H) x (H, 1024), one shape per rounded row count, never an ``addmm``. The result stays exact."""
    hidden, weight, bias, mask = sparse_case(3, V=20_000, padding=padding)
    with _MatmulShapes() as seen:
        screened = screened_max(hidden, weight, bias, mask, 64, positions=True)
    assert screened is not None and seen.addmm == 0 and seen.shapes
    assert {columns for _, _, columns in seen.shapes} == {1024}
    assert {inner for _, inner, _ in seen.shapes} == {hidden.shape[-1]}
    assert len(seen.shapes) == len({rows for rows, _, _ in seen.shapes})
    best, positions = screened
    reference, reference_positions = float32_head(hidden, weight, bias, mask)
    active = reference > 0
    torch.testing.assert_close(best[active], reference[active], rtol=1e-6, atol=1e-6)
    assert torch.equal(best > 0, active) and torch.equal(positions[active], reference_positions[active])


def test_small_vocabularies_keep_their_widths():
    """Below 16,384 entries padding would add more than 1/8 to the products: the widths stay as they are (3,000 =
    2 x 1,024 + 952; the sample 94), still without ``addmm``."""
    hidden, weight, bias, mask = sparse_case(3, padding="right")
    with _MatmulShapes() as seen:
        screened_max(hidden, weight, bias, mask, 64, positions=False)
    assert seen.addmm == 0 and {columns for _, _, columns in seen.shapes} == {1024, 952, 94}


def test_padded_rows_repeat_a_real_row_of_their_text():
    """A padded row of a chunk becomes its text's first real row in the chunk (whatever the backbone left there)."""
    hidden = torch.full((3, 8, 4), float("nan"))
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 1], [0, 0, 0, 1, 1, 1, 1, 1], [0, 1, 0, 1, 0, 0, 0, 0]]).bool()
    hidden[mask] = torch.arange(int(mask.sum()) * 4, dtype=torch.float32).view(-1, 4)
    for _, rows, block, padded in position_chunks(hidden, mask, 12):  # 4 positions x 3 rows per chunk
        _, tile, count = head_screen._bf16_block(rows, block, padded)
        width = 3 if rows is None else rows.numel()
        tile = tile[:count].float().view(-1, width, 4)  # (c, R, H)
        real = ~padded[:, :, 0] if padded is not None else torch.ones(tile.shape[:2], dtype=torch.bool)
        assert not tile.isnan().any()
        for r in range(width):
            first = int(real[:, r].nonzero()[0])
            assert torch.equal(tile[~real[:, r], r], tile[first, r].expand(int((~real[:, r]).sum()), 4))
            assert torch.equal(tile[real[:, r], r], block.view(-1, width, 4)[real[:, r], r].bfloat16().float())
