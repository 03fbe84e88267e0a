"""Selective recomputation (``models/recompute.py``): bitwise-identical training, and the big tensors really go."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoTokenizer

import splade_lightning.models.recompute as recompute
import splade_lightning.models.recompute_ops as recompute_ops
from splade_lightning.models import SpladeEncoder
from splade_lightning.models.dense import DenseEncoder

TEXTS = ["what is the capital of france", "a much longer text about the history of paris and the seine river",
         "short", "sparse retrieval with learned term weights and an inverted index"]


def batch(model_dir: str) -> dict[str, torch.Tensor]:
    enc = AutoTokenizer.from_pretrained(model_dir)(TEXTS, padding=True, return_tensors="pt")
    return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}


def train_step(encoder: torch.nn.Module, inputs: dict, seed: int,
               bf16: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One loss and its gradients, dropout on (its mask drawn from ``seed``); the forward under bf16 autocast if
    ``bf16``."""
    encoder.train()
    encoder.zero_grad(set_to_none=True)
    torch.manual_seed(seed)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        reps = encoder(inputs["input_ids"], inputs["attention_mask"]).float()
    loss = F.cross_entropy(reps @ reps.T, torch.arange(len(reps))) + 1e-3 * reps.abs().sum()
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in encoder.parameters() if p.grad is not None]


def two_encoders(cls, model_dir: str, **kw):
    encoders = []
    for flag in (False, True):
        torch.manual_seed(0)
        encoders.append(cls(model_dir, selective_recompute=flag, **kw))
    return encoders


@pytest.mark.parametrize("bf16", [False, True])
@pytest.mark.parametrize("efficient_head", [True, False])
def test_splade_training_is_bitwise_identical(tiny_bert_dir, efficient_head, bf16):
    plain, recomputed = two_encoders(SpladeEncoder, tiny_bert_dir, efficient_head=efficient_head)
    assert plain.mlm.config.attention_probs_dropout_prob > 0  # the math attention path, the one recomputed
    inputs = batch(tiny_bert_dir)
    for seed in (1, 2):
        loss_a, grads_a = train_step(plain, inputs, seed, bf16)
        loss_b, grads_b = train_step(recomputed, inputs, seed, bf16)
        assert torch.equal(loss_a, loss_b)
        assert len(grads_a) == len(grads_b) > 0
        assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))


def test_dense_training_is_bitwise_identical(tiny_encoder_dir):
    plain, recomputed = two_encoders(DenseEncoder, tiny_encoder_dir)
    inputs = batch(tiny_encoder_dir)
    loss_a, grads_a = train_step(plain, inputs, 3)
    loss_b, grads_b = train_step(recomputed, inputs, 3)
    assert torch.equal(loss_a, loss_b)
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))


def saved_tensors(encoder, inputs, monkeypatch) -> list[torch.Tensor]:
    """Every tensor the forward keeps for backward, except those a checkpoint holds (its inputs, kept anyway)."""
    kept = []
    monkeypatch.setattr(recompute, "_outer_hooks_in_force", lambda: False)  # the collector below is not a user's
    original = recompute._pack
    monkeypatch.setattr(recompute, "_pack", lambda t: (kept.append(t) if isinstance(r := original(t), recompute._Kept)
                                                       else None) or r)
    torch.manual_seed(0)
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t) or t, lambda t: t):
        encoder.train()(inputs["input_ids"], inputs["attention_mask"])
    return kept


def node_of(tensor: torch.Tensor) -> str:
    """The name of the backward node of the op whose output ``tensor`` is (a view of)."""
    base = tensor._base if tensor._is_view() else tensor
    return type(base.grad_fn).__name__


