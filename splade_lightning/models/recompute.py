"""Selective activation recomputation for a transformer backbone: exact, bitwise-identical gradients.

Training keeps every tensor an op saves for its backward until that backward runs. In a BERT-style layer most of
them are cheap to rebuild exactly from what is kept anyway (Korthikanti et al., "Reducing Activation Recomputation
in Large Transformer Models", arXiv:2205.05198, section 4.2, recompute the attention core for the same reason):

- **the attention core** when PyTorch runs it on its unfused math path (on CPU: whenever attention dropout is on,
  as in training from a BERT checkpoint), which keeps the softmax probabilities, the dropout mask and the dropped
  probabilities, (B, heads, L, L) each, per layer. Under :func:`selective_recompute` each such
  ``scaled_dot_product_attention`` call runs as :class:`~splade_lightning.models.recompute_ops.RecomputedAttention`
  (RNG state preserved), which keeps only its inputs and recomputes the core in backward with the same dropout mask.
  Fused kernels keep little and are left alone;
- **op outputs rebuilt from their inputs.** The block records each ``layer_norm``, ``gelu`` and (on CPU) ``linear``
  call (:class:`_Recipe`), and the saved-tensor hooks store an output that a later op keeps as a reference to that
  record, rebuilt when the backward needs it. That covers the layer-norm outputs (B x L x hidden, twice per BERT
  layer, kept by the next linear layers although the layer norm keeps its input, weight and bias), the GELU output
  (B x L x intermediate, kept by the FFN's second linear layer), the FFN's first linear output (B x L x
  intermediate, kept by the GELU) and the Q, K, V projections (3 x B x L x hidden, kept by the attention): about
  9 of the 10.5 hidden-widths per token a BERT layer keeps in training. A record's inputs are either kept anyway
  (a layer norm's or a linear layer's input, the weights) or are themselves rebuilt (a linear layer's input that is
  a layer-norm output), and a rebuilt output is shared by all its users until the last of them has run;
- **the dropout noise** on CPU. There ``torch.nn.functional.dropout`` draws a float noise tensor (0 or 1 / (1 - p)
  per element), multiplies, and keeps that noise for backward: 4 bytes per element, (B, L, hidden) twice per BERT
  layer (attention output, FFN output) and once for the embeddings. Under :func:`selective_recompute` the same
  noise is drawn by the same ops (the same random numbers), but only a bool mask (1 byte) is kept and the noise is
  rebuilt from it in backward (``MaskedDropout``). (CUDA's fused dropout keeps a bool mask already and is left
  alone.)

All recomputations run the same kernels on the same inputs under the same autocast settings, so losses and
gradients are bitwise identical to plain training (tested, also under bf16 autocast). The cost, per layer in
backward: one more attention core, the Q, K, V and FFN-input products (7 hidden² multiply-adds per token against
the step's ~36), GELU and layer norms, and the noise rebuilt from its mask.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from splade_lightning.models.recompute_ops import (
    MaskedDropout,
    RecomputedAttention,
    attention_args,
    autocast_state,
    bound,
    masked_dropout_args,
    runs_math_attention,
    under_autocast,
)

# id(output) -> (weak reference to the output, its version, its _Recipe) for each recorded call of the block; the
# output is the tensor the call returned or, when that is a view covering all of it, the tensor it views.
_RECIPES: ContextVar[dict | None] = ContextVar("splade_lightning_recipes", default=None)


class _Recipe:
    """How to rebuild one op's output in backward: the op, its inputs (a tensor kept anyway, or a :class:`_Rebuilt`
    reference to another rebuilt output), the inputs' versions and the forward's autocast settings. Holds the
    rebuilt output once built, for every saved view of it and every recipe built on it, until the last goes."""

    __slots__ = ("op", "sources", "versions", "autocast", "dtype", "output")

    def __init__(self, op: Callable[..., torch.Tensor], sources: tuple, output: torch.Tensor):
        self.op, self.sources, self.autocast = op, sources, autocast_state(output.device.type)
        self.versions = tuple(t._version if isinstance(t, torch.Tensor) else None for t in sources)
        self.dtype, self.output = output.dtype, None

    def build(self) -> torch.Tensor:
        """The op's output, rebuilt from its inputs (once).

        Raises:
            RuntimeError: an input was modified in place after the forward (autograd would refuse it too).
        """
        if self.output is None:
            for t, v in zip(self.sources, self.versions):
                if isinstance(t, torch.Tensor):
                    _check_version(t, v, "an input of a GELU, layer norm or linear layer whose output is rebuilt")
            inputs = [s.materialize() if isinstance(s, _Rebuilt) else s for s in self.sources]
            with under_autocast(self.autocast):
                self.output = self.op(*inputs)
            if self.output.dtype != self.dtype:
                raise RuntimeError(f"selective_recompute: a rebuilt output is {self.output.dtype}, the forward's was "
                                   f"{self.dtype}")
        return self.output


class _Rebuilt:
    """What a saved tensor that is rebuilt is packed into: the recipe of the output it is (a view of), and a weak
    reference to that output with its version (changed in place after the save: an error, as autograd's own)."""

    __slots__ = ("recipe", "size", "stride", "offset", "output", "version")

    def __init__(self, recipe: _Recipe, view: torch.Tensor, output: weakref.ref):
        self.recipe, self.size, self.stride, self.offset = recipe, view.size(), view.stride(), view.storage_offset()
        self.output, self.version = output, view._version

    def materialize(self) -> torch.Tensor:
        _check_version(self.output(), self.version)
        return self.recipe.build().as_strided(self.size, self.stride, self.offset)


class _Kept:
    """What any other saved tensor is packed into: a detached alias and its version. (Returning the tensor itself
    would tie an op's output to its own backward node in a cycle the garbage collector cannot see, kept alive when
    that backward never runs; and hooks turn autograd's in-place check off, so it is made here.)"""

    __slots__ = ("tensor", "version")

    def __init__(self, tensor: torch.Tensor):
        self.tensor, self.version = tensor.detach(), tensor._version

    def materialize(self) -> torch.Tensor:
        _check_version(self.tensor, self.version)
        return self.tensor


def _check_version(tensor: torch.Tensor | None, version: int, what: str = "a tensor saved for backward") -> None:
    """Raises RuntimeError (autograd's in-place message, which the hooks turn off) if ``tensor`` changed since."""
    if tensor is not None and tensor._version != version:
        raise RuntimeError(f"selective_recompute: {what} was modified in place after it was saved (version "
                           f"{tensor._version}, saved at {version}); one of the variables needed for gradient "
                           "computation has been modified by an inplace operation")


def _whole_output(tensor: torch.Tensor) -> torch.Tensor | None:
    """``tensor``, or the tensor it views, when that is an op's whole contiguous output (``Linear`` saves its 3-D
    input as a 2-D view of it, the attention gets transposed views of the projections), else None."""
    output = tensor._base if tensor._is_view() else tensor
    if output._is_view() or not output.is_contiguous() or output.storage_offset() != 0:
        return None
    return output


def _rebuilt(tensor: torch.Tensor) -> _Rebuilt | None:
    """A reference to the recorded op output that ``tensor`` is (a view of), unchanged since, else None."""
    recipes = _RECIPES.get()
    output = None if recipes is None or type(tensor) is not torch.Tensor else _whole_output(tensor)
    entry = None if output is None else recipes.get(id(output))
    if entry is None or entry[0]() is not output or output._version != entry[1]:
        return None
    return _Rebuilt(entry[2], tensor, entry[0])


def _layer_norm(input, weight, bias, *, normalized_shape, eps) -> torch.Tensor:
    return F.layer_norm(input, normalized_shape, weight, bias, eps)


def _recipe(func, args: tuple, kwargs: dict, output: torch.Tensor) -> _Recipe | None:
    """The recipe of a ``layer_norm``, ``gelu`` or CPU ``linear`` call whose inputs are kept anyway, else None."""
    if func is F.layer_norm:  # keeps its input, weight and bias (not eps)
        call = bound(args, kwargs, input=None, normalized_shape=None, weight=None, bias=None, eps=1e-5)
        op = functools.partial(_layer_norm, normalized_shape=call["normalized_shape"], eps=call["eps"])
        tensors = (call["input"], call["weight"], call["bias"])
    elif func is F.gelu:  # keeps its input
        call = bound(args, kwargs, input=None, approximate="none")
        op, tensors = functools.partial(F.gelu, approximate=call["approximate"]), (call["input"],)
    elif func is F.linear and output.device.type == "cpu":  # keeps its input when its weight is trained
        call = bound(args, kwargs, input=None, weight=None, bias=None)
        if not call["weight"].requires_grad:
            return None
        op, tensors = F.linear, (call["input"], call["weight"], call["bias"])
    else:
        return None
    if any(t is not None and type(t) not in (torch.Tensor, torch.nn.Parameter) for t in tensors):
        return None  # a tensor subclass: left to itself
    return _Recipe(op, tuple(None if t is None else _rebuilt(t) or t for t in tensors), output)


class _SelectiveOps(TorchFunctionMode):
    """Runs every ``scaled_dot_product_attention`` call that records a graph on the math path as
    :class:`RecomputedAttention`, and every CPU ``dropout`` that records a graph as :class:`MaskedDropout`; records
    the recipe of each ``layer_norm``, ``gelu`` and CPU ``linear`` output when the block's hooks are in force.

    Calls made while other saved-tensor hooks than the block's are on top (a ``torch.utils.checkpoint`` inside the
    block, whose replay in backward runs without this mode) are left to PyTorch.
    """

    def __init__(self):
        super().__init__()
        self.hooks = _top_hooks()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if _top_hooks() != self.hooks:
            return func(*args, **kwargs)
        if func is F.scaled_dot_product_attention and torch.is_grad_enabled() and runs_math_attention(args, kwargs):
            return RecomputedAttention.apply(*attention_args(args, kwargs))
        if func is F.dropout and torch.is_grad_enabled() and (masked := masked_dropout_args(args, kwargs)):
            return MaskedDropout.apply(*masked)
        output = func(*args, **kwargs)
        recipes = _RECIPES.get()
        if recipes is not None and type(output) is torch.Tensor and output.requires_grad and torch.is_grad_enabled():
            whole = _whole_output(output)  # a linear layer's 3-D output views its 2-D product
            if whole is not None and whole.numel() == output.numel() and output.is_contiguous():
                recipe = _recipe(func, args, kwargs, output)
                if recipe is not None:
                    recipes[id(whole)] = (weakref.ref(whole), whole._version, recipe)
        return output


def _pack(tensor: torch.Tensor) -> _Rebuilt | _Kept:
    """Saved-tensor pack hook: a recorded op's output (or a view of it) becomes a :class:`_Rebuilt`; anything else
    is kept (:class:`_Kept`)."""
    return _rebuilt(tensor) or _Kept(tensor)


def _unpack(packed: _Rebuilt | _Kept) -> torch.Tensor:
    """Saved-tensor unpack hook: rebuild a recorded op's output from its inputs (the same kernel on the same inputs
    under the same autocast settings, so the same bits), or return the kept tensor, either unchanged since saved.

    Raises:
        RuntimeError: the saved tensor, or an input of the op that made it, was modified in place since.
    """
    return packed.materialize()


def _top_hooks() -> tuple | None:
    """The saved-tensor hooks in force, ``(pack, unpack)``, or None."""
    try:
        return torch._C._autograd._top_saved_tensors_default_hooks(False)
    except (AttributeError, RuntimeError, TypeError):  # a PyTorch without it: assume none
        return None


def _outer_hooks_in_force() -> bool:
    """Whether saved-tensor hooks are already in force (a user's ``torch.autograd.graph.save_on_cpu``, an outer
    ``torch.utils.checkpoint``). PyTorch's hooks do not nest: inner ones replace the outer ones entirely."""
    return _top_hooks() is not None


@contextmanager
def selective_recompute(enabled: bool = True):
    """Within the block, attention cores, the outputs of layer norms, GELUs and CPU linear layers, and CPU dropout
    noise are recomputed in backward instead of kept.

    Wrap the backbone's forward only (not a custom autograd head: its saved tensors pass through the same hooks
    but are left unchanged). A no-op when ``enabled`` is false or when no graph is being recorded. Saved-tensor
    hooks already in force (a user's ``save_on_cpu``, an outer checkpoint) stay in charge of everything the block
    keeps (rebuilding outputs would replace the user's hooks); only the attention cores and the dropout noise are
    then recomputed.
    """
    if not enabled or not torch.is_grad_enabled():
        yield
        return
    if _outer_hooks_in_force():
        with _SelectiveOps():
            yield
        return
    recipes = _RECIPES.set({})  # the block's records; dropped (with the inputs they hold) when it ends
    try:
        with torch.autograd.graph.saved_tensors_hooks(_pack, _unpack), _SelectiveOps():
            yield
    finally:
        _RECIPES.reset(recipes)
