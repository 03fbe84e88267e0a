"""``ResumableDataLoader``: a training DataLoader whose position within the epoch is saved in checkpoints.

How Lightning 2.6 uses it (``loops/fit_loop.py``, ``loops/training_epoch_loop.py``,
``utilities/combined_loader.py``):

* ``_FitLoop.on_save_checkpoint`` stores ``state_dict()`` of every training loader that has ``state_dict`` and
  ``load_state_dict`` (``_Stateful``) under ``loops.fit_loop.state_dict.combined_loader``.
* On resume, ``_FitLoop.setup_data`` requests ``train_dataloader()``, calls ``load_state_dict`` on the new loader and
  only then ``iter()``; the epoch loop restores its batch counters, so the next batch it asks for is batch ``k`` of
  the epoch. A plain DataLoader would restart the epoch at batch 0 (Lightning only warns that it "is not resumable").
* Its length is known, so the fetcher does not prefetch: the batches this loader has yielded are exactly the batches
  the loop consumed when a checkpoint is written (``ModelCheckpoint`` saves in ``on_train_batch_end``).

The batch sampler must offer ``epoch``, ``skip_batches(epoch, batches)`` and ``batches_to_skip()``
(:class:`~splade_lightning.data.sampler.NoDuplicatesBatchSampler`): skipping happens on indices, so the skipped
batches' texts are never read or tokenised. No ``__init__`` is defined, so Lightning can re-create the loader under
DDP exactly like a DataLoader.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

from torch.utils.data import DataLoader


class ResumableDataLoader(DataLoader):
    """A ``DataLoader`` over a batch sampler with ``epoch``, ``skip_batches`` and ``batches_to_skip``, whose
    ``state_dict`` is the position in the epoch (``{"epoch", "batches", "num_batches"}``) and whose
    ``load_state_dict`` makes the next iteration continue after the consumed batches.

    Iteration is lazy: the underlying iterator (and any worker processes) is created at the first ``next()``, after
    Lightning has called ``set_epoch`` for the epoch, so workers always copy the dataset at the right epoch.
    """

    def state_dict(self) -> dict[str, int]:
        """The position: ``epoch``, ``batches`` of it yielded so far and ``num_batches`` in it."""
        epoch, batches = getattr(self, "_position", None) or (self.batch_sampler.epoch, 0)
        return {"epoch": epoch, "batches": batches, "num_batches": len(self)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Continue after ``state_dict["batches"]`` batches when the next iteration is over the saved epoch.

        A finished epoch (``batches >= num_batches``) needs no skipping: the next iteration is the next epoch's.
        """
        epoch, batches = int(state_dict["epoch"]), int(state_dict["batches"])
        saved_total, total = int(state_dict.get("num_batches", len(self))), len(self)
        if saved_total != total and batches < saved_total:
            warnings.warn(f"ResumableDataLoader: the checkpoint was taken after batch {batches} of {saved_total} in "
                           f"epoch {epoch}, but the epoch now has {total} batches (the data or batch size changed); "
                           "continuing after the same number of batches, so the order is not the uninterrupted one",
                          stacklevel=2)
        if batches < saved_total:
            self.batch_sampler.skip_batches(epoch, min(batches, total))
            self._position = (epoch, min(batches, total))

    def __iter__(self) -> Iterator[Any]:
        epoch, done = self.batch_sampler.epoch, self.batch_sampler.batches_to_skip()
        self._position = (epoch, done)
        for batch in super().__iter__():
            done += 1
            self._position = (epoch, done)
            yield batch
