"""ExactResume: a run resumed from a step checkpoint continues exactly as the uninterrupted run would have.

Two things Lightning 2.6 does not restore by itself:

* **The position in the epoch.** ``_FitLoop.on_save_checkpoint`` saves the ``state_dict()`` of stateful training
  loaders (:class:`~splade_lightning.data.resumable_loader.ResumableDataLoader`), but it calls their
  ``load_state_dict`` only from the ``setup_data`` that comes *after* the loop state is restored. A module whose
  ``configure_optimizers`` reads ``trainer.estimated_stepping_batches`` (ours do, for the LR warm-up) makes Lightning
  build the training loader earlier, while the strategy is set up, so that call never happens and the epoch would
  restart at batch 0. This callback reads the saved loader states in ``on_load_checkpoint`` and hands them to the
  final (possibly DDP re-created) loaders in ``on_train_start``, before the first batch is drawn.
* **Random draws** (dropout). Saving the generator state does not suffice: between the ``on_train_batch_end`` that
  writes a ``every_n_train_steps`` checkpoint and the next step, an uninterrupted run also draws from the global
  torch generator (every new DataLoader iterator takes a base seed from it: ``DataLoader._get_shared_seed``, each
  epoch and each validation), and a resumed run draws at other moments. So torch (CPU and CUDA), numpy and python
  ``random`` are reseeded before every training batch from ``(seed, epoch, batch_idx, rank)``, all of which the
  checkpoint's loop state restores; the step after a resume draws the same dropout masks, with any number of
  DataLoader workers.
"""

from __future__ import annotations

import os
import random
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.utilities.combined_loader import CombinedLoader


def batch_seed(seed: int, epoch: int, batch_idx: int, rank: int = 0) -> int:
    """A 63-bit seed mixed from ``(seed, epoch, batch_idx, rank)`` by numpy's ``SeedSequence`` (distinct inputs give
    unrelated seeds)."""
    entropy = [seed & 0xFFFFFFFFFFFFFFFF, epoch, batch_idx, rank]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def saved_loader_states(checkpoint: dict[str, Any]) -> list[dict[str, Any]]:
    """The training-loader states Lightning saved in ``checkpoint`` (``loops.fit_loop.state_dict.combined_loader``;
    one per stateful loader, in flattened order), or ``[]``."""
    fit_loop = checkpoint.get("loops", {}).get("fit_loop", {})
    return list(fit_loop.get("state_dict", {}).get("combined_loader", []))


class ExactResume(pl.Callback):
    """Restore the training loaders' position on resume and reseed every RNG before each training batch.

    Before every training batch, torch, numpy and python ``random`` are seeded with :func:`batch_seed`
    ``(seed, trainer.current_epoch, batch_idx, trainer.global_rank)``. ``SpladeCLI`` installs this callback first in
    the callback list unless the config lists one (so it runs before other callbacks' batch hooks); with a plain
    ``Trainer`` add it yourself.

    Args:
        seed: base seed; ``None`` takes the run's ``seed_everything`` value (``PL_GLOBAL_SEED``), else 0.
        reseed: reseed the RNGs before every training batch (turn off only if something needs one continuous stream).
    """

    def __init__(self, seed: int | None = None, reseed: bool = True):
        self.seed, self.reseed = seed, reseed
        self._loader_states: list[dict[str, Any]] = []

    def base_seed(self) -> int:
        """The configured seed, else ``seed_everything``'s (``PL_GLOBAL_SEED``), else 0."""
        return self.seed if self.seed is not None else int(os.environ.get("PL_GLOBAL_SEED", 0))

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        self._loader_states = saved_loader_states(checkpoint)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        states, self._loader_states = self._loader_states, []
        if not states or trainer.train_dataloader is None:
            return
        stateful = [loader for loader in CombinedLoader(trainer.train_dataloader).flattened
                    if callable(getattr(loader, "load_state_dict", None)) and callable(getattr(loader, "state_dict",
                                                                                                None))]
        for loader, state in zip(stateful, states):
            loader.load_state_dict(state)  # idempotent when Lightning already did it

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch, batch_idx: int) -> None:
        if not self.reseed:
            return
        value = batch_seed(self.base_seed(), trainer.current_epoch, batch_idx, trainer.global_rank)
        torch.manual_seed(value)
        random.seed(value)
        np.random.seed(value % 2**32)
