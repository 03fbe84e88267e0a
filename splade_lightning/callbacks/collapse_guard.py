"""CollapseGuard: catch a training run that has collapsed to all-zero representations (the classic "λ too high"
failure of FLOPS-regularised SPLADE) or whose loss is NaN/inf, instead of silently training a dead model."""

from __future__ import annotations

from typing import Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_warn

from splade_lightning.errors import ConfigError, TrainingCollapsed, TrainingDiverged
from splade_lightning.metrics.active_dims import active_dims_per_text
from splade_lightning.systems.interfaces import DeferrableLoss, Regularized, require

OnCollapse = Literal["warn", "stop"]
OnNonFinite = Literal["warn_skip", "stop"]


def rep_stats(reps: torch.Tensor) -> tuple[float, float]:
    """``(mean active dims, fraction of all-zero vectors)`` of a batch of (B, V) representations."""
    active = active_dims_per_text(reps).float()
    return float(active.mean()), float((active == 0).float().mean())


class CollapseGuard(pl.Callback):
    """Watch every training batch for representation collapse and non-finite losses.

    **Collapse.** A side (queries or documents) looks collapsed in a training batch when its vectors have fewer than
    ``min_active_dims`` non-zero dimensions on average, or more than ``max_zero_fraction`` of them are all-zero. After
    ``patience`` consecutive such batches the guard warns (``on_collapse="warn"``, once per episode) or raises
    :class:`~splade_lightning.errors.TrainingCollapsed` (``"stop"``; the CLI prints the message and exits with
    status 2). The message names the likely causes with the current values: λ too high (``λ_q``/``λ_d`` as applied,
    i.e. times the warm-up scale), regulariser warm-up too short, learning rate too high. Reads
    ``outputs["query_reps"]``/``outputs["doc_reps"]`` of ``training_step`` (SPLADE, inference-free SPLADE, and CSR,
    whose top-k codes are all-zero only when the autoencoder is dead); a module returning neither is not watched.

    **Non-finite loss.** Without this callback a NaN/inf training loss raises ``FloatingPointError`` at once. With it,
    the loss of every micro-batch is checked before ``backward`` and the decision is taken before the optimizer step
    (agreed across DDP ranks): ``on_nonfinite="warn_skip"`` drops that step's gradients so the optimizer leaves every
    weight and its state unchanged (with gradient accumulation the whole accumulated step is skipped; the LR schedule
    still advances), warns, and counts it in ``train/nonfinite_steps``; ``"stop"`` raises
    :class:`~splade_lightning.errors.TrainingDiverged` naming the step, the loss terms and the likely causes.
    Automatic optimization only. The module must implement
    :class:`~splade_lightning.systems.interfaces.DeferrableLoss` (every ``RetrievalModule`` does): the guard calls
    ``defer_nonfinite_loss(True)`` when a run starts and reads ``nonfinite_terms`` for its message. The λ in the
    messages come from :class:`~splade_lightning.systems.interfaces.Regularized` (``reg_weight``) when the module
    has it.

    Args:
        patience: consecutive training batches that must look collapsed before acting (>= 1).
        min_active_dims: floor on the mean number of non-zero dimensions per vector (>= 0; 0 disables this test).
        max_zero_fraction: ceiling on the share of all-zero vectors in a batch, in [0, 1] (1 disables this test).
        on_collapse: ``"warn"`` or ``"stop"``.
        on_nonfinite: ``"warn_skip"`` (skip the optimizer step and count it) or ``"stop"``.
    """

    def __init__(self, patience: int = 20, min_active_dims: float = 1.0, max_zero_fraction: float = 0.5,
                 on_collapse: OnCollapse = "stop", on_nonfinite: OnNonFinite = "stop"):
        _check_args(patience, min_active_dims, max_zero_fraction, on_collapse, on_nonfinite)
        self.patience, self.min_active_dims, self.max_zero_fraction = patience, min_active_dims, max_zero_fraction
        self.on_collapse, self.on_nonfinite = on_collapse, on_nonfinite
        self.collapsed_batches = 0  # consecutive
        self.nonfinite_steps = 0
        self._nonfinite_message: str | None = None  # of the first non-finite micro-batch of the current step

    # -- set-up: take over the module's non-finite policy ---------------------------------------------------------
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        require(pl_module, DeferrableLoss, type(self).__name__,
                "a splade_lightning RetrievalModule (SpladeModule, InferenceFreeSpladeModule, CSRModule)")
        pl_module.defer_nonfinite_loss(True)  # RetrievalModule.log_training leaves the decision to this callback

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if isinstance(pl_module, DeferrableLoss):
            pl_module.defer_nonfinite_loss(False)

    # -- non-finite loss ------------------------------------------------------------------------------------------
    def on_before_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor) -> None:
        if self._nonfinite_message is None and not bool(torch.isfinite(loss.detach()).all()):
            self._nonfinite_message = _nonfinite_message(trainer, pl_module, loss)

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer) -> None:
        local = self._nonfinite_message is not None
        if not trainer.strategy.reduce_boolean_decision(local, all=False):
            return
        message = self._nonfinite_message or f"non-finite training loss on another process at step " \
                                              f"{trainer.global_step}"
        self._nonfinite_message = None
        if self.on_nonfinite == "stop":
            raise TrainingDiverged(message + " (CollapseGuard on_nonfinite='stop')")
        for group in optimizer.param_groups:
            for param in group["params"]:
                param.grad = None  # the optimizer skips parameters without a gradient: no update, no state change
        self.nonfinite_steps += 1
        rank_zero_warn(f"{message}; this optimizer step is skipped (skipped so far: {self.nonfinite_steps})")

    # -- collapse -------------------------------------------------------------------------------------------------
    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        if self.on_nonfinite == "warn_skip":
            pl_module.log("train/nonfinite_steps", float(self.nonfinite_steps), batch_size=1)
        if not isinstance(outputs, dict) or "query_reps" not in outputs or "doc_reps" not in outputs:
            return
        stats = {side: rep_stats(outputs[f"{side}_reps"]) for side in ("query", "doc")}
        bad = [side for side, (active, zero) in stats.items()
               if active < self.min_active_dims or zero > self.max_zero_fraction]
        if not trainer.strategy.reduce_boolean_decision(bool(bad), all=False):
            self.collapsed_batches = 0
            return
        self.collapsed_batches += 1
        if self.collapsed_batches < self.patience:
            return
        message = self._collapse_message(trainer, pl_module, stats, bad or ["doc"])
        if self.on_collapse == "stop":
            raise TrainingCollapsed(message + " (CollapseGuard on_collapse='stop')")
        if self.collapsed_batches == self.patience:
            rank_zero_warn(message)

    def _collapse_message(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                          stats: dict[str, tuple[float, float]], bad: list[str]) -> str:
        sides = "; ".join(f"{side}: {stats[side][0]:.2f} active dims per vector, {stats[side][1]:.0%} all-zero"
                          for side in bad)
        return (f"representation collapse: {self.collapsed_batches} consecutive training batches up to step "
                f"{trainer.global_step} fell below min_active_dims={self.min_active_dims} or above "
                f"max_zero_fraction={self.max_zero_fraction} ({sides}). Likely causes: {_likely_causes(pl_module)}")

    # -- checkpoints ----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"nonfinite_steps": self.nonfinite_steps, "collapsed_batches": self.collapsed_batches}

    def load_state_dict(self, state_dict: dict) -> None:
        self.nonfinite_steps = int(state_dict.get("nonfinite_steps", 0))
        self.collapsed_batches = int(state_dict.get("collapsed_batches", 0))


