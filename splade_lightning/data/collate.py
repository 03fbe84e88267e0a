"""Collators: the only place where text is tokenised. They turn lists of strings into typed tensor batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import torch

from splade_lightning.errors import ConfigError
from splade_lightning.prompts import check_prompts, with_prompt
from splade_lightning.types import ROUTES, EncodeBatch, Route, TrainBatch

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from splade_lightning.formats.beir import EvalData


def _check_length(name: str, value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{name} must be a positive int, got {value!r}")


def tokenize(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int,
             pad_to_multiple_of: int | None = None):
    """Tokenise ``texts``, padded to the longest and truncated to ``max_length``; no ``token_type_ids``.

    ``pad_to_multiple_of`` appends masked pad columns up to the next multiple of it, never beyond ``max_length``
    (unlike the tokenizer's own option of that name, which may exceed it): batches then come in a few shapes, so the
    allocator reuses freed blocks instead of splitting them (see :class:`TrainCollator`). The columns go on the right
    whatever the tokenizer's padding side: absolute position embeddings number positions from the first column, so
    columns added on the left would move every text's tokens; on the right they leave the tokenizer's own layout.

    Raises:
        ConfigError: ``pad_to_multiple_of`` is not a positive int.

    Returns:
        ``(input_ids, attention_mask)``, each ``(N, L)`` with ``L <= max_length``.
    """
    encoded = tokenizer(list(texts), padding="longest", truncation=True, max_length=max_length,
                        return_tensors="pt", return_token_type_ids=False)
    input_ids, attention_mask = encoded["input_ids"], encoded["attention_mask"]
    if pad_to_multiple_of is None:
        return input_ids, attention_mask
    _check_length("pad_to_multiple_of", pad_to_multiple_of)
    length = input_ids.shape[1]
    extra = min(max_length, -(-length // pad_to_multiple_of) * pad_to_multiple_of) - length
    if extra <= 0:
        return input_ids, attention_mask
    return (torch.nn.functional.pad(input_ids, (0, extra), value=tokenizer.pad_token_id),
            torch.nn.functional.pad(attention_mask, (0, extra), value=0))


class TrainCollator:
    """Tokenise training examples ``(query, [positive, negative_1, ..., negative_n])`` into a :class:`TrainBatch`.

    Documents are laid out column-major: rows ``0..B-1`` are the positives, rows ``B..2B-1`` every query's first
    negative, and so on, so query ``i``'s positive is doc row ``i``.

    Args:
        tokenizer: a HF tokenizer.
        max_query_length: queries are truncated to this many tokens.
        max_doc_length: documents are truncated to this many tokens.
        query_route: route of the query column (stamped on the batch for a router: ``"query"``, ``"document"`` or a
            ``Router``'s route name).
        doc_route: route of the positive and negative columns.
        prompts: the model's ``{route: text}`` prompts (:mod:`splade_lightning.prompts`): each column's texts get the
            prompt of its route prepended before tokenisation, so the prompt counts against the max length.
        pad_to_multiple_of: pad queries and documents to a multiple of this many tokens (never beyond their max
            length; ``None``: to the longest text of the batch). The padding is masked and appended on the right, so
            in eval mode the representations are the same up to float rounding; in training, dropout draws its
            masks over the wider batch, so a run is another random realisation of the same training (as another
            seed would be). What changes is that the batches come in a few shapes instead of one per longest text,
            and glibc's heap, which otherwise splits the freed activations of one shape to serve the next, stays
            compact.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_query_length: int = 32, max_doc_length: int = 256,
                 query_route: Route = "query", doc_route: Route = "document",
                 prompts: dict[str, str] | None = None, pad_to_multiple_of: int | None = None):
        _check_length("max_query_length", max_query_length)
        _check_length("max_doc_length", max_doc_length)
        if pad_to_multiple_of is not None:
            _check_length("pad_to_multiple_of", pad_to_multiple_of)
        self.pad_to_multiple_of = pad_to_multiple_of
        for name, route in (("query_route", query_route), ("doc_route", doc_route)):
            if not isinstance(route, str) or not route:
                raise ConfigError(f"{name}={route!r}: expected a route name, e.g. one of {list(ROUTES)}")
        self.tokenizer = tokenizer
        self.max_query_length = max_query_length
        self.max_doc_length = max_doc_length
        self.query_route, self.doc_route = query_route, doc_route
        self.prompts = check_prompts(prompts)

    def __call__(self, examples: Sequence[tuple]) -> TrainBatch:
        """Collate B examples ``(query, docs)``, ``(query, docs, scores)`` or ``(query, docs, scores, label)`` (e.g.
        :class:`TrainExample`) into query ``(B, Lq)`` and doc ``(B * (1 + n), Ld)`` tensors, plus ``teacher_scores``
        (B, 1 + n) when every example has scores and ``labels`` (B,) when every example has a label."""
        if not examples:
            raise ValueError("TrainCollator: empty batch")
        docs_per_query = {len(example[1]) for example in examples}
        if len(docs_per_query) != 1 or 0 in docs_per_query:
            raise ValueError(f"TrainCollator: every example needs the same number (>= 1) of docs, got {docs_per_query}")
        n_docs = docs_per_query.pop()
        queries = [example[0] for example in examples]
        docs = [example[1][column] for column in range(n_docs) for example in examples]
        queries = with_prompt(self.prompts[self.query_route], queries)
        docs = with_prompt(self.prompts[self.doc_route], docs)
        query_ids, query_mask = tokenize(self.tokenizer, queries, self.max_query_length, self.pad_to_multiple_of)
        doc_ids, doc_mask = tokenize(self.tokenizer, docs, self.max_doc_length, self.pad_to_multiple_of)
        return TrainBatch(query_ids, query_mask, doc_ids, doc_mask, num_negatives=n_docs - 1,
                          query_route=self.query_route, doc_route=self.doc_route,
                          teacher_scores=_teacher_scores(examples, n_docs), labels=_labels(examples))


def _labels(examples: Sequence[tuple]) -> torch.Tensor | None:
    """(B,) float32 pair labels when every example carries one (``TrainExample.label``); None when none does."""
    labels = [example[3] if len(example) > 3 else None for example in examples]
    if all(label is None for label in labels):
        return None
    if any(label is None for label in labels):
        raise ValueError("TrainCollator: a pair label must be given for every example of a batch or for none")
    return torch.tensor(labels, dtype=torch.float32)


def _teacher_scores(examples: Sequence[tuple], n_docs: int) -> torch.Tensor | None:
    """(B, n_docs) float32 scores when every example carries ``n_docs`` scores; None when none does."""
    scores = [example[2] if len(example) > 2 else None for example in examples]
    if all(s is None for s in scores):
        return None
    if any(s is None or len(s) != n_docs for s in scores):
        raise ValueError(f"TrainCollator: teacher scores must be given for every example and every one of its "
                         f"{n_docs} docs, got lengths {[None if s is None else len(s) for s in scores]}")
    return torch.tensor(scores, dtype=torch.float32)


class EncodeCollator:
    """Tokenise ``(id, text)`` pairs of one kind into an :class:`EncodeBatch`.

    Args:
        tokenizer: a HF tokenizer.
        max_length: texts are truncated to this many tokens.
        kind: ``"query"`` or ``"doc"``.
        dataset: name of the evaluation set the texts belong to.
        prompt: text prepended to every text before tokenisation (the model's prompt of the kind's route; it counts
            against ``max_length``, as in sentence-transformers).
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_length: int, kind: Literal["query", "doc"] = "doc",
                 dataset: str = "", prompt: str = ""):
        _check_length("max_length", max_length)
        if kind not in ("query", "doc"):
            raise ConfigError(f"kind must be 'query' or 'doc', got {kind!r}")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.kind = kind
        self.dataset = dataset
        if not isinstance(prompt, str):
            raise ConfigError(f"prompt={prompt!r}: expected a string (the text prepended to every {kind})")
        self.prompt = prompt

    def __call__(self, items: Sequence[tuple[str, str]]) -> EncodeBatch:
        """Collate N ``(id, text)`` pairs into ``(N, L)`` tensors plus the ids in row order."""
        ids = [str(item[0]) for item in items]
        texts = with_prompt(self.prompt, [item[1] for item in items])
        input_ids, attention_mask = tokenize(self.tokenizer, texts, self.max_length)
        return EncodeBatch(input_ids, attention_mask, ids=ids, kind=self.kind, dataset=self.dataset)


class EvalCollator:
    """Collate ``EncodeItem(kind, id, text)`` batches of one kind with the query or the document collator, and stamp
    them with the evaluation set they come from.

    Args:
        query_collator: used for batches of queries.
        doc_collator: used for batches of documents.
        eval_set: the evaluation set the texts belong to, set as ``batch.eval_set``. In a DataLoader worker process it
            is left out (it would be pickled with every batch) and not sent to the worker;
            :class:`~splade_lightning.data.eval_loaders.EvalDataLoader` attaches it in the main process.
    """

    def __init__(self, query_collator: EncodeCollator, doc_collator: EncodeCollator,
                 eval_set: EvalData | None = None):
        self.collators = {"query": query_collator, "doc": doc_collator}
        self.eval_set = eval_set

    def __getstate__(self) -> dict:
        return {**self.__dict__, "eval_set": None}

    def __call__(self, items: Sequence[tuple[str, str, str]]) -> EncodeBatch:
        """Collate N items, all of the same kind, into an :class:`EncodeBatch`."""
        kinds = {item[0] for item in items}
        if len(kinds) != 1 or not kinds <= set(self.collators):
            raise ValueError(f"EvalCollator: a batch must hold texts of one kind ('query' or 'doc'), got {kinds}")
        batch = self.collators[kinds.pop()]([(item[1], item[2]) for item in items])
        if torch.utils.data.get_worker_info() is None:
            batch.eval_set = self.eval_set
        return batch
