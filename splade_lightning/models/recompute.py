"""Selective activation recomputation for a transformer backbone: exact, bitwise-identical gradients.

Training keeps every tensor an op saves for its backward until that backward runs. In a BERT-style layer several
are cheap to rebuild exactly (Korthikanti et al., "Reducing Activation Recomputation in Large Transformer Models",
arXiv:2205.05198, section 4.2, recompute the attention core for the same reason):

- **the attention core** when PyTorch runs it on its unfused math path (on CPU: whenever attention dropout is on,
  as in training from a BERT checkpoint), which keeps the softmax probabilities, the dropout mask and the dropped
  probabilities, (B, heads, L, L) each, per layer. Under :func:`selective_recompute` each such
  ``torch.nn.functional.scaled_dot_product_attention`` call runs inside :func:`torch.utils.checkpoint.checkpoint`
  (non-reentrant, RNG state preserved), so only its inputs (the Q, K, V projections) stay alive and the core is
  recomputed in backward with the same dropout mask. Fused kernels keep little and are left alone;
- **the GELU output** (B x L x intermediate floats per layer), kept by the next linear layer for its weight
  gradient although the GELU's own input is kept too. The saved-tensor hooks below store a GELU output as a
  reference to its input and recompute ``gelu(input)`` when the backward needs it;
- **the layer-norm output** (B x L x hidden, twice per BERT layer), kept by the next linear layer (the Q, K, V
  projections; the FFN's first layer) although the layer norm keeps its input, weight and bias. It is packed the
  same way and rebuilt with ``layer_norm`` (whose ``eps`` the block records, as the backward does not keep it);
- **the dropout noise** on CPU. There ``torch.nn.functional.dropout`` draws a float noise tensor (0 or 1 / (1 - p)
  per element), multiplies, and keeps that noise for backward: 4 bytes per element, (B, L, hidden) twice per BERT
  layer (attention output, FFN output) and once for the embeddings. Under :func:`selective_recompute` the same
  noise is drawn by the same ops (the same random numbers), but only a bool mask (1 byte) is kept and the noise is
  rebuilt from it in backward. (CUDA's fused dropout keeps a bool mask already and is left alone.)

All recomputations run the same kernels on the same inputs, so losses and gradients are bitwise identical to plain
training (tested, also under bf16 autocast). The cost, per layer in backward: one more attention core, GELU and two
layer norms, and the noise rebuilt from its mask.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend
from torch.overrides import TorchFunctionMode
from torch.utils.checkpoint import checkpoint

# id(output) -> (weak reference to the output, the call's arguments) of each layer_norm under selective_recompute.
_LAYER_NORM_CALLS: ContextVar[dict | None] = ContextVar("splade_lightning_layer_norm_calls", default=None)


def _runs_math_attention(args: tuple, kwargs: dict) -> bool:
    """Whether PyTorch dispatches this ``scaled_dot_product_attention`` call to its unfused math path.

    Only that path keeps the (B, heads, L, L) probabilities; the fused kernels (CPU flash attention without dropout,
    CUDA flash / memory-efficient attention) keep just the output and a log-sum-exp, so recomputing them would cost
    time and save nothing. ``torch._fused_sdp_choice`` is the dispatcher's own choice (PyTorch >= 2.0).
    """
    try:
        return torch._fused_sdp_choice(*args, **kwargs) == SDPBackend.MATH.value
    except (AttributeError, RuntimeError, TypeError):  # no such function, or arguments it cannot take
        return True


class _MaskedDropout(torch.autograd.Function):
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


def _bound(args: tuple, kwargs: dict, **defaults) -> dict:
    """A torch function call's arguments by name: ``defaults`` gives the parameters in order, with their defaults."""
    return {**defaults, **dict(zip(defaults, args)), **kwargs}


def _masked_dropout_args(args: tuple, kwargs: dict) -> tuple[torch.Tensor, float] | None:
    """(input, p) of a ``dropout(input, p, training, inplace)`` call that :class:`_MaskedDropout` reproduces exactly
    (a plain CPU floating-point tensor that requires grad, training, 0 < p < 1, not in place), else None."""
    bound = _bound(args, kwargs, input=None, p=0.5, training=True, inplace=False)
    x, p = bound["input"], bound["p"]
    if type(x) is not torch.Tensor or x.device.type != "cpu" or not x.is_floating_point() or not x.requires_grad:
        return None
    if not bound["training"] or bound["inplace"] or not 0.0 < p < 1.0 or x.numel() == 0:
        return None
    return x, float(p)


class _SelectiveOps(TorchFunctionMode):
    """Runs every ``scaled_dot_product_attention`` call that records a graph on the math path under a
    non-reentrant checkpoint (RNG state preserved: the recomputation draws the same dropout mask), and every CPU
    ``dropout`` that records a graph through :class:`_MaskedDropout`; records each ``layer_norm`` call (its output
    can then be rebuilt by :func:`_pack`: the backward keeps its input, weight and bias, but not ``eps``)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention and torch.is_grad_enabled() and _runs_math_attention(args, kwargs):
            return checkpoint(func, *args, use_reentrant=False, preserve_rng_state=True, **kwargs)
        if func is F.dropout and torch.is_grad_enabled() and (masked := _masked_dropout_args(args, kwargs)):
            return _MaskedDropout.apply(*masked)
        output = func(*args, **kwargs)
        if func is F.layer_norm and torch.is_grad_enabled() and (calls := _LAYER_NORM_CALLS.get()) is not None:
            call = _bound(args, kwargs, input=None, normalized_shape=None, weight=None, bias=None, eps=1e-5)
            calls[id(output)] = (weakref.ref(output), call)
        return output


class _Rebuilt:
    """What a saved tensor that is cheap to rebuild is packed into: the op's inputs, how to rerun it, and the view."""

    __slots__ = ("rebuild", "sources", "versions", "size", "stride", "offset")

    def __init__(self, rebuild: Callable[..., torch.Tensor], sources: tuple, view: torch.Tensor):
        self.rebuild, self.sources = rebuild, sources
        self.versions = tuple(None if t is None else t._version for t in sources)
        self.size, self.stride, self.offset = view.size(), view.stride(), view.storage_offset()


