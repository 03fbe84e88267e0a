"""Memory-efficient max-pooling head: outputs and gradients equal the naive (B, L, V) autograd path."""

import pytest
import torch

from splade_lightning.models import SpladeEncoder
from splade_lightning.models.pooling import splade_activation
from splade_lightning.models.sparse_head import max_pool_projection


def naive(hidden, weight, bias, mask, activation="relu"):
    logits = hidden @ weight.T + (bias if bias is not None else 0)
    logits = logits.masked_fill(~mask.bool().unsqueeze(-1), float("-inf"))
    return splade_activation(logits.max(dim=1).values, activation)


def case(seed, B=5, L=9, H=12, V=40, bias=True):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(B, L, H, generator=g)
    weight = torch.randn(V, H, generator=g) * 0.5
    b = torch.randn(V, generator=g) if bias else None
    mask = (torch.rand(B, L, generator=g) > 0.35).long()
    mask[:, 0] = 1
    mask[2, 4:] = 0
    hidden[3] = 0.0
    if b is not None:
        b[:7] = -5.0  # several vocabulary entries negative everywhere -> zero weight, zero gradient
    return hidden, weight, b, mask


def grads(fn, hidden, weight, bias, mask, upstream, **kw):
    leaves = [t.detach().clone().requires_grad_(True) if t is not None else None for t in (hidden, weight, bias)]
    out = fn(*leaves, mask, **kw)
    (out * upstream).sum().backward()
    return out.detach(), [t.grad if t is not None else None for t in leaves]


def assert_rel_close(actual, expected, tol=1e-5, atol=0.0):
    """Max error relative to the tensor's scale (plus ``atol`` for gradients that are analytically ~0)."""
    scale = expected.abs().max().clamp_min(1e-12)
    assert (actual - expected).abs().max() <= tol * scale + atol


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("chunk_tokens", [1, 7, 15, 4096])  # positions per chunk (B=5): 1, 1, 3, all
@pytest.mark.parametrize("activation", ["relu", "log1p_relu"])
def test_outputs_and_gradients_match_naive(seed, chunk_tokens, activation):
    hidden, weight, bias, mask = case(seed)
    upstream = torch.randn(hidden.shape[0], weight.shape[0])

    def efficient(h, w, b, m):
        return splade_activation(max_pool_projection(h, w, b, m, chunk_tokens=chunk_tokens), activation)

    ours, ours_grads = grads(efficient, hidden, weight, bias, mask, upstream)
    ref, ref_grads = grads(lambda h, w, b, m: naive(h, w, b, m, activation), hidden, weight, bias, mask, upstream)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    for got, want in zip(ours_grads, ref_grads):
        assert_rel_close(got, want)


def test_no_bias_and_fully_padded_row():
    hidden, weight, _, mask = case(4, bias=False)
    mask[1] = 0
    out = max_pool_projection(hidden, weight, None, mask)
    assert torch.isinf(out[1]).all() and (splade_activation(out)[1] == 0).all()
    torch.testing.assert_close(splade_activation(out), naive(hidden, weight, None, mask))


@pytest.mark.parametrize("chunk_tokens", [512, 10])  # one chunk; chunks of 2 positions (the tie spans two)
def test_ties_route_the_gradient_to_the_first_position(chunk_tokens):
    """Identical hidden states at positions 1 and 4 tie exactly; W/b gradients are unaffected by which one wins."""
    hidden, weight, bias, mask = case(5)
    mask[:] = 1
    hidden[:, 4] = hidden[:, 1]
    upstream = torch.rand(hidden.shape[0], weight.shape[0])
    _, (gh, gw, gb) = grads(lambda h, w, b, m: splade_activation(max_pool_projection(h, w, b, m, chunk_tokens)),
                            hidden, weight, bias, mask, upstream)
    _, (rh, rw, rb) = grads(naive, hidden, weight, bias, mask, upstream)
    assert_rel_close(gw, rw)
    assert_rel_close(gb, rb)
    assert_rel_close(gh[:, 1] + gh[:, 4], rh[:, 1] + rh[:, 4])  # same total; ours puts it all on the first
    logits = hidden @ weight.T + bias
    wins_at_1 = logits.argmax(dim=1) == 1
    assert wins_at_1.any()


