"""Data layer: readers (JSONL/TSV/parquet/HF datasets, BEIR), datasets, samplers, collators and the DataModules.

Only :mod:`.datamodule` and :mod:`.distill_datamodule` import Lightning (loaded lazily, so the collators stay
importable without it); only :mod:`.collate` tokenises. The distillation data (:mod:`.text_store`, :mod:`.id_records`,
:mod:`.id_dataset`, :mod:`.scored_text`) is loaded lazily too (it imports pyarrow).
"""

from __future__ import annotations

from splade_lightning.data.collate import EncodeCollator, EvalCollator, TrainCollator
from splade_lightning.data.datasets import EncodeDataset, EncodeItem, TrainDataset, TrainExample
from splade_lightning.data.readers import TrainRecord, read_train_records
from splade_lightning.data.sampler import EvalBatchSampler, NoDuplicatesBatchSampler
from splade_lightning.formats.beir import BeirSet, EvalData, load_beir, load_beir_set

__all__ = [
    "BeirSet",
    "DistillationDataModule",
    "EncodeCollator",
    "EncodeDataset",
    "EncodeItem",
    "EvalBatchSampler",
    "EvalCollator",
    "EvalData",
    "IdTrainDataset",
    "NoDuplicatesBatchSampler",
    "RetrievalDataModule",
    "ScoredTextDataset",
    "TextStore",
    "TrainCollator",
    "TrainDataset",
    "TrainExample",
    "TrainRecord",
    "load_beir",
    "load_beir_set",
    "read_train_records",
]


_LAZY = {"RetrievalDataModule": "datamodule", "DistillationDataModule": "distill_datamodule",
         "IdTrainDataset": "id_dataset", "ScoredTextDataset": "scored_text", "TextStore": "text_store"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
