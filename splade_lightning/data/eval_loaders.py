"""Evaluation loaders: one per BEIR set, all its queries then all its documents, as
:class:`~splade_lightning.types.EncodeBatch` carrying the set they come from (``batch.eval_set``).

Never sharded: under DDP every rank encodes every text (:class:`EvalBatchSampler` ignores an injected
``DistributedSampler``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal, NamedTuple

from torch.utils.data import BatchSampler, DataLoader, Dataset, Sampler, SequentialSampler

from splade_lightning.data.collate import EncodeCollator, EvalCollator
from splade_lightning.errors import ConfigError
from splade_lightning.formats.beir import EvalData
from splade_lightning.prompts import check_prompts
from splade_lightning.types import EncodeBatch

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class EncodeItem(NamedTuple):
    """One text to encode.

    Attributes:
        kind: ``"query"`` or ``"doc"``.
        id: the query or document id.
        text: the text.
    """

    kind: Literal["query", "doc"]
    id: str
    text: str


class EncodeDataset(Dataset):
    """Every query, then every document of one evaluation set, as :class:`EncodeItem`.

    Documents are ordered longest first (by character count, a cheap proxy for token count) so that length-similar
    texts share a batch and little padding is needed.

    Args:
        data: the evaluation set.
    """

    def __init__(self, data: EvalData):
        self.name = data.name
        docs = sorted(data.corpus.items(), key=lambda item: -len(item[1]))
        self.items = [EncodeItem("query", qid, text) for qid, text in data.queries.items()]
        self.num_queries = len(self.items)
        self.items += [EncodeItem("doc", did, text) for did, text in docs]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> EncodeItem:
        return self.items[index]

    def batches(self, batch_size: int) -> list[list[int]]:
        """Index batches of at most ``batch_size``: queries first, then documents; each batch holds one kind."""
        spans = [(0, self.num_queries), (self.num_queries, len(self.items))]
        return [list(range(start, min(start + batch_size, end))) for begin, end in spans
                for start in range(begin, end, batch_size)]


class EvalBatchSampler(BatchSampler):
    """Fixed batches over an :class:`EncodeDataset`: all queries, then all documents.

    Never sharded: under DDP every rank yields every batch (the evaluator needs every query and document), even when
    Lightning injects a ``DistributedSampler`` through ``sampler``, which is ignored.

    Args:
        dataset: the texts of one evaluation set.
        batch_size: texts per batch; each batch holds one kind.
        sampler: set by Lightning under DDP; ignored.
    """

    def __init__(self, dataset: EncodeDataset, batch_size: int, sampler: Sampler | None = None):
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ConfigError(f"EvalBatchSampler: batch_size must be a positive int, got {batch_size!r}")
        self.dataset = dataset
        self.batch_size, self.drop_last = batch_size, False
        self.sampler = SequentialSampler(dataset)  # tells Lightning this loader is not shuffled
        self.batches = dataset.batches(batch_size)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)


class EvalDataLoader(DataLoader):
    """A DataLoader whose :class:`EncodeBatch` es carry the evaluation set of its collator (an
    :class:`~splade_lightning.data.collate.EvalCollator`), attached in the main process.

    Batches made in worker processes come back without it (it would be pickled with every batch); this loader attaches
    the main process's :class:`EvalData` to each. No ``__init__`` is defined, so Lightning can re-create the loader
    under DDP exactly like a DataLoader (the collator, and so the set, is one of its arguments).
    """

    def __iter__(self) -> Iterator[EncodeBatch]:
        eval_set = getattr(self.collate_fn, "eval_set", None)
        for batch in super().__iter__():
            batch.eval_set = eval_set
            yield batch


def eval_loader(data: EvalData, tokenizer: PreTrainedTokenizerBase, max_query_length: int, max_doc_length: int,
                batch_size: int, num_workers: int = 0, prompts: dict[str, str] | None = None) -> EvalDataLoader:
    """The loader of one evaluation set: its queries (truncated to ``max_query_length`` tokens), then its documents
    (``max_doc_length``), ``batch_size`` texts per batch, every batch stamped with ``data``; queries get
    ``prompts["query"]`` and documents ``prompts["document"]`` prepended (:mod:`splade_lightning.prompts`)."""
    dataset = EncodeDataset(data)
    prompts = check_prompts(prompts)
    collate = EvalCollator(EncodeCollator(tokenizer, max_query_length, "query", data.name, prompts["query"]),
                           EncodeCollator(tokenizer, max_doc_length, "doc", data.name, prompts["document"]),
                           eval_set=data)
    return EvalDataLoader(dataset, batch_sampler=EvalBatchSampler(dataset, batch_size), collate_fn=collate,
                          num_workers=num_workers)