def test_attention_probabilities_and_gelu_outputs_are_not_kept(tiny_bert_dir, monkeypatch):
    plain, recomputed = two_encoders(SpladeEncoder, tiny_bert_dir)
    inputs = batch(tiny_bert_dir)
    B, L = inputs["input_ids"].shape
    heads, layers = plain.mlm.config.num_attention_heads, plain.mlm.config.num_hidden_layers
    intermediate = plain.mlm.config.intermediate_size

    def counts(tensors):
        probs = sum(1 for t in tensors if tuple(t.shape) == (B, heads, L, L))
        gelu = sum(1 for t in tensors if node_of(t) == "GeluBackward0" and t.shape[-1] == intermediate)
        return probs, gelu, sum({t.untyped_storage().data_ptr(): t.untyped_storage().nbytes() for t in tensors}
                                .values())

    probs_plain, gelu_plain, bytes_plain = counts(saved_tensors(plain, inputs, monkeypatch))
    probs_kept, gelu_kept, bytes_kept = counts(saved_tensors(recomputed, inputs, monkeypatch))
    assert probs_plain >= 2 * layers and gelu_plain >= layers  # what plain training keeps (the test can fail)
    assert probs_kept == 0 and gelu_kept == 0
    assert bytes_kept < bytes_plain - layers * (2 * B * heads * L * L + B * L * intermediate) * 4


def test_fused_attention_is_left_alone():
    q = torch.randn(2, 2, 8, 16, requires_grad=True)
    mask = torch.ones(2, 1, 8, 8, dtype=torch.bool)
    assert recompute_ops.runs_math_attention((q, q, q), {"attn_mask": mask, "dropout_p": 0.1})
    assert not recompute_ops.runs_math_attention((q, q, q), {"attn_mask": mask, "dropout_p": 0.0})  # CPU flash
    with recompute.selective_recompute():
        fused = F.scaled_dot_product_attention(q, q, q, attn_mask=mask, dropout_p=0.0)
        math = F.scaled_dot_product_attention(q, q, q, attn_mask=mask, dropout_p=0.1)
    assert "RecomputedAttention" not in type(fused.grad_fn).__name__
    assert "RecomputedAttention" in type(math.grad_fn).__name__


def test_off_without_a_graph_or_when_disabled():
    q = torch.randn(2, 2, 8, 16)
    with recompute.selective_recompute():  # no tensor requires grad, but grad mode is on: the mode is active
        out = F.scaled_dot_product_attention(q, q, q, dropout_p=0.0)
    assert out.shape == q.shape
    with torch.no_grad(), recompute.selective_recompute():
        assert not torch._C._is_torch_function_mode_enabled()
    with recompute.selective_recompute(enabled=False):
        assert not torch._C._is_torch_function_mode_enabled()


def test_gelu_input_modified_in_place_is_an_error():
    x = torch.randn(4, 8, requires_grad=True)
    with recompute.selective_recompute():
        pre = x * 2
        h = F.gelu(pre)
        out = (h @ torch.randn(8, 3, requires_grad=True)).sum()
    with torch.no_grad():
        pre.add_(1.0)
    with pytest.raises(RuntimeError, match="modified in place"):
        out.backward()


@pytest.mark.parametrize("efficient_head", [True, False])
def test_layer_norm_outputs_are_rebuilt_not_kept(tiny_bert_dir, monkeypatch, efficient_head):
    """Plain training keeps each layer norm's output (for the next linear layer) besides its input; under selective
    recomputation only the input is kept (the efficient head, which runs outside the block, keeps its own input:
    the MLM transform's layer-norm output), and the block's record of layer_norm calls is gone after it."""
    plain, recomputed = two_encoders(SpladeEncoder, tiny_bert_dir, efficient_head=efficient_head)
    inputs = batch(tiny_bert_dir)

    def layer_norm_outputs(tensors):
        bases = {id(t._base if t._is_view() else t): t._base if t._is_view() else t for t in tensors}
        return sum(1 for t in bases.values() if type(t.grad_fn).__name__ == "NativeLayerNormBackward0")

    assert layer_norm_outputs(saved_tensors(plain, inputs, monkeypatch)) >= 2 * plain.mlm.config.num_hidden_layers
    assert layer_norm_outputs(saved_tensors(recomputed, inputs, monkeypatch)) == int(efficient_head)
    assert recompute._RECIPES.get() is None


@pytest.mark.parametrize("affine", [True, False])
def test_layer_norm_rebuild_uses_the_calls_eps_and_affine_parameters(affine):
    """A layer norm with an unusual eps, with and without weight and bias, feeding a linear layer: the same
    gradients bit for bit (a rebuild with the default eps would differ)."""
    grads = []
    for enabled in (False, True):
        torch.manual_seed(0)
        norm = torch.nn.LayerNorm(16, eps=0.5, elementwise_affine=affine)
        if affine:
            torch.nn.init.normal_(norm.weight)
            torch.nn.init.normal_(norm.bias)
        linear = torch.nn.Linear(16, 4)
        x = (torch.randn(3, 5, 16) * 0.3).requires_grad_(True)
        with recompute.selective_recompute(enabled):
            out = linear(norm(x * 2))
        (out.square().sum()).backward()
        grads.append([x.grad, linear.weight.grad, *([norm.weight.grad, norm.bias.grad] if affine else [])])
    assert all(torch.equal(a, b) for a, b in zip(*grads))


