"""Regulariser-weight warm-up: λ(t) = λ_max · min(1, t/T)^p, a pure function of ``trainer.global_step``."""

from __future__ import annotations

from typing import Literal

import lightning.pytorch as pl

from splade_lightning.errors import ConfigError
from splade_lightning.systems.interfaces import Regularized, require

Shape = Literal["quadratic", "linear"]


def warmup_factor(step: int, warmup_steps: int, shape: Shape = "quadratic") -> float:
    """Scale in [0, 1] applied to λ at optimiser step ``step`` (0-based: the first step gets 0, as in
    sentence-transformers' SpladeRegularizerWeightSchedulerCallback; NAVER SPLADE uses the same quadratic ramp,
    Formal et al., arXiv:2109.10086 §3).

    Args:
        step: ``trainer.global_step`` when the step starts (number of optimiser steps already taken).
        warmup_steps: T; 0 means no warm-up (always 1).
        shape: ``quadratic`` -> (t/T)², ``linear`` -> t/T.
    """
    if warmup_steps <= 0:
        return 1.0
    ratio = min(1.0, step / warmup_steps)
    return ratio**2 if shape == "quadratic" else ratio


class RegularizerWarmup(pl.Callback):
    """Calls ``pl_module.set_reg_scale(warmup_factor(trainer.global_step, T, shape))`` before every training batch.

    The factor multiplies both λ_q and λ_d. It is recomputed from the global step, so it is right after a resume.
    The module must implement :class:`~splade_lightning.systems.interfaces.Regularized` (``SpladeModule`` and its
    subclasses); any other is a :class:`~splade_lightning.errors.ConfigError` when ``fit`` starts.

    Args:
        warmup_steps: T in optimiser steps.
        warmup_fraction: T as a fraction of the run's total optimiser steps (``trainer.estimated_stepping_batches``).
            When neither is given: 1/3 (the sentence-transformers default). Giving both is an error.
        shape: ``quadratic`` (NAVER / sentence-transformers) or ``linear``.
    """

    def __init__(self, warmup_steps: int | None = None, warmup_fraction: float | None = None,
                 shape: Shape = "quadratic"):
        problems = []
        if warmup_steps is not None and warmup_fraction is not None:
            problems.append(f"give warmup_steps or warmup_fraction, not both (got {warmup_steps}, {warmup_fraction})")
        if warmup_steps is not None and warmup_steps < 0:
            problems.append(f"warmup_steps={warmup_steps!r}: expected >= 0")
        if warmup_fraction is not None and not 0 <= warmup_fraction <= 1:
            problems.append(f"warmup_fraction={warmup_fraction!r}: expected a fraction in [0, 1]")
        if shape not in ("quadratic", "linear"):
            problems.append(f"shape={shape!r}: expected 'quadratic' or 'linear'")
        if problems:
            raise ConfigError("RegularizerWarmup: " + "; ".join(problems))
        self.warmup_steps = warmup_steps
        self.warmup_fraction = 1 / 3 if warmup_steps is None and warmup_fraction is None else warmup_fraction
        self.shape = shape

    def total_warmup_steps(self, trainer: pl.Trainer) -> int:
        """T in optimiser steps for this run."""
        if self.warmup_steps is not None:
            return self.warmup_steps
        return max(1, int(self.warmup_fraction * trainer.estimated_stepping_batches))

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage == "fit":
            require(pl_module, Regularized, type(self).__name__, "a SpladeModule (or a subclass such as "
                    "InferenceFreeSpladeModule); remove RegularizerWarmup for a module without a regulariser")

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: Regularized, batch, batch_idx: int) -> None:
        pl_module.set_reg_scale(warmup_factor(trainer.global_step, self.total_warmup_steps(trainer), self.shape))
