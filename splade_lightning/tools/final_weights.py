"""``fit --final_weights best``: end a run with the best checkpoint's weights instead of the last ones.

A ``ModelCheckpoint`` that monitors a metric (``monitor: val/ndcg@10``, ``mode: max``) keeps the run's best
checkpoints. With ``--final_weights best`` ``fit`` loads the best one into the module after training; the final
evaluation, the report and the exported model then describe those weights (sentence-transformers' trainer:
``load_best_model_at_end`` with ``metric_for_best_model``). The checkpoint files are only read, never written or
removed. ``last`` (the default) keeps the weights of the final step.

A ``ModelCheckpoint`` that monitors ``step`` or ``epoch`` (the shipped configs' resumable checkpoint) keeps the
newest checkpoints: its "best" is the newest, not a better model, so it does not count as monitoring a metric.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint

from splade_lightning.errors import ConfigError
from splade_lightning.serialization.checkpoint import checkpoint_problem, torch_load_checkpoint

__all__ = ["COUNTERS", "FinalWeights", "SelectedWeights", "best_checkpoint", "earlier_best", "load_weights",
           "monitoring_checkpoint"]

FinalWeights = Literal["last", "best"]
FLAG = "--final_weights"
#: monitored values that count progress: a ModelCheckpoint monitoring them keeps the newest checkpoints
COUNTERS = ("step", "epoch")


@dataclass(frozen=True)
class SelectedWeights:
    """The weights a ``fit`` run ends with (evaluated, reported and exported).

    Attributes:
        selected: ``"best"`` (a checkpoint chosen by a monitored metric) or ``"last"`` (the final step's).
        step: the global step the weights were trained to.
        monitor: the monitored metric (``best`` only).
        mode: ``"max"`` or ``"min"``: which end of ``monitor`` is better (``best`` only).
        value: ``monitor``'s value for these weights (``best`` only).
        checkpoint: the checkpoint file the weights were loaded from (``best`` only).
    """

    selected: Literal["best", "last"]
    step: int
    monitor: str | None = None
    mode: str | None = None
    value: float | None = None
    checkpoint: str | None = None

    def to_report(self, run_dir: Path) -> dict:
        """The ``weights`` entry of ``report.json``: the checkpoint path relative to ``run_dir`` when inside it."""
        entry = {"selected": self.selected, "step": self.step}
        if self.selected == "best":
            path = Path(self.checkpoint).resolve()
            inside = path.is_relative_to(run_dir.resolve())
            entry.update(monitor=self.monitor, mode=self.mode, value=self.value,
                         checkpoint=str(path.relative_to(run_dir.resolve())) if inside else str(path))
        return entry


def _describe(callback: ModelCheckpoint) -> str:
    return f"ModelCheckpoint(monitor={callback.monitor!r}, save_top_k={callback.save_top_k})"


def monitoring_checkpoint(trainer: pl.Trainer) -> ModelCheckpoint:
    """The trainer's one ``ModelCheckpoint`` that keeps checkpoints by a metric (``--final_weights best``).

    Raises:
        ConfigError: none does (no ``monitor``, a counter from :data:`COUNTERS`, or ``save_top_k: 0``), or several do.
    """
    callbacks = [cb for cb in trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint)]
    found = [cb for cb in callbacks if cb.monitor and cb.monitor not in COUNTERS and cb.save_top_k != 0]
    if len(found) == 1:
        return found[0]
    if found:
        raise ConfigError(f"{FLAG}=best: {len(found)} ModelCheckpoint callbacks monitor a metric "
                          f"({', '.join(_describe(cb) for cb in found)}); expected exactly one, the one that "
                          "chooses the best weights")
    seen = ", ".join(_describe(cb) for cb in callbacks) or "no ModelCheckpoint"
    raise ConfigError(f"{FLAG}=best needs a ModelCheckpoint that keeps checkpoints by a metric; found {seen} "
                      f"(monitoring {' or '.join(COUNTERS)} keeps the newest, save_top_k: 0 keeps none). Expected a "
                      "trainer.callbacks entry ModelCheckpoint with monitor: val/ndcg@10 (or another logged metric), "
                      f"mode: max and save_top_k >= 1 (see configs/splade/best_checkpoint.yaml), or {FLAG}=last")


def earlier_best(resume_from: str | Path, callback: ModelCheckpoint) -> tuple[str, float] | None:
    """The best checkpoint ``callback`` had chosen before the run resumed from ``resume_from``, when Lightning will
    forget it.

    A resumed run writes to a new run directory; Lightning's ``ModelCheckpoint.load_state_dict`` then restores only
    ``best_model_path``, not the scores, so the first checkpoint of the resumed run becomes "best" whatever its score.
    Call this before ``fit`` (the resumed run may remove files of its own directory).

    Returns:
        ``(path, value)``, or None when ``callback`` keeps its directory (Lightning restores everything) or the
        checkpoint holds no state of ``callback``.

    Raises:
        ConfigError: that best checkpoint no longer exists.
    """
    state = torch_load_checkpoint(resume_from).get("callbacks", {}).get(callback.state_key)
    if not state or state.get("best_model_score") is None or not state.get("best_model_path"):
        return None
    if callback.dirpath and Path(state.get("dirpath") or "").resolve() == Path(callback.dirpath).resolve():
        return None
    path = state["best_model_path"]
    if not Path(path).is_file():
        raise ConfigError(f"{FLAG}=best: the best checkpoint before the resume, {path} (monitor "
                          f"{callback.monitor!r}), no longer exists; expected it beside {resume_from}, or {FLAG}=last")
    return path, float(state["best_model_score"])


def best_checkpoint(callback: ModelCheckpoint, earlier: tuple[str, float] | None = None) -> tuple[str, float]:
    """``(path, value)`` of the best checkpoint: ``callback``'s, or ``earlier`` (:func:`earlier_best`) when it is
    better (a tie keeps the earlier one, as an uninterrupted run would).

    Raises:
        ConfigError: no checkpoint was saved by the metric (it was never logged: no validation ran).
    """
    current = None
    if callback.best_model_path and callback.best_model_score is not None:
        current = (callback.best_model_path, float(callback.best_model_score))
    candidates = [c for c in (earlier, current) if c is not None]
    if not candidates:
        raise ConfigError(f"{FLAG}=best: ModelCheckpoint(monitor={callback.monitor!r}) saved no checkpoint in this "
                          f"run; expected {callback.monitor!r} to be logged by at least one validation during fit, "
                          f"or {FLAG}=last (the last weights are in the run's last checkpoint)")
    better = max if callback.mode == "max" else min
    return better(candidates, key=lambda c: c[1])


def load_weights(module: pl.LightningModule, path: str) -> int:
    """Load the weights of checkpoint ``path`` into ``module`` (the file is only read); returns its global step.

    Raises:
        ConfigError: the file is missing or cannot be loaded, or the module's ``on_load_checkpoint`` refuses it (e.g.
            a teacher other than the run's).
    """
    problem = "no such file" if not Path(path).is_file() else checkpoint_problem(path)
    if problem is not None:
        raise ConfigError(f"{FLAG}=best: the best checkpoint {path} cannot be loaded ({problem}); expected a complete "
                          f"checkpoint file written by Lightning, or {FLAG}=last")
    checkpoint = torch_load_checkpoint(path)
    try:  # as Lightning's restore does first (e.g. a frozen teacher's weights go back in)
        module.on_load_checkpoint(checkpoint)
    except ConfigError as e:
        raise ConfigError(f"{FLAG}=best: the best checkpoint {path}: {e}") from None
    module.load_state_dict(checkpoint["state_dict"])
    return int(checkpoint["global_step"])
