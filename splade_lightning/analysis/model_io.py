"""What the analysis needs from a model, and how to encode an evaluation set with it.

The model is duck-typed (:class:`SparseModelLike`, e.g. :class:`splade_lightning.api.SparseModel` from
``splade_lightning.load``), so this package never imports the Lightning or data side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from splade_lightning.errors import ConfigError

__all__ = ["EncodedSet", "SparseModelLike", "dimension_names", "encode_set", "row_slices", "to_coo"]


class SparseModelLike(Protocol):
    """The part of :class:`splade_lightning.api.SparseModel` used here."""

    encoder: torch.nn.Module
    tokenizer: object

    @property
    def vocab_size(self) -> int: ...

    def encode_query(self, texts: Sequence[str], batch_size: int = 32) -> torch.Tensor: ...

    def encode_document(self, texts: Sequence[str], batch_size: int = 32) -> torch.Tensor: ...


@dataclass
class EncodedSet:
    """Queries and documents of one evaluation set encoded by one model.

    Attributes:
        query_ids: the Q query ids, in row order of ``query_reps``.
        query_reps: (Q, V) sparse COO query reps (float32, CPU).
        doc_ids: the N document ids, in row order of ``doc_reps``.
        doc_reps: (N, V) sparse COO document reps (float32, CPU).
    """

    query_ids: list[str]
    query_reps: torch.Tensor
    doc_ids: list[str]
    doc_reps: torch.Tensor


def to_coo(reps: torch.Tensor) -> torch.Tensor:
    """(N, V) dense / COO / CSR reps -> coalesced float32 sparse COO on the CPU (indices sorted by row, then dim),
    the layout every function here works on."""
    if not isinstance(reps, torch.Tensor) or reps.dim() != 2:
        raise ConfigError(f"reps must be a 2-D (N, V) tensor, got {reps!r:.80}")
    reps = reps.detach().to("cpu", torch.float32)
    return (reps if reps.layout == torch.sparse_coo else reps.to_sparse_coo()).coalesce()


def row_slices(reps: torch.Tensor) -> list[tuple[int, int]]:
    """``[(start, end)]`` of each row's entries in ``to_coo(reps).values()`` (rows with no entry: start == end)."""
    rows = to_coo(reps).indices()[0]
    ends = torch.cumsum(torch.bincount(rows, minlength=reps.shape[0]), 0).tolist()
    return list(zip([0, *ends[:-1]], ends))


def encode_set(model: SparseModelLike, queries: Mapping[str, str], corpus: Mapping[str, str],
               batch_size: int = 32) -> EncodedSet:
    """Encode every query (``encode_query``) and document (``encode_document``) of a set.

    Args:
        model: a loaded model, e.g. ``splade_lightning.load("splade-tiny")``.
        queries: query id -> text.
        corpus: document id -> text.
        batch_size: texts encoded at once.

    Returns:
        An :class:`EncodedSet` with COO reps in the iteration order of ``queries`` and ``corpus``.
    """
    if not queries or not corpus:
        raise ConfigError(f"encode_set: expected non-empty queries and corpus, got {len(queries)} queries and "
                          f"{len(corpus)} documents")
    query_reps = to_coo(model.encode_query(list(queries.values()), batch_size=batch_size))
    doc_reps = to_coo(model.encode_document(list(corpus.values()), batch_size=batch_size))
    return EncodedSet(list(queries), query_reps, list(corpus), doc_reps)


def dimension_names(model: SparseModelLike, ids: Sequence[int]) -> list[str]:
    """Readable name of each output dimension in ``ids``: the encoder's ``dimension_names`` (CSR: ``latent_<j>``) when
    it has one, else the tokenizer's token (``[{id}]`` when the tokenizer has none)."""
    ids = [int(i) for i in ids]
    names_fn = getattr(model.encoder, "dimension_names", None)
    names = names_fn(ids) if names_fn is not None else model.tokenizer.convert_ids_to_tokens(ids)
    return [name if name is not None else f"[{i}]" for i, name in zip(ids, names)]