@pytest.mark.parametrize("shift", [20.0, -100.0])  # every entry active (an untrained head); none active
def test_dense_and_empty_activations_match_naive(shift):
    hidden, weight, bias, mask = case(7, B=4, L=16, V=300)
    bias = bias + shift
    upstream = torch.randn(hidden.shape[0], weight.shape[0])
    ours, ours_grads = grads(lambda h, w, b, m: splade_activation(max_pool_projection(h, w, b, m, 12)), hidden,
                             weight, bias, mask, upstream)
    ref, ref_grads = grads(naive, hidden, weight, bias, mask, upstream)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    for got, want in zip(ours_grads, ref_grads):
        assert_rel_close(got, want, atol=1e-12)


def test_a_bias_only_gradient_searches_no_positions(monkeypatch):
    """With the hidden states and the decoder weight frozen, backward needs no arg-max position at all."""
    import splade_lightning.models.sparse_head as sparse_head

    hidden, weight, bias, mask = case(12)
    upstream = torch.randn(hidden.shape[0], weight.shape[0])
    ref = bias.detach().clone().requires_grad_(True)
    (naive(hidden, weight, ref, mask) * upstream).sum().backward()

    def fail(*args, **kwargs):
        raise AssertionError("arg-max positions searched for a bias-only gradient")

    monkeypatch.setattr(sparse_head, "_argmax_positions", fail)
    ours = bias.detach().clone().requires_grad_(True)
    (splade_activation(max_pool_projection(hidden, weight, ours, mask, 15)) * upstream).sum().backward()
    assert_rel_close(ours.grad, ref.grad)


def test_no_winner_tracking_without_gradients():
    """Encoding (no grad) skips the chunk-winner bookkeeping and gives the same output."""
    hidden, weight, bias, mask = case(8)
    with torch.no_grad():
        plain = max_pool_projection(hidden, weight, bias, mask, 15)
    tracked = max_pool_projection(hidden, weight.requires_grad_(True), bias, mask, 15)
    assert tracked.requires_grad and not plain.requires_grad
    torch.testing.assert_close(plain, tracked.detach(), rtol=0, atol=0)


def test_bf16_autocast_keeps_parameter_gradients_fp32():
    hidden, weight, bias, mask = case(6)
    weight.requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = splade_activation(max_pool_projection(hidden, weight, bias, mask))
    assert out.dtype == torch.bfloat16
    out.float().sum().backward()
    assert weight.grad.dtype == torch.float32
    torch.testing.assert_close(out.float(), naive(hidden, weight.detach(), bias, mask), rtol=2e-2, atol=5e-2)


@pytest.mark.parametrize("activation", ["relu", "log1p_relu"])
@pytest.mark.parametrize("checkpointing", [False, True])
def test_encoder_efficient_equals_plain_head(tiny_bert_dir, activation, checkpointing):
    torch.manual_seed(0)
    kwargs = {"activation": activation, "gradient_checkpointing": checkpointing}
    fast = SpladeEncoder(tiny_bert_dir, head_chunk_tokens=16, **kwargs)
    plain = SpladeEncoder(tiny_bert_dir, efficient_head=False, **kwargs)
    assert fast.efficient_head and not plain.efficient_head
    for module in (fast, plain):  # same function on both sides: no dropout
        for m in module.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
    ids = torch.randint(1000, 5000, (4, 11))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[3, 2:] = 0
    out_fast, out_plain = fast(ids, mask), plain(ids, mask)
    torch.testing.assert_close(out_fast, out_plain, rtol=1e-5, atol=1e-6)
    upstream = torch.rand_like(out_fast)
    (out_fast * upstream).sum().backward()
    (out_plain * upstream).sum().backward()
    plain_params = dict(plain.named_parameters())
    for name, param in fast.named_parameters():
        assert_rel_close(param.grad, plain_params[name].grad, tol=1e-4, atol=1e-7)


