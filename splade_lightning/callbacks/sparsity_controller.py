"""SparsityController: adapt λ_d (and optionally λ_q) during training so that the representations reach and hold a
sparsity target (mean active dims, or a FLOPS budget) instead of hand-tuning λ by a sweep."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import lightning.pytorch as pl
import torch

from splade_lightning.errors import ConfigError
from splade_lightning.metrics.active_dims import active_dims_per_text
from splade_lightning.metrics.sparsity import flops
from splade_lightning.metrics.term_stats import document_frequency
from splade_lightning.systems.interfaces import Regularized, Side, require

Metric = Literal["active_dims", "flops"]


@dataclass
class ControllerState:
    """What one side's controller carries from step to step (saved in checkpoints).

    Attributes:
        log_multiplier: u_t = log of the factor applied to the side's configured λ.
        prev_error: e_{t-1} (0 before the first update, so the first update is the positional P + I form).
        ema: exponential moving average of the measured sparsity (None before the first measurement).
        steps: number of updates so far.
    """

    log_multiplier: float = 0.0
    prev_error: float = 0.0
    ema: float | None = None
    steps: int = 0


def pi_update(state: ControllerState, measured: float, target: float, kp: float, ki: float, ema_decay: float,
              bounds: tuple[float, float]) -> ControllerState:
    """One step of a velocity-form PI controller on log λ.

    ``m_t = ema_decay · m_{t-1} + (1 - ema_decay) · x_t`` (``m_0 = x_0``), ``e_t = log(m_t / target)`` (positive when
    the reps are denser than the target: λ must grow), ``u_t = clip(u_{t-1} + kp·(e_t - e_{t-1}) + ki·e_t, bounds)``.
    Working on log λ and a log-ratio error makes the gains independent of λ's and the target's scale; clipping the
    velocity form is its anti-windup (the integral cannot run past the bounds). A measurement of 0 (collapsed reps)
    is floored at ``1e-3 · target`` so the error stays finite.

    Args:
        state: the previous state (not modified).
        measured: x_t, this batch's measure (e.g. mean active dims of the training documents).
        target: the set point, > 0.
        kp: proportional gain (on the change of the error).
        ki: integral gain (per update).
        ema_decay: EMA weight of the past in [0, 1).
        bounds: (lower, upper) bounds of u = log multiplier.

    Returns:
        The new state.
    """
    ema = measured if state.ema is None else ema_decay * state.ema + (1.0 - ema_decay) * measured
    error = math.log(max(ema, 1e-3 * target) / target)
    log_multiplier = state.log_multiplier + kp * (error - state.prev_error) + ki * error
    log_multiplier = min(max(log_multiplier, bounds[0]), bounds[1])
    return ControllerState(log_multiplier=log_multiplier, prev_error=error, ema=ema, steps=state.steps + 1)


def batch_measure(metric: Metric, query_reps: torch.Tensor, doc_reps: torch.Tensor, side: Side) -> float:
    """This batch's sparsity: mean active dims of the ``side``'s (N, V) reps, or for ``flops`` the FLOPS estimate
    ``Σ_v p_q(v)·p_d(v)`` of the batch (Paria et al., arXiv:2004.05665), which both sides share."""
    if metric == "flops":
        return flops(document_frequency(query_reps) / len(query_reps), document_frequency(doc_reps) / len(doc_reps))
    reps = query_reps if side == "query" else doc_reps
    return float(active_dims_per_text(reps).float().mean())


class SparsityController(pl.Callback):
    """Adapt the regularisation weights during training so that sparsity reaches and holds a target.

    After every training batch the measure of each controlled side (mean active dims of the batch's training
    documents / queries, or the batch FLOPS) goes through :func:`pi_update`, and ``exp(u)`` is handed to
    ``pl_module.set_reg_multiplier(side, exp(u))`` (the :class:`~splade_lightning.systems.interfaces.Regularized`
    interface of :class:`~splade_lightning.systems.SpladeModule`), which multiplies it into the configured λ
    (``λ = doc_reg_weight · reg_scale · reg_multiplier("doc")``; the configured weight is the starting λ and the
    warm-up callback, if any, still applies). The applied λ is logged by the module
    (``train/reg_weight_doc``); this callback logs ``train/controller_measured_<side>`` (the EMA),
    ``train/controller_target_<side>`` and ``train/controller_log_multiplier_<side>``. Its state is saved in
    checkpoints (``state_dict``) so a resumed run continues exactly.

    Args:
        doc_target: target for the documents (mean active dims, or FLOPS); None leaves λ_d fixed.
        query_target: target for the queries; None leaves λ_q fixed.
        metric: ``active_dims`` (per side) or ``flops`` (Σ_v p_q(v)·p_d(v), shared by both sides, so only one side
            may have a target).
        kp: proportional gain on log λ per unit of log-ratio error.
        ki: integral gain on log λ per update.
        ema_decay: smoothing of the measured value in [0, 1) (0: no smoothing).
        initial_log_multiplier: u_0, log of the starting factor on the configured λ.
        min_log_multiplier: lower bound of u (λ never goes below configured λ · exp(min)).
        max_log_multiplier: upper bound of u.
    """

    def __init__(self, doc_target: float | None = None, query_target: float | None = None,
                 metric: Metric = "active_dims", kp: float = 1.0, ki: float = 0.05, ema_decay: float = 0.5,
                 initial_log_multiplier: float = 0.0, min_log_multiplier: float = -10.0,
                 max_log_multiplier: float = 10.0):
        _check_args(doc_target, query_target, metric, kp, ki, ema_decay, initial_log_multiplier,
                    min_log_multiplier, max_log_multiplier)
        self.targets = {side: t for side, t in (("query", query_target), ("doc", doc_target)) if t is not None}
        self.metric = metric
        self.kp, self.ki, self.ema_decay = kp, ki, ema_decay
        self.bounds = (min_log_multiplier, max_log_multiplier)
        self.states = {side: ControllerState(log_multiplier=initial_log_multiplier) for side in self.targets}

    @property
    def state_key(self) -> str:
        return self._generate_state_key(metric=self.metric, targets=tuple(sorted(self.targets.items())))

    def multipliers(self) -> dict[str, float]:
        """``{side: exp(u)}`` for the controlled sides."""
        return {side: math.exp(state.log_multiplier) for side, state in self.states.items()}

    def _apply(self, pl_module: Regularized) -> None:
        for side, multiplier in self.multipliers().items():
            pl_module.set_reg_multiplier(side, multiplier)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        require(pl_module, Regularized, type(self).__name__,
                "a SpladeModule (or a subclass such as InferenceFreeSpladeModule) whose λ it can adapt")
        for side in self.targets:
            weight = float(pl_module.configured_reg_weight(side))
            if weight <= 0:
                raise ConfigError(f"SparsityController: {side}_target={self.targets[side]} but "
                                  f"model {side}_reg_weight={weight}; expected a starting λ > 0 to adapt")

    def on_train_start(self, trainer: pl.Trainer, pl_module: Regularized) -> None:
        self._apply(pl_module)  # also right after a resume: the restored multipliers apply from the first batch

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs, batch,
                           batch_idx: int) -> None:
        if not isinstance(outputs, dict) or "doc_reps" not in outputs:
            return
        logged = {}
        for side, target in self.targets.items():
            measured = batch_measure(self.metric, outputs["query_reps"], outputs["doc_reps"], side)
            self.states[side] = pi_update(self.states[side], measured, target, self.kp, self.ki, self.ema_decay,
                                          self.bounds)
            logged[f"train/controller_measured_{side}"] = self.states[side].ema
            logged[f"train/controller_target_{side}"] = float(target)
            logged[f"train/controller_log_multiplier_{side}"] = self.states[side].log_multiplier
        self._apply(pl_module)
        pl_module.log_dict(logged, batch_size=1)

    def state_dict(self) -> dict:
        return {"targets": dict(self.targets), "metric": self.metric,
                "states": {side: asdict(state) for side, state in self.states.items()}}

    def load_state_dict(self, state_dict: dict) -> None:
        saved = {side: state_dict["targets"][side] for side in state_dict["states"]}
        if saved != self.targets or state_dict["metric"] != self.metric:
            raise ConfigError(f"SparsityController: the checkpoint's controller has targets {saved} on "
                              f"{state_dict['metric']!r}, this run {self.targets} on {self.metric!r}; expected the "
                              "same to resume")
        self.states = {side: ControllerState(**state) for side, state in state_dict["states"].items()}


def _check_args(doc_target, query_target, metric, kp, ki, ema_decay, initial, lower, upper) -> None:
    """Collect every problem with the constructor arguments and raise one :class:`ConfigError`."""
    problems = []
    if doc_target is None and query_target is None:
        problems.append("give doc_target and/or query_target (got neither)")
    for name, target in (("doc_target", doc_target), ("query_target", query_target)):
        if target is not None and not (isinstance(target, int | float) and math.isfinite(target) and target > 0):
            problems.append(f"{name}={target!r}: expected a number > 0")
    if metric not in ("active_dims", "flops"):
        problems.append(f"metric={metric!r}: expected 'active_dims' or 'flops'")
    elif metric == "flops" and doc_target is not None and query_target is not None:
        problems.append("metric='flops' is one figure shared by queries and documents: give doc_target or "
                        "query_target, not both")
    for name, gain in (("kp", kp), ("ki", ki)):
        if not (math.isfinite(gain) and gain >= 0):
            problems.append(f"{name}={gain!r}: expected a finite number >= 0")
    if ki == 0 and kp == 0:
        problems.append("kp=0 and ki=0: the controller would never move λ; expected ki > 0")
    if not 0 <= ema_decay < 1:
        problems.append(f"ema_decay={ema_decay!r}: expected a number in [0, 1)")
    if not lower <= initial <= upper:
        problems.append(f"initial_log_multiplier={initial!r}: expected min_log_multiplier ({lower}) <= it <= "
                        f"max_log_multiplier ({upper})")
    if problems:
        raise ConfigError("SparsityController: " + "; ".join(problems))
