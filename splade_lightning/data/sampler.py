"""The training batch sampler: no duplicated text within a (global) batch, sharded by rank, resumable.

How Lightning 2.6 treats a custom ``batch_sampler`` (``trainer/connectors/data_connector.py`` and
``utilities/data.py``), and what these classes do about it:

* Under a distributed strategy with ``Trainer(use_distributed_sampler=True)`` (the default),
  ``_requires_distributed_sampler`` is true for any map-style DataLoader whose ``.sampler`` is not a
  ``DistributedSampler``; with a ``batch_sampler`` the DataLoader's ``.sampler`` is a plain ``SequentialSampler``, so
  Lightning builds ``DistributedSampler(dataset, num_replicas=world_size, rank=global_rank, shuffle=...)`` and
  re-instantiates the DataLoader. For a ``BatchSampler`` subclass created inside a ``*_dataloader`` hook (Lightning
  records its ``__init__`` arguments while the hook runs) it re-creates the batch sampler with the same arguments
  except ``sampler=<that DistributedSampler>``; a class without a ``sampler`` argument makes it raise ``TypeError``.
* :class:`NoDuplicatesBatchSampler` (and the evaluation sampler,
  :class:`~splade_lightning.data.eval_loaders.EvalBatchSampler`) therefore subclass ``BatchSampler`` and accept
  ``sampler``. The training sampler only reads ``num_replicas``/``rank`` from an injected ``DistributedSampler`` (the
  same values the DataModule passes itself) and keeps its own global no-duplicates order; the evaluation sampler
  ignores it, so every rank still sees every query and document. The result is the same whether or not Lightning
  injects, and with ``use_distributed_sampler=False``. Create them inside the ``*_dataloader`` hook (as
  :class:`~splade_lightning.data.datamodule.RetrievalDataModule` does): for one created elsewhere Lightning has no
  recorded arguments and calls ``cls(distributed_sampler, batch_size=..., drop_last=...)``, which
  would pass the DistributedSampler as the dataset (checked with a real 2-process ``ddp_spawn`` run).
* Lightning's ``_set_sampler_epoch`` calls ``set_epoch`` on ``dataloader.sampler`` and on
  ``dataloader.batch_sampler.sampler`` -- not on the batch sampler itself. So :class:`NoDuplicatesBatchSampler` keeps
  an :class:`EpochSampler` as ``.sampler``; its ``set_epoch`` sets the epoch on the dataset, which is where the epoch
  lives (it decides the texts, and it is the object shared by a Lightning re-instantiation).
* A resumed run continues mid-epoch: :class:`~splade_lightning.data.resumable_loader.ResumableDataLoader` saves how
  many batches of the epoch were consumed and calls :meth:`NoDuplicatesBatchSampler.skip_batches`, so the sampler
  starts after them without loading their data.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator

import numpy as np
from torch.utils.data import BatchSampler, DistributedSampler, Sampler

from splade_lightning.data.datasets import TrainingData
from splade_lightning.errors import ConfigError, DataError


class EpochSampler(Sampler[int]):
    """A seeded permutation of the dataset per ``(seed, epoch)``; ``set_epoch`` sets the dataset's epoch.

    Args:
        dataset: a training dataset (:class:`~splade_lightning.data.datasets.TrainingData`; holds the epoch).
        seed: shuffling seed.
    """

    def __init__(self, dataset: TrainingData, seed: int = 42):
        self.dataset = dataset
        self.seed = seed

    @property
    def epoch(self) -> int:
        return self.dataset.epoch

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch of the dataset (and so of the order and of the positive/negative choices)."""
        self.dataset.set_epoch(epoch)

    def permutation(self, epoch: int, shuffle_pass: int = 0) -> list[int]:
        """The order of pass ``shuffle_pass`` of ``epoch``: a deterministic function of ``(seed, epoch, pass)``."""
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, epoch, shuffle_pass])
        return rng.permutation(len(self.dataset)).tolist()

    def __iter__(self) -> Iterator[int]:
        return iter(self.permutation(self.epoch))

    def __len__(self) -> int:
        return len(self.dataset)