def test_sum_pooling_uses_the_plain_head(tiny_bert_dir):
    assert not SpladeEncoder(tiny_bert_dir, pooling="sum").efficient_head


def exact_path(h, w, b, m, chunk_tokens=12):
    """The accelerator path (arg-max positions recorded in forward), forced on the CPU."""
    from splade_lightning.models.sparse_head import MaxPoolProjection

    return splade_activation(MaxPoolProjection.apply(h, w, b, m, chunk_tokens, True, True))


@pytest.mark.parametrize("chunk_tokens", [1, 12, 4096])
@pytest.mark.parametrize("shift", [0.0, 20.0])  # sparse and every entry active
def test_recorded_positions_give_the_same_gradients_as_recomputed_ones(chunk_tokens, shift):
    """The accelerator path must route every gradient to the position the CPU path recomputes (bitwise)."""
    hidden, weight, bias, mask = case(9, B=4, L=16, V=300)
    bias = bias + shift
    upstream = torch.randn(hidden.shape[0], weight.shape[0])
    fwd, fwd_grads = grads(lambda h, w, b, m: exact_path(h, w, b, m, chunk_tokens), hidden, weight, bias, mask,
                           upstream)
    cpu, cpu_grads = grads(lambda h, w, b, m: chunks_path(h, w, b, m, chunk_tokens), hidden, weight, bias, mask,
                           upstream)
    auto, auto_grads = grads(lambda h, w, b, m: splade_activation(max_pool_projection(h, w, b, m, chunk_tokens)),
                             hidden, weight, bias, mask, upstream)
    for other, other_grads in ((cpu, cpu_grads), (auto, auto_grads)):
        torch.testing.assert_close(fwd, other, rtol=0, atol=0)
        for got, want in zip(fwd_grads, other_grads):
            torch.testing.assert_close(got, want, rtol=0, atol=0)


def chunks_path(h, w, b, m, chunk_tokens=12):
    """The CPU's sparse path (winning chunks recorded in forward, positions searched in backward), forced."""
    from splade_lightning.models.sparse_head import MaxPoolProjection

    return splade_activation(MaxPoolProjection.apply(h, w, b, m, chunk_tokens, True, False))


@pytest.mark.parametrize("screen", ["off", "bf16"])
@pytest.mark.parametrize("shift", [-7.0, 20.0])  # ~3% of the entries active; every entry active
def test_dense_activations_record_positions_in_forward(monkeypatch, screen, shift):
    """On the CPU, backward searches the arg-max positions of sparse activations, while dense ones (more than 1/8 of
    a sample active) get them recorded in forward; both give the naive head's outputs and gradients."""
    import splade_lightning.models.sparse_head as sparse_head

    hidden, weight, bias, mask = case(9, B=4, L=16, H=24, V=3000)
    bias = bias + shift
    searched = []
    search = sparse_head._argmax_positions
    monkeypatch.setattr(sparse_head, "_argmax_positions", lambda *a, **k: searched.append(1) or search(*a, **k))
    upstream = torch.randn(hidden.shape[0], weight.shape[0])
    ours, ours_grads = grads(lambda h, w, b, m: splade_activation(max_pool_projection(h, w, b, m, 12, screen=screen)),
                             hidden, weight, bias, mask, upstream)
    ref, ref_grads = grads(naive, hidden, weight, bias, mask, upstream)
    active = float((ref > 0).float().mean())
    assert (0.005 < active < 0.1) if shift < 0 else active == 1.0
    assert bool(searched) == (shift < 0 and screen == "off")  # the screen records sparse positions itself
    assert sparse_head.dense_sample(hidden, weight, bias, mask.bool(), 12) == (shift > 0)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    for got, want in zip(ours_grads, ref_grads):
        assert_rel_close(got, want)


