"""Optimiser set-up shared by the LightningModules: no-decay parameter groups and linear warm-up/decay."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from splade_lightning.errors import ConfigError

DEFAULT_WARMUP_FRACTION = 0.1
_NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "layernorm.weight", "norm.weight")


def param_groups(named_params: Iterable[tuple[str, nn.Parameter]], weight_decay: float,
                 name: str = "backbone") -> list[dict]:
    """Split trainable parameters into a decayed group and a no-decay group (biases and norm weights).

    Returns:
        ``[{"params": [...], "weight_decay": weight_decay, "name": name}, {"params": [...], "weight_decay": 0.0,
        "name": name}]`` (empty groups dropped). The optimiser's ``lr`` applies.
    """
    decay, no_decay = [], []
    for param_name, p in named_params:
        if p.requires_grad:
            (no_decay if param_name.endswith(_NO_DECAY) else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay, "name": name},
              {"params": no_decay, "weight_decay": 0.0, "name": name}]
    return [g for g in groups if g["params"]]


def resolve_warmup_steps(total_steps: int, warmup_steps: int | None, warmup_fraction: float | None) -> int:
    """Warm-up length in optimiser steps from either an absolute count or a fraction of ``total_steps``
    (``DEFAULT_WARMUP_FRACTION`` when neither is given)."""
    if warmup_steps is not None:  # check_optim_args already rejected giving both
        return int(warmup_steps)
    fraction = DEFAULT_WARMUP_FRACTION if warmup_fraction is None else warmup_fraction
    return int(round(fraction * total_steps))


def linear_warmup_decay(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """LR multiplier: 0 -> 1 linearly over ``warmup_steps``, then 1 -> 0 linearly until ``total_steps``
    (the BERT / sentence-transformers ``WarmupLinear`` schedule)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


def check_optim_args(lr: float, weight_decay: float, warmup_steps: int | None, warmup_fraction: float | None) -> None:
    """Validate the optimiser arguments of a module; raise one ConfigError naming every bad one."""
    problems = []
    if lr <= 0:
        problems.append(f"lr={lr!r}: expected > 0")
    if weight_decay < 0:
        problems.append(f"weight_decay={weight_decay!r}: expected >= 0")
    if warmup_steps is not None and warmup_steps < 0:
        problems.append(f"lr_warmup_steps={warmup_steps!r}: expected >= 0")
    if warmup_fraction is not None and not 0 <= warmup_fraction < 1:
        problems.append(f"lr_warmup_fraction={warmup_fraction!r}: expected a fraction in [0, 1)")
    if warmup_steps is not None and warmup_fraction is not None:
        problems.append("give either lr_warmup_steps or lr_warmup_fraction, not both")
    if problems:
        raise ConfigError("invalid optimiser arguments: " + "; ".join(problems))


def default_optimizer(groups: list[dict], lr: float) -> torch.optim.Optimizer:
    """AdamW (Loshchilov & Hutter, arXiv:1711.05101) over pre-split parameter groups."""
    return torch.optim.AdamW(groups, lr=lr)