def test_layer_norm_input_or_weight_modified_in_place_is_an_error():
    for target in ("input", "weight"):
        x = torch.randn(4, 8, requires_grad=True)
        weight = torch.ones(8, requires_grad=True)
        with recompute.selective_recompute():
            pre = x * 2
            out = (F.layer_norm(pre, (8,), weight, None, 1e-5) @ torch.randn(8, 3, requires_grad=True)).sum()
        with torch.no_grad():
            (pre if target == "input" else weight).add_(1.0)
        with pytest.raises(RuntimeError, match="modified in place"):
            out.backward()


class _Box:
    """What the outer hooks below store instead of a tensor: a copy, as ``save_on_cpu`` stores one."""

    def __init__(self, tensor: torch.Tensor):
        self.copy = tensor.detach().clone()


def test_outer_saved_tensor_hooks_stay_in_charge(tiny_bert_dir):
    """A user's hooks around training (``save_on_cpu``-like: they store a copy) receive every tensor the backbone
    keeps, GELU outputs included, while the attention cores are still recomputed; gradients stay bitwise equal."""
    plain, recomputed = two_encoders(SpladeEncoder, tiny_bert_dir)
    inputs = batch(tiny_bert_dir)
    B, L = inputs["input_ids"].shape
    layers, heads = plain.mlm.config.num_hidden_layers, plain.mlm.config.num_attention_heads
    results = []
    for encoder in (plain, recomputed):
        boxes = []

        def pack(tensor, boxes=boxes):
            boxes.append(_Box(tensor))
            return boxes[-1]

        def unpack(box):
            assert isinstance(box, _Box)
            return box.copy

        with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
            loss, grads = train_step(encoder, inputs, 5)
        gelu = sum(1 for b in boxes if b.copy.dim() and b.copy.shape[-1] == plain.mlm.config.intermediate_size)
        probs = sum(1 for b in boxes if tuple(b.copy.shape) == (B, heads, L, L))
        results.append((loss, grads, gelu, probs))
    (loss_a, grads_a, gelu_a, probs_a), (loss_b, grads_b, gelu_b, probs_b) = results
    assert torch.equal(loss_a, loss_b) and all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))
    assert gelu_b == gelu_a >= 2 * layers  # GELU inputs and outputs both reach the user's hooks
    assert probs_a >= 2 * layers and probs_b == 0  # the attention cores are recomputed, not kept


def test_ignored_with_gradient_checkpointing(tiny_bert_dir):
    encoder = SpladeEncoder(tiny_bert_dir, gradient_checkpointing=True, selective_recompute=True)
    assert encoder.selective_recompute is False


def test_cpu_dropout_keeps_a_bool_mask_not_its_float_noise(tiny_bert_dir, monkeypatch):
    """Plain CPU training keeps each hidden dropout's float noise (values 0 and 1 / (1 - p)); under selective
    recomputation the same dropouts keep a bool mask of the same shape instead, and nothing float of that kind."""
    plain, recomputed = two_encoders(SpladeEncoder, tiny_bert_dir)
    inputs = batch(tiny_bert_dir)
    B, L = inputs["input_ids"].shape
    config = plain.mlm.config
    scale = torch.tensor(1.0).div_(1 - config.hidden_dropout_prob)

    def noise_and_masks(tensors):
        hidden = [t for t in tensors if tuple(t.shape) == (B, L, config.hidden_size) and t.grad_fn is None]
        noise = sum(1 for t in hidden if t.is_floating_point() and bool(((t == 0) | (t == scale)).all()))
        return noise, sum(1 for t in hidden if t.dtype == torch.bool)

    layers = config.num_hidden_layers
    assert noise_and_masks(saved_tensors(plain, inputs, monkeypatch)) == (1 + 2 * layers, 0)  # embeddings + 2/layer
    assert noise_and_masks(saved_tensors(recomputed, inputs, monkeypatch)) == (0, 1 + 2 * layers)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_masked_dropout_is_torch_dropout_bit_for_bit(dtype, p):
    """The same output, the same input gradient and the same random numbers consumed as ``F.dropout``."""
    x0 = torch.randn(3, 17, 40).to(dtype)
    upstream = torch.randn(3, 17, 40).to(dtype)
    results = []
    for enabled in (False, True):
        x = x0.clone().requires_grad_(True)
        torch.manual_seed(11)
        with recompute.selective_recompute(enabled):
            y = F.dropout(x, p, training=True)
        after = torch.get_rng_state()
        assert ("MaskedDropout" in type(y.grad_fn).__name__) is enabled
        y.backward(upstream)
        results.append((y.detach(), x.grad, after))
    (y_a, g_a, rng_a), (y_b, g_b, rng_b) = results
    assert torch.equal(y_a, y_b) and torch.equal(g_a, g_b) and torch.equal(rng_a, rng_b)
    assert 0 < int((y_b == 0).sum()) < y_b.numel()  # some dropped, some kept: the test can fail