@pytest.mark.parametrize("chunk_tokens", [512, 10])
def test_recorded_positions_break_ties_towards_the_first_position(chunk_tokens):
    hidden, weight, bias, mask = case(5)
    mask[:] = 1
    hidden[:, 4] = hidden[:, 1]  # positions 1 and 4 tie exactly
    upstream = torch.rand(hidden.shape[0], weight.shape[0])
    _, (gh, _, _) = grads(lambda h, w, b, m: exact_path(h, w, b, m, chunk_tokens), hidden, weight, bias, mask,
                          upstream)
    logits = hidden @ weight.T + bias
    assert (logits.argmax(dim=1) == 1).any()
    assert gh[:, 4].abs().sum() == 0 and gh[:, 1].abs().sum() > 0  # all on the first of the tied positions


@pytest.mark.parametrize("chunk_tokens", [4, 12, 20, 4096])  # 1, 3, 5 and all 16 positions per chunk (B=4)
@pytest.mark.parametrize("padding", ["right", "left", "holes"])
@pytest.mark.parametrize("exact", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_padding_as_a_bias_equals_masking_the_logits(chunk_tokens, padding, exact, dtype):
    """The CPU excludes padding with a -inf bias inside the tile product (addmm) instead of a masked fill of the tile:
    the maximum, and the chunk or position holding it, are bitwise the masked fill's, ties included (V = 1100: two
    vocabulary tiles)."""
    from splade_lightning.models.sparse_head import _running_max

    hidden, weight, bias, mask = case(11, B=4, L=16, V=1100)
    hidden[:, 9] = hidden[:, 2]  # an exact tie across chunks
    lengths = torch.tensor([16, 11, 5, 1])
    positions = torch.arange(16).unsqueeze(0)
    if padding == "right":
        mask = (positions < lengths.unsqueeze(1)).long()
    elif padding == "left":
        mask = (positions >= 16 - lengths.unsqueeze(1)).long()
    hidden[mask == 0] = 1e4  # padding that would win everywhere if it were not excluded
    mask = mask.bool()
    b, position = (~mask).nonzero()[0]
    hidden[b, position] = float("nan")  # a NaN at padding must not reach the output either
    hidden, weight, bias = hidden.to(dtype), weight.to(dtype), bias.to(dtype)
    best, winner = _running_max(hidden, weight, bias, mask, chunk_tokens, True, exact, padding_as_bias=True)
    masked, masked_winner = _running_max(hidden, weight, bias, mask, chunk_tokens, True, exact, padding_as_bias=False)
    torch.testing.assert_close(best, masked, rtol=0, atol=0)
    assert torch.equal(winner, masked_winner)
    if dtype != torch.bfloat16:
        torch.testing.assert_close(splade_activation(best), naive(hidden, weight, bias, mask), rtol=1e-6, atol=1e-6)


def test_chunk_size_by_device_when_none_is_given(tiny_bert_dir):
    """512 on the CPU, 8192 on a GPU (where 512 was launch-bound: benchmarks/README.md); an explicit value wins."""
    from splade_lightning.errors import ConfigError
    from splade_lightning.models.sparse_head import default_chunk_tokens

    assert default_chunk_tokens(torch.device("cpu")) == 512
    assert default_chunk_tokens(torch.device("cuda", 0)) == 8192
    hidden, weight, bias, mask = case(3)
    torch.testing.assert_close(max_pool_projection(hidden, weight, bias, mask),
                               max_pool_projection(hidden, weight, bias, mask, 512), rtol=0, atol=0)
    assert SpladeEncoder(tiny_bert_dir).head_chunk_tokens is None
    for bad in (0, True, 2.5):
        with pytest.raises(ConfigError, match="head_chunk_tokens"):
            SpladeEncoder(tiny_bert_dir, head_chunk_tokens=bad)
