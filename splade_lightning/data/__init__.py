"""Data layer: training sources, datasets, samplers, collators, evaluation loaders and the DataModule.

Layout, by kind of training source (each is a :class:`TrainSource` injected as ``RetrievalDataModule(train=...)``):

* :mod:`.text`: plain-text records (query, positives, negatives): :class:`TextTriplets`, ``TrainDataset``.
* :mod:`.scored`: text-inline scored groups ``{query, pos, neg, pos_scores, neg_scores}``: :class:`ScoredGroups`.
* :mod:`.pairs`: labelled text pairs ``(text1, text2, score | label)``: :class:`TextPairs`.
* :mod:`.ids`: id-based files over a BEIR corpus (memory-mapped text stores, Arrow caches, hard negatives, teacher
  scores): :class:`IdGroups`.

Shared: :mod:`.datamodule` (the one ``RetrievalDataModule``), :mod:`.source`, :mod:`.datasets`, :mod:`.groups` and
:mod:`.negatives` (the per-epoch choice in scored and id groups), :mod:`.sampler`, :mod:`.resumable_loader`,
:mod:`.collate` (the only place that tokenises), :mod:`.eval_loaders`, :mod:`.arguments`. Only :mod:`.datamodule`
imports Lightning; it is loaded lazily, so the collators and sources stay importable without it.
"""

from __future__ import annotations

from splade_lightning.data.collate import EncodeCollator, EvalCollator, TrainCollator
from splade_lightning.data.datasets import TrainExample
from splade_lightning.data.eval_loaders import EncodeDataset, EncodeItem, EvalBatchSampler
from splade_lightning.data.ids.dataset import IdTrainDataset
from splade_lightning.data.ids.source import IdGroups
from splade_lightning.data.ids.text_store import TextStore
from splade_lightning.data.pairs.source import PairDataset, TextPairs
from splade_lightning.data.sampler import NoDuplicatesBatchSampler
from splade_lightning.data.scored.dataset import ScoredTextDataset
from splade_lightning.data.scored.source import ScoredGroups
from splade_lightning.data.source import TrainSource
from splade_lightning.data.text.dataset import TrainDataset
from splade_lightning.data.text.records import TrainRecord, read_train_records
from splade_lightning.data.text.source import TextTriplets
from splade_lightning.formats.beir import BeirSet, EvalData, load_beir, load_beir_set

__all__ = [
    "BeirSet",
    "EncodeCollator",
    "EncodeDataset",
    "EncodeItem",
    "EvalBatchSampler",
    "EvalCollator",
    "EvalData",
    "IdGroups",
    "IdTrainDataset",
    "NoDuplicatesBatchSampler",
    "PairDataset",
    "RetrievalDataModule",
    "ScoredGroups",
    "ScoredTextDataset",
    "TextPairs",
    "TextStore",
    "TextTriplets",
    "TrainCollator",
    "TrainDataset",
    "TrainExample",
    "TrainRecord",
    "TrainSource",
    "load_beir",
    "load_beir_set",
    "read_train_records",
]


def __getattr__(name: str):
    if name == "RetrievalDataModule":  # imports lightning: loaded on first use
        from splade_lightning.data.datamodule import RetrievalDataModule

        return RetrievalDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