@pytest.mark.parametrize("call", [
    lambda x: F.dropout(x, 0.1, training=False),
    lambda x: F.dropout(x, 0.0, training=True),
    lambda x: F.dropout(x, 1.0, training=True),
    lambda x: F.dropout(x.clone(), 0.1, training=True, inplace=True),
    lambda x: F.dropout(x.detach(), 0.1, training=True),
])
def test_other_dropout_calls_are_left_to_torch(call):
    """Evaluation, p of 0 or 1, in-place dropout and inputs without a graph go to PyTorch's own dropout."""
    x = torch.randn(4, 8, requires_grad=True)
    torch.manual_seed(3)
    expected = call(x)
    torch.manual_seed(3)
    with recompute.selective_recompute():
        got = call(x)
    assert torch.equal(got, expected)
    assert got.grad_fn is None or "MaskedDropout" not in type(got.grad_fn).__name__


def test_projections_and_ffn_inputs_are_rebuilt_not_kept(tiny_bert_dir, monkeypatch):
    """Plain training keeps the FFN's first linear output (the GELU's input); under selective recomputation no linear
    output is kept, neither those nor the Q, K, V projections the recomputed attention needs: each is rebuilt from
    the layer's input."""
    plain, recomputed = two_encoders(SpladeEncoder, tiny_bert_dir)
    inputs = batch(tiny_bert_dir)

    def linear_outputs(tensors):
        return len({id(t._base if t._is_view() else t) for t in tensors if node_of(t) == "AddmmBackward0"})

    layers = plain.mlm.config.num_hidden_layers
    assert linear_outputs(saved_tensors(plain, inputs, monkeypatch)) >= layers
    assert linear_outputs(saved_tensors(recomputed, inputs, monkeypatch)) == 0


def _attention_cases():
    q = torch.randn(2, 3, 7, 8)
    additive = torch.randn(2, 1, 7, 7)
    return {
        "dropout": (q, q.clone(), q.clone() * 2, dict(dropout_p=0.3)),
        "causal": (q, q * 0.5, q.clone(), dict(is_causal=True, scale=0.2)),
        "mask_with_grad": (q, q * 0.5, q.clone(), dict(attn_mask=additive, dropout_p=0.2)),
        "shared_qkv": (q, None, None, dict(attn_mask=torch.rand(2, 1, 7, 7) > 0.3, dropout_p=0.1)),
    }


