"""Weight-space interpolation of two encoders of one architecture (WiSE-FT).

WiSE-FT (Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022, arXiv:2109.01903) ensembles a
zero-shot model and its fine-tuned version in weight space::

    theta(alpha) = (1 - alpha) * theta_zero_shot + alpha * theta_fine_tuned

``alpha = 0`` is the zero-shot model, ``alpha = 1`` the fine-tuned one; in between, the fine-tuned model usually
forgets less of what the zero-shot model knew (out-of-domain quality) while keeping most of its in-domain gain.

Every floating-point tensor of the state dict (parameters and float buffers, e.g. an inference-free model's query
weight table) is interpolated, computed in float32 and cast back to its dtype. Tensors equal in both models (a frozen
backbone) are copied, so they stay bit-identical. Other tensors (integer position ids, CSR's dead-latent counters) are
copied, not interpolated, from the model ``alpha`` is closer to (the fine-tuned one at ``alpha = 0.5``). At
``alpha = 0`` and ``alpha = 1`` the result equals the end point exactly.

Pure torch: no Lightning, no files.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping

import torch
from torch import nn

from splade_lightning.errors import ConfigError

__all__ = ["check_same_settings", "check_same_tensors", "interpolate_modules", "interpolate_state_dicts"]

#: export_config() keys that do not change what a model computes: whether a part was trained (a frozen table encodes
#: like a trained one) and the initial weight of tokens an IDF table lacks (the weights themselves are interpolated)
IGNORED_SETTINGS = frozenset({"frozen", "missing_weight"})


def _flatten(settings: Mapping, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in settings.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name))
        elif str(key) not in IGNORED_SETTINGS:
            flat[name] = value
    return flat


def check_same_settings(zero_shot: Mapping, fine_tuned: Mapping, names: tuple[str, str]) -> None:
    """Refuse two encoders whose settings (``encoder.export_config()``) differ: another architecture, pooling,
    activation or TopK ``k``. :data:`IGNORED_SETTINGS` (``frozen``, ``missing_weight``) are ignored.

    Args:
        zero_shot: the zero-shot encoder's ``export_config()``.
        fine_tuned: the fine-tuned encoder's ``export_config()``.
        names: how to name the two models in the message (e.g. ``("--zero_shot splade-tiny", "--fine_tuned m")``).

    Raises:
        ConfigError: naming both models and the first differing setting.
    """
    a, b = _flatten(zero_shot), _flatten(fine_tuned)
    if a.get("architecture") != b.get("architecture"):
        raise ConfigError(f"{names[0]} is a {a.get('architecture')!r} model but {names[1]} is a "
                          f"{b.get('architecture')!r} model; expected two models of the same architecture (a model "
                          "and its fine-tuned version)")
    for key in [*a, *(k for k in b if k not in a)]:
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            raise ConfigError(f"{names[0]} and {names[1]} differ in setting {key!r}: {a.get(key, '<absent>')!r} vs "
                              f"{b.get(key, '<absent>')!r}; expected two models of the same architecture")


def check_same_tensors(zero_shot: Mapping[str, torch.Tensor], fine_tuned: Mapping[str, torch.Tensor],
                       names: tuple[str, str] = ("the zero-shot model", "the fine-tuned model")) -> None:
    """Refuse two state dicts that cannot be interpolated: other tensor names, shapes or dtypes.

    Args:
        zero_shot: the zero-shot encoder's ``state_dict()``.
        fine_tuned: the fine-tuned encoder's ``state_dict()``.
        names: how to name the two models in the message.

    Raises:
        ConfigError: naming both models and the first mismatching tensor (in state-dict order).
    """
    for key in zero_shot:
        if key not in fine_tuned:
            raise ConfigError(f"{names[0]} has parameter {key!r}, which {names[1]} lacks; expected two models of the "
                              "same architecture")
    for key in fine_tuned:
        if key not in zero_shot:
            raise ConfigError(f"{names[1]} has parameter {key!r}, which {names[0]} lacks; expected two models of the "
                              "same architecture")
    for key, a in zero_shot.items():
        b = fine_tuned[key]
        if a.shape != b.shape:
            raise ConfigError(f"parameter {key!r} has shape {tuple(a.shape)} in {names[0]} but {tuple(b.shape)} in "
                              f"{names[1]}; expected two models of the same architecture and vocabulary")
        if a.dtype != b.dtype:
            raise ConfigError(f"parameter {key!r} is {a.dtype} in {names[0]} but {b.dtype} in {names[1]}; expected "
                              "the same dtype (load both models the same way)")


def _check_alpha(alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not math.isfinite(alpha) \
            or not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha={alpha!r}; expected a number in [0, 1] (0: the zero-shot model, 1: the fine-tuned "
                          "one)")
    return float(alpha)


def interpolate_state_dicts(zero_shot: Mapping[str, torch.Tensor], fine_tuned: Mapping[str, torch.Tensor],
                            alpha: float) -> dict[str, torch.Tensor]:
    """``(1 - alpha) * zero_shot + alpha * fine_tuned`` for every floating-point tensor (WiSE-FT, arXiv:2109.01903).

    Args:
        zero_shot: a state dict, name -> tensor of any shape.
        fine_tuned: a state dict with the same names, shapes and dtypes (:func:`check_same_tensors`).
        alpha: the weight of the fine-tuned model, in [0, 1].

    Returns:
        A new state dict (fresh tensors, on the inputs' devices, with their dtypes): interpolated floating-point
        tensors; tensors equal in both models copied; other tensors (integers, booleans) copied from the model
        ``alpha`` is closer to (the fine-tuned one at 0.5). ``alpha = 0`` returns the zero-shot tensors exactly,
        ``alpha = 1`` the fine-tuned ones.

    Raises:
        ConfigError: a bad ``alpha``, or state dicts that do not match.
    """
    alpha = _check_alpha(alpha)
    check_same_tensors(zero_shot, fine_tuned)
    nearer = fine_tuned if alpha >= 0.5 else zero_shot
    out = {}
    for key, a in zero_shot.items():
        b = fine_tuned[key]
        if not a.is_floating_point() or alpha in (0.0, 1.0) or torch.equal(a, b):
            out[key] = (a if alpha == 0.0 else b if alpha == 1.0 else nearer[key]).detach().clone()
            continue
        mixed = (1.0 - alpha) * a.detach().float() + alpha * b.detach().to(a.device).float()
        out[key] = mixed.to(a.dtype)
    return out


def interpolate_modules(zero_shot: nn.Module, fine_tuned: nn.Module, alpha: float) -> nn.Module:
    """A copy of ``fine_tuned`` holding the weights ``(1 - alpha) * zero_shot + alpha * fine_tuned``.

    Args:
        zero_shot: the zero-shot encoder.
        fine_tuned: the fine-tuned encoder, of the same architecture (its structure and settings are kept).
        alpha: the weight of the fine-tuned model, in [0, 1].

    Returns:
        A new module (deep copy of ``fine_tuned``) with the interpolated state dict (:func:`interpolate_state_dicts`).
    """
    state = interpolate_state_dicts(zero_shot.state_dict(), fine_tuned.state_dict(), alpha)
    mixed = copy.deepcopy(fine_tuned)
    mixed.load_state_dict(state, strict=True)
    return mixed
