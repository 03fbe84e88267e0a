"""Write histograms and tables to whichever loggers a Trainer has, each in its own format.

- ``WandbLogger``: ``wandb.Histogram`` / ``wandb.Table`` under the key (``wandb`` is imported here, lazily, only when
  such a logger is attached).
- ``TensorBoardLogger``: ``add_histogram`` / ``add_text`` (the table as Markdown).
- ``CSVLogger``: files under ``<log_dir>/media/<key>/step_<step>.{json,md}`` (a CSV file cannot hold a histogram or a
  table); histograms only when the caller asks for files (``to_files=True``), so per-step training histograms do
  not litter the log directory.
- any other logger: nothing.

Only the global-zero process writes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger, WandbLogger

from splade_lightning.formats.atomic import write_text_atomic
from splade_lightning.formats.tables import markdown_table
from splade_lightning.metrics.term_stats import histogram_bins

#: bins of the histograms written as numbers (wandb, CSV JSON files); TensorBoard picks its own
NUM_BINS = 40

Row = Sequence[str | int | float]


def _media_path(logger: CSVLogger, key: str, step: int, suffix: str) -> Path:
    """``<log_dir>/media/<key parts, made file-name safe>/step_<step><suffix>``."""
    parts = [re.sub(r"[^A-Za-z0-9._@=-]+", "_", part) or "_" for part in key.split("/") if part not in ("", ".", "..")]
    return Path(logger.log_dir, "media", *parts, f"step_{step:07d}{suffix}")


def log_histogram(trainer: pl.Trainer, key: str, values: torch.Tensor, step: int, to_files: bool = False) -> None:
    """Log the distribution of ``values`` (1-D, e.g. active dims per text) under ``key`` at ``step``.

    Args:
        trainer: its ``loggers`` receive the histogram.
        key: metric name, e.g. ``"val/toy/doc_df_log10"``.
        values: (N,) numbers; nothing is logged when N == 0.
        step: the trainer's global step.
        to_files: also write ``CSVLogger`` JSON files (``{"key", "step", "counts", "bin_edges", "n", "min", "max",
            "mean"}``).
    """
    if not trainer.is_global_zero or values.numel() == 0:
        return
    values = values.detach().double().cpu()
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            import wandb

            logger.log_metrics({key: wandb.Histogram(values.numpy(), num_bins=NUM_BINS)}, step=step)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_histogram(key, values.numpy(), global_step=step)
        elif isinstance(logger, CSVLogger) and to_files:
            counts, edges = histogram_bins(values, NUM_BINS)
            record = {"key": key, "step": step, "counts": counts, "bin_edges": edges, "n": values.numel(),
                      "min": float(values.min()), "max": float(values.max()), "mean": float(values.mean())}
            write_text_atomic(_media_path(logger, key, step, ".json"), json.dumps(record, indent=1) + "\n")


def log_table(trainer: pl.Trainer, key: str, columns: Sequence[str], rows: Sequence[Row], step: int) -> None:
    """Log a table (``rows`` of cells in ``columns`` order) under ``key`` at ``step``.

    CSV loggers get ``step_<step>.json`` (``{"key", "step", "columns", "rows"}``) and ``step_<step>.md``.
    """
    if not trainer.is_global_zero or not rows:
        return
    rows = [list(row) for row in rows]
    for logger in trainer.loggers:
        if isinstance(logger, WandbLogger):
            logger.log_table(key=key, columns=list(columns), data=rows, step=step)
        elif isinstance(logger, TensorBoardLogger):
            logger.experiment.add_text(key, markdown_table(columns, rows) + "\n", global_step=step)
        elif isinstance(logger, CSVLogger):
            record = {"key": key, "step": step, "columns": list(columns), "rows": rows}
            write_text_atomic(_media_path(logger, key, step, ".json"), json.dumps(record, indent=1) + "\n")
            write_text_atomic(_media_path(logger, key, step, ".md"),
                              f"# {key} (step {step})\n\n" + markdown_table(columns, rows) + "\n")
