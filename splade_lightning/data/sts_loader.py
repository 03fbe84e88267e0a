"""The evaluation loader of an STS set: both sentences of every pair, as document-kind
:class:`~splade_lightning.types.EncodeBatch` es carrying the set (``batch.eval_set``).

Both columns go through the ``document`` route, truncated to the evaluation document length: sentence-transformers'
``SparseEmbeddingSimilarityEvaluator`` encodes both with ``SparseEncoder.encode``, whose Router default route is
``document`` (sentence-transformers 6.2, ``base/modules/router.py``, ``Router.for_query_document``). Never sharded,
like the BEIR loaders (:mod:`splade_lightning.data.eval_loaders`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch.utils.data import Dataset

from splade_lightning.data.collate import EncodeCollator, EvalCollator
from splade_lightning.data.eval_loaders import EncodeItem, EvalBatchSampler, EvalDataLoader
from splade_lightning.formats.sts import StsData, text_id
from splade_lightning.prompts import check_prompts

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


class StsEncodeDataset(Dataset):
    """Every sentence of an STS set as a document :class:`~splade_lightning.data.eval_loaders.EncodeItem` with id
    ``"1:<row>"`` or ``"2:<row>"`` (:func:`~splade_lightning.formats.sts.text_id`), longest first (by characters) so
    that a batch needs little padding.

    Args:
        data: the STS set.
    """

    def __init__(self, data: StsData):
        self.name = data.name
        items = [EncodeItem("doc", text_id(column, row), text) for column, texts in ((1, data.sentences1),
                                                                                    (2, data.sentences2))
                 for row, text in enumerate(texts)]
        self.items = sorted(items, key=lambda item: -len(item.text))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> EncodeItem:
        return self.items[index]

    def batches(self, batch_size: int) -> list[list[int]]:
        """Index batches of at most ``batch_size`` texts, in order."""
        return [list(range(start, min(start + batch_size, len(self.items))))
                for start in range(0, len(self.items), batch_size)]


def sts_loader(data: StsData, tokenizer: PreTrainedTokenizerBase, max_length: int, batch_size: int,
               num_workers: int = 0, prompts: dict[str, str] | None = None) -> EvalDataLoader:
    """The loader of one STS set: its 2N sentences as documents (truncated to ``max_length`` tokens, with
    ``prompts["document"]`` prepended), ``batch_size`` texts per batch, every batch stamped with ``data``."""
    dataset = StsEncodeDataset(data)
    collator = EncodeCollator(tokenizer, max_length, "doc", data.name, check_prompts(prompts)["document"])
    collate = EvalCollator(collator, collator, eval_set=data)
    return EvalDataLoader(dataset, batch_sampler=EvalBatchSampler(dataset, batch_size), collate_fn=collate,
                          num_workers=num_workers)
