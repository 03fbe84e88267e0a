"""Corpus encoding through Lightning's predict loop: a sharded data module, an encoder module and a shard writer.

Shard ``s`` holds documents ``s * shard_size`` up to ``(s + 1) * shard_size`` (file order). Under DDP, rank ``r`` of
``W`` encodes the shards ``s`` with ``s % W == r`` that are not yet complete on disk, so every rank writes its own
shards and a re-run with another number of devices reuses what exists. Batches never straddle shards; inside a shard
documents are batched by decreasing text length (little padding), and the writer puts the rows back in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import nn
from torch.utils.data import DataLoader, Sampler

from splade_lightning.data.collate import EncodeCollator
from splade_lightning.formats.index_store import shard_is_complete, shard_ranges, write_shard

__all__ = ["CorpusPredictData", "DocEncoder", "ShardWriter", "sparse_rows"]


def sparse_rows(reps: torch.Tensor, top_k: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CSR parts of a dense (B, V) batch of reps, optionally keeping only each row's ``top_k`` largest weights.

    Ties at the cut-off keep the lowest dimension ids. Zero weights are never kept.

    Returns:
        ``(counts (B,), indices (nnz,), values (nnz,))`` on the CPU; indices ascend within each row.
    """
    reps = reps.float()
    if top_k is not None and top_k < reps.shape[1]:
        # stable descending sort: among equal weights the lower dimension id comes first
        order = torch.sort(reps, dim=1, descending=True, stable=True).indices[:, :top_k]
        kept = torch.zeros_like(reps)
        kept.scatter_(1, order, reps.gather(1, order))
        reps = kept
    nz = reps.nonzero()
    counts = torch.bincount(nz[:, 0], minlength=reps.shape[0])
    return counts.cpu(), nz[:, 1].cpu(), reps[nz[:, 0], nz[:, 1]].cpu()


class DocEncoder(L.LightningModule):
    """Wrap a document encoder for ``Trainer.predict``: a batch of tokens in, its sparse rows out.

    Args:
        encoder: a module with ``encode_doc(input_ids, attention_mask) -> (B, V)``.
        top_k: keep only each document's ``top_k`` largest weights (None: keep all).
    """

    def __init__(self, encoder: nn.Module, top_k: int | None = None):
        super().__init__()
        self.encoder = encoder
        self.top_k = top_k

    def predict_step(self, batch: dict, batch_idx: int) -> dict:
        """``{"positions", "counts", "indices", "values"}`` of one batch (CPU tensors)."""
        tokens = batch["tokens"]
        reps = self.encoder.encode_doc(tokens.input_ids, tokens.attention_mask)
        counts, indices, values = sparse_rows(reps, self.top_k)
        return {"positions": batch["positions"], "counts": counts, "indices": indices, "values": values}


class _Collate:
    def __init__(self, collator: EncodeCollator):
        self.collator = collator

    def __call__(self, items: Sequence[tuple[int, str, str]]) -> dict:
        return {"positions": torch.tensor([item[0] for item in items]),
                "tokens": self.collator([(item[1], item[2]) for item in items])}


class _FixedBatches(Sampler[list[int]]):
    """A precomputed list of batches (Lightning's predict loop wraps batch samplers, so a plain list will not do)."""

    def __init__(self, batches: list[list[int]]):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class CorpusPredictData(L.LightningDataModule):
    """Predict batches of this rank's unfinished shards.

    Args:
        ids: all N document ids, in file order.
        texts: their texts.
        collator: tokenises ``(id, text)`` pairs.
        root: the index directory (to skip complete shards).
        shard_size: documents per shard.
        value_dtype: stored value dtype (a shard stored with another one is recomputed).
        batch_size: documents per batch.
    """

    def __init__(self, ids: Sequence[str], texts: Sequence[str], collator: EncodeCollator, root: str | Path,
                 shard_size: int, value_dtype: str, batch_size: int):
        super().__init__()
        self.ids, self.texts, self.collator = ids, texts, collator
        self.root, self.shard_size, self.value_dtype, self.batch_size = Path(root), shard_size, value_dtype, batch_size
        self.pending: list[int] = []

    def pending_shards(self, rank: int, world_size: int) -> list[int]:
        """Shards of ``rank`` whose files are missing or fail validation."""
        ranges = shard_ranges(len(self.ids), self.shard_size)
        return [s for s in range(rank, len(ranges), world_size)
                if not shard_is_complete(self.root, s, ranges[s][1] - ranges[s][0], self.value_dtype)]

    def _batches(self) -> list[list[int]]:
        ranges = shard_ranges(len(self.ids), self.shard_size)
        batches = []
        for shard in self.pending:
            start, end = ranges[shard]
            order = sorted(range(start, end), key=lambda i: (-len(self.texts[i]), i))
            batches += [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        return batches

    def predict_dataloader(self) -> DataLoader:
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        self.pending = self.pending_shards(rank, world)
        items = [(i, self.ids[i], self.texts[i]) for i in range(len(self.ids))]
        return DataLoader(items, batch_sampler=_FixedBatches(self._batches()), collate_fn=_Collate(self.collator))


class ShardWriter(BasePredictionWriter):
    """Collect predicted rows per shard; write a shard (atomically, meta last) as soon as all its rows are in.

    Args:
        root: the index directory.
        ids: all N document ids, in file order.
        shard_size: documents per shard.
        value_dtype: ``"float32"`` or ``"float16"``.
    """

    def __init__(self, root: str | Path, ids: Sequence[str], shard_size: int, value_dtype: str):
        super().__init__(write_interval="batch")
        self.root, self.ids, self.shard_size, self.value_dtype = Path(root), ids, shard_size, value_dtype
        self.buffers: dict[int, dict[int, tuple[np.ndarray, np.ndarray]]] = {}
        self.written: list[int] = []

    def write_on_batch_end(self, trainer, pl_module, prediction, batch_indices, batch, batch_idx,
                           dataloader_idx=0) -> None:
        ends = np.cumsum(prediction["counts"].numpy())
        indices, values = prediction["indices"].numpy(), prediction["values"].numpy()
        for row, position in enumerate(prediction["positions"].tolist()):
            lo = ends[row - 1] if row else 0
            shard = position // self.shard_size
            self.buffers.setdefault(shard, {})[position] = (indices[lo:ends[row]], values[lo:ends[row]])
            if len(self.buffers[shard]) == self._rows(shard):
                self._flush(shard)

    def _rows(self, shard: int) -> int:
        return min(self.shard_size, len(self.ids) - shard * self.shard_size)

    def _flush(self, shard: int) -> None:
        rows = self.buffers.pop(shard)
        start = shard * self.shard_size
        ordered = [rows[start + i] for i in range(len(rows))]
        indptr = np.zeros(len(ordered) + 1, dtype=np.int64)
        np.cumsum([r[0].size for r in ordered], out=indptr[1:])
        indices = np.concatenate([r[0] for r in ordered]) if ordered else np.zeros(0, np.int32)
        values = np.concatenate([r[1] for r in ordered]) if ordered else np.zeros(0, np.float32)
        write_shard(self.root, shard, self.ids[start:start + len(ordered)], indptr, indices, values, self.value_dtype)
        self.written.append(shard)
