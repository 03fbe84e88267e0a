"""Where a Lightning run keeps its artifacts: one version directory per run, whatever the logger.

CSV and TensorBoard loggers already have one (``<save_dir>/<name>/version_<N>``). Other loggers (Weights & Biases)
write their own files elsewhere, and Lightning's ``trainer.log_dir`` is then their flat ``save_dir``, so a second run
would overwrite the first one's model, report and config. :func:`run_dir` gives every logger the directory
Lightning's ``ModelCheckpoint`` already uses for its checkpoints (``<save_dir>/<name>/<version>``: for wandb the
project and the run id), so that model, report, config and checkpoints always sit together.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import SaveConfigCallback
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

__all__ = ["RunConfig", "place_checkpoints", "run_dir"]


def run_dir(trainer: pl.Trainer) -> Path:
    """This run's own directory (call it on every process: it is broadcast under DDP)."""
    if not trainer.loggers:
        path = str(trainer.default_root_dir)
    else:
        logger = trainer.loggers[0]
        if isinstance(logger, CSVLogger | TensorBoardLogger):
            path = str(logger.log_dir)
        else:
            if logger.version is None and trainer.is_global_zero:
                logger.experiment  # noqa: B018  (starts the run, e.g. wandb.init, which gives it its id)
            version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
            path = str(Path(logger.save_dir or trainer.default_root_dir, str(logger.name), version))
    return Path(trainer.strategy.broadcast(path))


def place_checkpoints(trainer: pl.Trainer) -> None:
    """Point every ``ModelCheckpoint`` without an explicit ``dirpath`` at ``<run_dir>/checkpoints``."""
    directory = run_dir(trainer) / "checkpoints"
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.dirpath is None:
            callback.dirpath = str(directory)


def _flatten(config: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}/"))
        else:
            flat[name] = value if isinstance(value, int | float | str | bool) or value is None else str(value)
    return flat


class RunConfig(SaveConfigCallback):
    """Write the resolved config to ``<run_dir>/config.yaml`` and give the full resolved config (flattened:
    ``model/init_args/lr``, ``data/init_args/batch_size``, ``trainer/callbacks``, ...) to every logger that is not a
    CSV logger, so that runs can be grouped and filtered by any setting on a dashboard."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.already_saved:
            return
        directory = run_dir(trainer)
        if trainer.is_global_zero:
            from splade_lightning.formats.atomic import write_text_atomic

            directory.mkdir(parents=True, exist_ok=True)
            write_text_atomic(directory / self.config_filename,
                              self.parser.dump(self.config, skip_none=False, skip_link_targets=False))
            flat = _flatten(yaml.safe_load(self.parser.dump(self.config, skip_none=False)) or {})
            for logger in trainer.loggers:
                if not isinstance(logger, CSVLogger):
                    logger.log_hyperparams(flat)
            self.already_saved = True
        self.already_saved = trainer.strategy.broadcast(self.already_saved)