def _whole_output(tensor: torch.Tensor) -> torch.Tensor | None:
    """``tensor``, or the tensor it views, when that is an op's whole contiguous output (``Linear`` saves its 3-D
    input as a 2-D view of it), else None."""
    output = tensor._base if tensor._is_view() else tensor
    if output._is_view() or not output.is_contiguous() or output.storage_offset() != 0:
        return None
    return output


def _gelu_node(tensor: torch.Tensor):
    """The GELU node whose contiguous output is ``tensor`` or ``tensor``'s base, else None."""
    output = _whole_output(tensor)
    node = None if output is None else output.grad_fn
    return node if node is not None and type(node).__name__ == "GeluBackward0" else None


def _layer_norm_call(tensor: torch.Tensor) -> dict | None:
    """The recorded ``layer_norm`` call (under :func:`selective_recompute`) whose output is ``tensor`` or its base."""
    output, calls = _whole_output(tensor), _LAYER_NORM_CALLS.get()
    if output is None or calls is None or id(output) not in calls:
        return None
    out_ref, call = calls[id(output)]
    return call if out_ref() is output and type(output.grad_fn).__name__ == "NativeLayerNormBackward0" else None


def _pack(tensor: torch.Tensor):
    """Saved-tensor pack hook: a GELU's or a layer norm's output (or a view of it) becomes a :class:`_Rebuilt`;
    anything else is kept as is."""
    node = _gelu_node(tensor)
    if node is not None:
        source = node._saved_self  # the GELU's input, which its own backward keeps alive anyway
        if source.is_contiguous() and source.dtype == tensor.dtype and source.numel() >= tensor.numel():
            return _Rebuilt(functools.partial(F.gelu, approximate=node._saved_approximate), (source,), tensor)
        return tensor
    call = _layer_norm_call(tensor)
    if call is not None and call["input"].dtype == tensor.dtype:  # its input, weight and bias: kept by its backward
        rebuild = functools.partial(_layer_norm, normalized_shape=call["normalized_shape"], eps=call["eps"])
        return _Rebuilt(rebuild, (call["input"], call["weight"], call["bias"]), tensor)
    return tensor


def _layer_norm(input, weight, bias, *, normalized_shape, eps) -> torch.Tensor:
    return F.layer_norm(input, normalized_shape, weight, bias, eps)


def _unpack(packed):
    """Saved-tensor unpack hook: rebuild a GELU's or a layer norm's output from its inputs (the same kernel on the
    same inputs, so the same bits).

    Raises:
        RuntimeError: an input of the op was modified in place after the forward (autograd would refuse it too).
    """
    if not isinstance(packed, _Rebuilt):
        return packed
    if any(t is not None and t._version != v for t, v in zip(packed.sources, packed.versions)):
        raise RuntimeError("selective_recompute: an input of a GELU or layer norm was modified in place after the "
                           "forward; its output cannot be rebuilt (turn selective recomputation off for this model)")
    output = packed.rebuild(*packed.sources)
    return output.as_strided(packed.size, packed.stride, packed.offset)


def _outer_hooks_in_force() -> bool:
    """Whether saved-tensor hooks are already in force (a user's ``torch.autograd.graph.save_on_cpu``, an outer
    ``torch.utils.checkpoint``). PyTorch's hooks do not nest: inner ones replace the outer ones entirely."""
    try:
        return torch._C._autograd._top_saved_tensors_default_hooks(False) is not None
    except (AttributeError, RuntimeError, TypeError):  # a PyTorch without it: assume none
        return False


@contextmanager
def selective_recompute(enabled: bool = True):
    """Within the block, attention cores, GELU and layer-norm outputs and CPU dropout noise are recomputed in
    backward instead of kept.

    Wrap the backbone's forward only (not a custom autograd head: its saved tensors pass through the same hooks
    but are left unchanged). A no-op when ``enabled`` is false or when no graph is being recorded. Saved-tensor
    hooks already in force (a user's ``save_on_cpu``, an outer checkpoint) stay in charge of everything the block
    keeps, GELU and layer-norm outputs included (rebuilding those would replace the user's hooks); only the
    attention cores and the dropout noise are then recomputed.
    """
    if not enabled or not torch.is_grad_enabled():
        yield
        return
    if _outer_hooks_in_force():
        with _SelectiveOps():
            yield
        return
    calls = _LAYER_NORM_CALLS.set({})  # the block's layer_norm calls; dropped (with their inputs) when it ends
    try:
        with torch.autograd.graph.saved_tensors_hooks(_pack, _unpack), _SelectiveOps():
            yield
    finally:
        _LAYER_NORM_CALLS.reset(calls)
