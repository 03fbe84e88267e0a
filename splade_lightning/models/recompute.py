"""Selective activation recomputation for a transformer backbone: exact, bitwise-identical gradients.

Training keeps every tensor an op saves for its backward until that backward runs. In a BERT-style layer the two
largest are cheap to rebuild (Korthikanti et al., "Reducing Activation Recomputation in Large Transformer Models",
arXiv:2205.05198, section 4.2, recompute the attention core for the same reason):

- **the attention core** when PyTorch runs it on its unfused math path (on CPU: whenever attention dropout is on,
  as in training from a BERT checkpoint), which keeps the softmax probabilities, the dropout mask and the dropped
  probabilities, (B, heads, L, L) each, per layer. Under :func:`selective_recompute` each such
  ``torch.nn.functional.scaled_dot_product_attention`` call runs inside :func:`torch.utils.checkpoint.checkpoint`
  (non-reentrant, RNG state preserved), so only its inputs (the Q, K, V projections) stay alive and the core is
  recomputed in backward with the same dropout mask. Fused kernels keep little and are left alone;
- **the GELU output** (B x L x intermediate floats per layer), kept by the next linear layer for its weight
  gradient although the GELU's own input is kept too. The saved-tensor hooks below store a GELU output as a
  reference to its input and recompute ``gelu(input)`` when the backward needs it.

Both recomputations run the same kernels on the same inputs, so losses and gradients are bitwise identical to plain
training (tested). The cost is one extra attention core and one extra GELU per layer in backward.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend
from torch.overrides import TorchFunctionMode
from torch.utils.checkpoint import checkpoint


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


class _CheckpointAttention(TorchFunctionMode):
    """Runs every ``scaled_dot_product_attention`` call that records a graph on the math path under a
    non-reentrant checkpoint (RNG state preserved: the recomputation draws the same dropout mask)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention and torch.is_grad_enabled() and _runs_math_attention(args, kwargs):
            return checkpoint(func, *args, use_reentrant=False, preserve_rng_state=True, **kwargs)
        return func(*args, **kwargs)


class _GeluOutput:
    """What a saved GELU output (or a view of it) is packed into: the GELU's input and how to rebuild the view."""

    __slots__ = ("source", "approximate", "version", "size", "stride", "offset")

    def __init__(self, source: torch.Tensor, approximate: str, view: torch.Tensor):
        self.source = source
        self.approximate = approximate
        self.version = source._version
        self.size, self.stride, self.offset = view.size(), view.stride(), view.storage_offset()


def _gelu_node(tensor: torch.Tensor):
    """The GELU node whose contiguous output is ``tensor`` or ``tensor``'s base, else None (``Linear`` saves its 3-D
    input as a 2-D view of it)."""
    output = tensor._base if tensor._is_view() else tensor
    node = output.grad_fn
    if node is None or type(node).__name__ != "GeluBackward0" or output._is_view():
        return None
    if not output.is_contiguous() or output.storage_offset() != 0:
        return None
    return node


def _pack(tensor: torch.Tensor):
    """Saved-tensor pack hook: a GELU's output (or a view of it) becomes a :class:`_GeluOutput`; anything else is
    kept as is."""
    node = _gelu_node(tensor)
    if node is None:
        return tensor
    source = node._saved_self  # the GELU's input, which its own backward keeps alive anyway
    if not source.is_contiguous() or source.dtype != tensor.dtype or source.numel() < tensor.numel():
        return tensor
    return _GeluOutput(source, node._saved_approximate, tensor)


def _unpack(packed):
    """Saved-tensor unpack hook: rebuild a GELU output from its input (the same kernel, so the same bits).

    Raises:
        RuntimeError: the GELU's input was modified in place after the forward (autograd would refuse it too).
    """
    if not isinstance(packed, _GeluOutput):
        return packed
    if packed.source._version != packed.version:
        raise RuntimeError("selective_recompute: a GELU input was modified in place after the forward; its output "
                           "cannot be rebuilt (turn selective recomputation off for this model)")
    output = F.gelu(packed.source, approximate=packed.approximate)
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
    """Within the block, attention cores and GELU outputs are recomputed in backward instead of kept.

    Wrap the backbone's forward only (not a custom autograd head: its saved tensors pass through the same hooks
    but are left unchanged). A no-op when ``enabled`` is false or when no graph is being recorded. Saved-tensor
    hooks already in force (a user's ``save_on_cpu``, an outer checkpoint) stay in charge of everything the block
    keeps, GELU outputs included (rebuilding those would replace the user's hooks); only the attention cores are
    then recomputed.
    """
    if not enabled or not torch.is_grad_enabled():
        yield
        return
    gelu = nullcontext() if _outer_hooks_in_force() else torch.autograd.graph.saved_tensors_hooks(_pack, _unpack)
    with gelu, _CheckpointAttention():
        yield