@pytest.mark.parametrize("bf16", [False, True])
@pytest.mark.parametrize("case", list(_attention_cases()))
def test_recomputed_attention_is_sdpa_bit_for_bit(case, bf16):
    """The same output, the same gradients (inputs and a mask that requires grad) and the same random numbers
    consumed as ``scaled_dot_product_attention``, also under bf16 autocast and with one tensor as Q, K and V."""
    q0, k0, v0, options = _attention_cases()[case]
    results = []
    for recomputed in (False, True):
        leaves = [t.clone().requires_grad_(True) for t in (q0, k0, v0) if t is not None]
        mask = options.get("attn_mask")
        kwargs = dict(options)
        if mask is not None and mask.is_floating_point():
            kwargs["attn_mask"] = mask = mask.clone().requires_grad_(True)
        args = leaves if len(leaves) == 3 else leaves * 3
        torch.manual_seed(7)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            if recomputed:
                out = recompute_ops.RecomputedAttention.apply(*recompute_ops.attention_args(tuple(args), kwargs))
            else:
                out = F.scaled_dot_product_attention(*args, **kwargs)
        torch.rand(3)  # a draw between forward and backward: the recomputation must not rewind the generator
        out.float().square().sum().backward()
        after = torch.get_rng_state()
        grads = [t.grad for t in leaves] + ([mask.grad] if mask is not None and mask.requires_grad else [])
        results.append((out.detach(), grads, after))
    (out_a, grads_a, rng_a), (out_b, grads_b, rng_b) = results
    assert torch.equal(out_a, out_b) and torch.equal(rng_a, rng_b)
    assert len(grads_a) == len(grads_b) and all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))


def test_a_rebuilt_output_is_built_once_and_shared(monkeypatch):
    """A layer norm feeding three linear layers whose outputs are all kept by a product: the layer-norm output is
    rebuilt once in backward (for the three projections and the three weight gradients), and the gradients are
    bitwise those of plain training."""
    builds = []
    real = recompute._layer_norm
    monkeypatch.setattr(recompute, "_layer_norm", lambda *a, **kw: builds.append(1) or real(*a, **kw))
    grads = []
    for enabled in (False, True):
        torch.manual_seed(0)
        norm, projections = torch.nn.LayerNorm(16), [torch.nn.Linear(16, 16) for _ in range(3)]
        x = torch.randn(4, 5, 16, requires_grad=True)
        with recompute.selective_recompute(enabled):
            h = norm(x * 3)
            q, k, v = (p(h) for p in projections)
            out = (q * k * v).sum()
        out.backward()
        grads.append([x.grad, norm.weight.grad, *(p.weight.grad for p in projections)])
    assert len(builds) == 1
    assert all(torch.equal(a, b) for a, b in zip(*grads))


def test_an_output_changed_in_place_after_its_op_is_kept():
    """A linear output scaled in place before the GELU keeps it: it is kept as it is, not rebuilt (a rebuild would
    miss the scaling, and the gradients below would differ)."""
    grads = []
    for enabled in (False, True):
        torch.manual_seed(0)
        linear = torch.nn.Linear(8, 8)
        x = torch.randn(3, 8, requires_grad=True)
        with recompute.selective_recompute(enabled):
            h = linear(x * 1)
            h.mul_(3)
            out = F.gelu(h).square().sum()
        out.backward()
        grads.append([x.grad, linear.weight.grad])
    assert all(torch.equal(a, b) for a, b in zip(*grads))


def test_linear_input_modified_in_place_is_an_error():
    x = torch.randn(4, 8, requires_grad=True)
    linear = torch.nn.Linear(8, 8)
    with recompute.selective_recompute():
        pre = x * 2
        out = F.gelu(linear(pre)).sum()
    with torch.no_grad():
        pre.add_(1.0)
    with pytest.raises(RuntimeError, match="an input of a GELU, layer norm or linear layer whose output is rebuilt "
                                           "was modified in place"):  # the rebuild's own check, before GELU's
        out.backward()


def test_a_frozen_linear_layer_is_not_recorded():
    """A linear layer whose weight is not trained does not keep its input, so its output is kept, not rebuilt (a
    record would hold the input until the block ends)."""
    x = torch.randn(4, 8, requires_grad=True)
    frozen, trained = torch.nn.Linear(8, 8).requires_grad_(False), torch.nn.Linear(8, 8)
    with recompute.selective_recompute():
        a, b = frozen(x * 2), trained(x * 2)
        recorded = {entry[0]() for entry in recompute._RECIPES.get().values()}
    assert b in recorded and a not in recorded


def test_an_output_its_own_backward_keeps_is_freed_without_a_backward():
    """``tanh`` keeps its output. Packed as the tensor itself it would form a reference cycle with its backward node
    that outlives a forward whose backward never runs (as the pooler of ``AutoModel`` does in every step)."""
    import gc
    import weakref

    for enabled in (False, True):
        x = torch.randn(4, 8, requires_grad=True)
        with recompute.selective_recompute(enabled):
            y = torch.tanh(F.linear(F.layer_norm(x * 2, (8,)), torch.randn(8, 8, requires_grad=True)))
        ref = weakref.ref(y)
        del y
        gc.collect()
        assert ref() is None


