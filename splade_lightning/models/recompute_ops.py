"""The two ops :func:`~splade_lightning.models.recompute.selective_recompute` swaps in, each keeping less than
PyTorch's own for the same bits: an attention core recomputed in backward, and CPU dropout keeping a bool mask.

Both are :class:`torch.autograd.Function` s, so what they keep passes through the saved-tensor hooks in force: under
``selective_recompute`` the attention core's Q, K and V are then themselves rebuilt from the layer's input
(``models/recompute.py``).
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend
from torch.utils.checkpoint import get_device_states, set_device_states


def _without_hooks():
    """Identity saved-tensor hooks: they replace any in force (a user's ``save_on_cpu`` need not store the
    recomputed core, used at once and freed)."""
    return torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t)


def bound(args: tuple, kwargs: dict, **defaults) -> dict:
    """A torch function call's arguments by name: ``defaults`` gives the parameters in order, with their defaults."""
    return {**defaults, **dict(zip(defaults, args)), **kwargs}


def autocast_state(device_type: str) -> dict | None:
    """The autocast settings in force for ops on ``device_type`` (None: the device has no autocast), to rerun an op
    under them."""
    if not torch.amp.is_autocast_available(device_type):
        return None
    if not torch.is_autocast_enabled(device_type):
        return {"device_type": device_type, "enabled": False}  # off, even where backward runs inside an autocast
    return {"device_type": device_type, "dtype": torch.get_autocast_dtype(device_type), "enabled": True}


def under_autocast(state: dict | None):
    """A context that restores :func:`autocast_state`'s settings."""
    return nullcontext() if state is None else torch.autocast(**state)


def runs_math_attention(args: tuple, kwargs: dict) -> bool:
    """Whether PyTorch dispatches this ``scaled_dot_product_attention`` call to its unfused math path.

    Only that path keeps the (B, heads, L, L) probabilities; the fused kernels (CPU flash attention without dropout,
    CUDA flash / memory-efficient attention) keep just the output and a log-sum-exp, so recomputing them would cost
    time and save nothing. ``torch._fused_sdp_choice`` is the dispatcher's own choice (PyTorch >= 2.0).
    """
    try:
        return torch._fused_sdp_choice(*args, **kwargs) == SDPBackend.MATH.value
    except (AttributeError, RuntimeError, TypeError):  # no such function, or arguments it cannot take
        return True


class RecomputedAttention(torch.autograd.Function):
    """``scaled_dot_product_attention`` whose core (softmax probabilities, dropout mask) is recomputed in backward.

    What :func:`torch.utils.checkpoint.checkpoint` does for one call, except that the inputs are kept through
    ``ctx.save_for_backward``, hence through the saved-tensor hooks in force, where a checkpoint holds them itself.
    The CPU RNG state (and the device's, for device tensors) is restored for the recomputation, so it draws the same
    dropout mask, and the forward's autocast settings too: the same kernels on the same inputs, the same bits.
    """

    @staticmethod
    def forward(ctx, query, key, value, attn_mask, options: dict):
        """query, key, value: (B, heads, L, head_dim); attn_mask: None, bool or additive; options: the call's other
        keyword arguments (``dropout_p``, ``is_causal``, ``scale``, ``enable_gqa``)."""
        ctx.options, ctx.device_type = options, query.device.type
        ctx.cpu_rng = torch.get_rng_state()
        ctx.devices, ctx.device_rng = get_device_states(query, key, value) if ctx.device_type != "cpu" else ([], [])
        ctx.autocast = autocast_state(ctx.device_type)
        tensors = (query, key, value, attn_mask)
        ctx.first = tuple(next(j for j, u in enumerate(tensors) if u is t) for t in tensors)  # one tensor as Q and K..
        ctx.save_for_backward(*tensors)
        return F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask, **options)

    @staticmethod
    def backward(ctx, grad):
        saved, first = ctx.saved_tensors, ctx.first
        # A tensor passed as more than one argument is one leaf of the recomputation, as it was one input of the
        # forward's graph: its gradient terms then add up in the same order, hence to the same bits.
        needs = [t is not None and i == first[i] and any(ctx.needs_input_grad[j] for j in range(4) if first[j] == i)
                 for i, t in enumerate(saved)]
        create_graph = torch.is_grad_enabled()  # a double backward: the gradients must keep their graph
        leaves = [None if t is None or i != first[i] else t if create_graph else t.detach().requires_grad_(need)
                  for i, (t, need) in enumerate(zip(saved, needs))]
        inputs = [leaves[j] for j in first]
        with torch.random.fork_rng(devices=ctx.devices, device_type=ctx.device_type), torch.enable_grad(), \
                under_autocast(ctx.autocast), _without_hooks():  # what the recomputation keeps is freed right below
            torch.set_rng_state(ctx.cpu_rng)
            if ctx.devices:
                set_device_states(ctx.devices, ctx.device_rng, device_type=ctx.device_type)
            out = F.scaled_dot_product_attention(*inputs[:3], attn_mask=inputs[3], **ctx.options)
        grads = iter(torch.autograd.grad(out, [t for t, need in zip(leaves, needs) if need], grad,
                                         create_graph=create_graph))
        return (*(next(grads) if need else None for need in needs), None)


class MaskedDropout(torch.autograd.Function):
    """``x * noise`` with the noise of PyTorch's CPU dropout (``at::native::dropout``: ``empty_like(x)
    .bernoulli_(1 - p).div_(1 - p)``, then a product), keeping a bool mask instead of the noise."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        noise = torch.empty_like(x).bernoulli_(1 - p)
        noise.div_(1 - p)
        ctx.p, ctx.dtype = p, noise.dtype
        ctx.save_for_backward(noise.bool())
        return x * noise

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (mask,) = ctx.saved_tensors
        noise = mask.to(ctx.dtype).div_(1 - ctx.p)  # the forward's noise, bit for bit (the same two ops)
        return grad * noise, None


def masked_dropout_args(args: tuple, kwargs: dict) -> tuple[torch.Tensor, float] | None:
    """(input, p) of a ``dropout(input, p, training, inplace)`` call that :class:`MaskedDropout` reproduces exactly
    (a plain CPU floating-point tensor that requires grad, training, 0 < p < 1, not in place), else None."""
    call = bound(args, kwargs, input=None, p=0.5, training=True, inplace=False)
    x, p = call["input"], call["p"]
    if type(x) is not torch.Tensor or x.device.type != "cpu" or not x.is_floating_point() or not x.requires_grad:
        return None
    if not call["training"] or call["inplace"] or not 0.0 < p < 1.0 or x.numel() == 0:
        return None
    return x, float(p)


def attention_args(args: tuple, kwargs: dict) -> tuple:
    """``scaled_dot_product_attention``'s arguments as :class:`RecomputedAttention` takes them."""
    call = bound(args, kwargs, query=None, key=None, value=None, attn_mask=None, dropout_p=0.0, is_causal=False,
                 scale=None, enable_gqa=False)
    options = {k: v for k, v in call.items() if k not in ("query", "key", "value", "attn_mask")}
    return call["query"], call["key"], call["value"], call["attn_mask"], options