def no_duplicate_batches(order: list[int], texts: Callable[[int], frozenset[str]], batch_size: int,
                         drop_last: bool) -> Iterator[list[int]]:
    """One pass of the sentence-transformers NO_DUPLICATES algorithm over ``order``.

    A record joins the current batch only if none of its texts is already in the batch; skipped records stay (in
    order) for later batches. With ``drop_last`` incomplete batches are dropped (their records are not used).

    Args:
        order: record indices in visiting order.
        texts: index -> the record's texts this epoch.
        batch_size: records per batch.
        drop_last: drop incomplete batches.
    """
    following = list(range(1, len(order) + 1))
    if following:
        following[-1] = -1
    head = 0 if order else -1
    while head != -1:
        seen: set[str] = set()
        batch: list[int] = []
        current, previous = head, -1
        while current != -1 and len(batch) < batch_size:
            nxt, index = following[current], order[current]
            values = texts(index)
            if seen.isdisjoint(values):
                batch.append(index)
                seen.update(values)
                if previous == -1:
                    head = nxt
                else:
                    following[previous] = nxt
            else:
                previous = current
            current = nxt
        if len(batch) == batch_size or not drop_last:
            yield batch


class NoDuplicatesBatchSampler(BatchSampler):
    """Yields lists of dataset indices such that no text appears twice in a (global) batch.

    Duplicated texts are false negatives for in-batch InfoNCE. The algorithm is sentence-transformers'
    ``NO_DUPLICATES``: walk a seeded per-epoch permutation and add a record only if none of its texts (query, chosen
    positive and negatives this epoch) is already in the batch; skipped records wait for later batches. If one pass
    yields fewer full batches than :meth:`__len__` promises, further reshuffled passes fill the rest (a warning says
    how many; those records are repeats within the epoch).

    Under DDP the global batch of ``batch_size * num_replicas`` records is duplicate-free and rank ``r`` takes its
    ``r``-th slice, so every rank gets the same number of batches and no text is duplicated across ranks in a step.

    Args:
        dataset: a training dataset (:class:`~splade_lightning.data.datasets.TrainingData`).
        batch_size: records per batch on each process.
        drop_last: drop incomplete batches so every batch is full (required when ``num_replicas > 1``).
        seed: shuffling seed (the order is a function of ``(seed, epoch)``).
        num_replicas: number of processes (DDP world size).
        rank: this process's global rank.
        max_extra_passes: extra reshuffled passes allowed to fill the promised number of batches.
        sampler: set by Lightning under DDP; a ``DistributedSampler`` only supplies ``num_replicas`` and ``rank``.
    """

    def __init__(self, dataset: TrainingData, batch_size: int, drop_last: bool = True, seed: int = 42,
                 num_replicas: int = 1, rank: int = 0, max_extra_passes: int = 3, sampler: Sampler | None = None):
        if isinstance(dataset, Sampler):
            raise TypeError("NoDuplicatesBatchSampler got a sampler as its dataset: Lightning re-created a batch "
                            "sampler that was built outside a *_dataloader hook; build it inside train_dataloader()")
        if isinstance(sampler, DistributedSampler):
            num_replicas, rank = sampler.num_replicas, sampler.rank
        problems = []
        if not isinstance(batch_size, int) or batch_size <= 0:
            problems.append(f"batch_size must be a positive int, got {batch_size!r}")
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            problems.append(f"need num_replicas >= 1 and 0 <= rank < num_replicas, got {num_replicas=} {rank=}")
        if num_replicas > 1 and not drop_last:
            problems.append("drop_last=False is only supported with num_replicas=1 (ranks need equal batch counts)")
        if problems:
            raise ConfigError("NoDuplicatesBatchSampler: " + "; ".join(problems))
        self.dataset = dataset
        self.batch_size, self.drop_last, self.seed = batch_size, drop_last, seed
        self.num_replicas, self.rank, self.max_extra_passes = num_replicas, rank, max_extra_passes
        self.sampler = EpochSampler(dataset, seed)  # Lightning calls set_epoch on batch_sampler.sampler
        self._cache: tuple[int, list[list[int]]] | None = None
        self._skip: tuple[int, int] | None = None

    @property
    def epoch(self) -> int:
        return self.dataset.epoch

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (order and positive/negative choices); Lightning calls this through ``.sampler``."""
        self.sampler.set_epoch(epoch)

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.num_replicas

    def __len__(self) -> int:
        if self.drop_last:
            return len(self.dataset) // self.global_batch_size
        return len(self.global_batches(self.epoch))

    def global_batches(self, epoch: int) -> list[list[int]]:
        """All global batches of ``epoch`` (cached for the last epoch asked for).

        Raises:
            DataError: the data has too few distinct texts to fill :meth:`__len__` full batches.
        """
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        cache: dict[int, frozenset[str]] = {}

        def texts(index: int) -> frozenset[str]:
            if index not in cache:
                cache[index] = frozenset(self.dataset.texts(index, epoch))
            return cache[index]

        batches: list[list[int]] = []
        wanted = len(self.dataset) // self.global_batch_size if self.drop_last else None
        for shuffle_pass in range(1 + (self.max_extra_passes if self.drop_last else 0)):
            order = self.sampler.permutation(epoch, shuffle_pass)
            batches += no_duplicate_batches(order, texts, self.global_batch_size, self.drop_last)
            if shuffle_pass == 0:
                first_pass = len(batches)
            if wanted is None or len(batches) >= wanted:
                break
        if wanted is not None:
            self._check_filled(first_pass, len(batches), wanted, epoch)
            batches = batches[:wanted]
        self._cache = (epoch, batches)
        return batches

    def _check_filled(self, first_pass: int, made: int, wanted: int, epoch: int) -> None:
        if made < wanted:
            raise DataError(
                f"only {made} of {wanted} batches of {self.global_batch_size} records without a repeated text could "
                f"be formed in epoch {epoch} ({1 + self.max_extra_passes} passes): the training data has too few "
                "distinct texts for this batch size; lower the batch size or deduplicate the data")
        if first_pass < wanted:
            warnings.warn(
                f"NoDuplicatesBatchSampler: one pass over the data formed only {first_pass} of {wanted} duplicate-free "
                f"batches in epoch {epoch}; the other {wanted - first_pass} were filled from reshuffled passes, so "
                f"about {(wanted - first_pass) / wanted:.1%} of this epoch's records are repeats", stacklevel=2)

    def copy_cache_from(self, other: NoDuplicatesBatchSampler) -> None:
        """Reuse the batches ``other`` already computed when it is configured identically (saves one pass)."""
        keys = ("dataset", "batch_size", "drop_last", "seed", "num_replicas", "max_extra_passes")
        if all(getattr(self, k) is getattr(other, k) or getattr(self, k) == getattr(other, k) for k in keys):
            self._cache = other._cache

    def skip_batches(self, epoch: int, batches: int) -> None:
        """Make the next iteration start after the first ``batches`` batches if it is over ``epoch`` (used once, by
        the next iteration whatever its epoch; resuming a run mid-epoch)."""
        if batches < 0:
            raise ValueError(f"batches must be >= 0, got {batches}")
        self._skip = (epoch, batches)

    def batches_to_skip(self) -> int:
        """How many batches the next iteration skips (0 unless :meth:`skip_batches` named the current epoch)."""
        return self._skip[1] if self._skip is not None and self._skip[0] == self.epoch else 0

    def __iter__(self) -> Iterator[list[int]]:
        epoch, size = self.epoch, self.batch_size
        start = self.batches_to_skip()
        self._skip = None
        for batch in self.global_batches(epoch)[start:]:
            yield batch[self.rank * size:(self.rank + 1) * size] if self.num_replicas > 1 else batch