def _sigmoid_kept(x):
    s = torch.sigmoid(x * 1)  # keeps its output
    return s, s.sum()


def _layer_norm_rebuilt(x):
    h = F.layer_norm(x * 1, (8,))  # rebuilt under recomputation
    return h, F.linear(h, torch.ones(3, 8, requires_grad=True)).sum()


@pytest.mark.parametrize("build", [_sigmoid_kept, _layer_norm_rebuilt])
def test_a_saved_tensor_changed_in_place_after_the_save_is_an_error(build):
    """Saved-tensor hooks turn autograd's in-place check off; the hooks make it themselves, for kept and rebuilt
    tensors alike, so both raise as plain autograd does (instead of computing wrong gradients)."""
    for enabled in (False, True):
        x = torch.randn(4, 8, requires_grad=True)
        with recompute.selective_recompute(enabled):
            saved, out = build(x)
        with torch.no_grad():
            saved.mul_(2)
        with pytest.raises(RuntimeError, match="modified by an inplace operation"):
            out.backward()


def test_double_backward_through_the_recomputed_attention():
    """A gradient penalty through attention on the math path (dropout on): the same first-order gradient bit for bit
    as PyTorch's own attention, and the same second-order gradients to float rounding (the recomputed core keeps its
    graph under ``create_graph``; its terms reach the inputs in another order, so not bitwise)."""
    results = []
    for enabled in (False, True):
        torch.manual_seed(0)
        q, k, v = (torch.randn(2, 2, 6, 8, requires_grad=True) for _ in range(3))
        torch.manual_seed(1)
        with recompute.selective_recompute(enabled):
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=0.3)
        assert ("RecomputedAttention" in type(out.grad_fn).__name__) is enabled
        (grad_q,) = torch.autograd.grad(out.square().sum(), q, create_graph=True)
        grad_q.square().sum().backward()
        results.append((grad_q.detach(), [q.grad, k.grad, v.grad]))
    (first_a, second_a), (first_b, second_b) = results
    assert torch.equal(first_a, first_b)
    assert all(b is not None and torch.allclose(a, b, rtol=1e-5, atol=1e-5 * float(a.abs().max()))
               for a, b in zip(second_a, second_b))


def test_a_checkpoint_inside_the_block_is_left_to_torch():
    """A non-reentrant ``torch.utils.checkpoint`` inside the block replays its function in backward without the
    mode; the calls inside it are left to PyTorch, so the replay matches (no ``CheckpointError``), bit for bit."""
    from torch.utils.checkpoint import checkpoint

    def block(x, norm, linear):
        q = linear(norm(x)).view(2, 5, 2, 4).transpose(1, 2)
        return F.dropout(F.scaled_dot_product_attention(q, q, q, dropout_p=0.2), 0.1, training=True)

    grads = []
    for enabled in (False, True):
        torch.manual_seed(0)
        norm, linear = torch.nn.LayerNorm(8), torch.nn.Linear(8, 8)
        x = torch.randn(2, 5, 8, requires_grad=True)
        torch.manual_seed(1)
        with recompute.selective_recompute(enabled):
            out = checkpoint(block, x * 1, norm, linear, use_reentrant=False)
        out.square().sum().backward()
        grads.append([x.grad, linear.weight.grad, norm.weight.grad])
    assert all(torch.equal(a, b) for a, b in zip(*grads))


def test_a_backward_inside_autocast_rebuilds_as_the_forward_ran():
    """A float32 forward whose backward runs inside a bf16 autocast region: the rebuilds run with autocast off, as
    the forward did (the same float32 gradients as plain training)."""
    grads = []
    for enabled in (False, True):
        torch.manual_seed(0)
        norm, linear = torch.nn.LayerNorm(8), torch.nn.Linear(8, 8)
        x = torch.randn(3, 8, requires_grad=True)
        with recompute.selective_recompute(enabled):
            out = F.gelu(linear(norm(x * 2))).square().sum()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out.backward()
        grads.append([x.grad, linear.weight.grad, norm.weight.grad])
    assert all(torch.equal(a, b) for a, b in zip(*grads))