def _learning_rate(pl_module: pl.LightningModule) -> str:
    try:
        return f"{pl_module.trainer.optimizers[0].param_groups[0]['lr']:.3g}"
    except (RuntimeError, IndexError, AttributeError):
        return "unknown"


def _likely_causes(pl_module: pl.LightningModule) -> str:
    """The usual causes of collapse, with the module's current λ (when it has one) and learning rate."""
    lr = f"learning rate too high (lr={_learning_rate(pl_module)})"
    if isinstance(pl_module, Regularized):
        doc, query, scale = pl_module.reg_weight("doc"), pl_module.reg_weight("query"), pl_module.reg_scale
        return (f"λ_d/λ_q too high (current λ_d={doc:.3g}, λ_q={query:.3g}, warm-up scale {scale:.3g}), regularizer "
                f"warm-up too short (RegularizerWarmup.warmup_steps), or {lr}")
    return f"dead latents / a dead encoder (no regulariser drives codes to zero here), or {lr}"


def _nonfinite_message(trainer: pl.Trainer, pl_module: pl.LightningModule, loss: torch.Tensor) -> str:
    deferred = pl_module.nonfinite_terms if isinstance(pl_module, DeferrableLoss) else None
    terms = deferred or {"loss": float(loss.detach().float().mean())}
    described = ", ".join(f"{k}={v:.4g}" for k, v in terms.items())
    return (f"non-finite training loss at step {trainer.global_step} ({described}). Likely causes: "
            f"{_likely_causes(pl_module)}, fp16 overflow (precision={trainer.precision}; try bf16-mixed), or "
            "NaN/inf in the inputs or teacher scores")


def _check_args(patience: int, min_active_dims: float, max_zero_fraction: float, on_collapse: str,
                on_nonfinite: str) -> None:
    problems = []
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
        problems.append(f"patience={patience!r}: expected an int >= 1")
    if isinstance(min_active_dims, bool) or not isinstance(min_active_dims, (int, float)) or not min_active_dims >= 0:
        problems.append(f"min_active_dims={min_active_dims!r}: expected a number >= 0")
    if isinstance(max_zero_fraction, bool) or not isinstance(max_zero_fraction, (int, float)) \
            or not 0 <= max_zero_fraction <= 1:
        problems.append(f"max_zero_fraction={max_zero_fraction!r}: expected a number in [0, 1]")
    if on_collapse not in ("warn", "stop"):
        problems.append(f"on_collapse={on_collapse!r}: expected 'warn' or 'stop'")
    if on_nonfinite not in ("warn_skip", "stop"):
        problems.append(f"on_nonfinite={on_nonfinite!r}: expected 'warn_skip' or 'stop'")
    if problems:
        raise ConfigError("CollapseGuard: " + "; ".join(problems))
