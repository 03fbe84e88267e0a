"""Data layer: readers (JSONL/TSV/parquet/HF datasets, BEIR), datasets, samplers, collators and the DataModule.

Only :mod:`.datamodule` imports Lightning (loaded lazily, so the collators stay importable without it); only
:mod:`.collate` tokenises.
"""

from __future__ import annotations

from .beir import BeirSet, EvalData, load_beir, load_beir_set
from .collate import EncodeCollator, EvalCollator, TrainCollator
from .datasets import EncodeDataset, EncodeItem, TrainDataset, TrainExample
from .readers import TrainRecord, read_train_records
from .sampler import EvalBatchSampler, NoDuplicatesBatchSampler

__all__ = [
    "BeirSet",
    "EncodeCollator",
    "EncodeDataset",
    "EncodeItem",
    "EvalBatchSampler",
    "EvalCollator",
    "EvalData",
    "NoDuplicatesBatchSampler",
    "RetrievalDataModule",
    "TrainCollator",
    "TrainDataset",
    "TrainExample",
    "TrainRecord",
    "load_beir",
    "load_beir_set",
    "read_train_records",
]


def __getattr__(name: str):
    if name == "RetrievalDataModule":
        from .datamodule import RetrievalDataModule

        return RetrievalDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
