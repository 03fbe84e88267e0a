"""Typed batches passed from the collators to the LightningModules (tensors only; no strings but ids)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import torch

if TYPE_CHECKING:
    from splade_lightning.formats.beir import EvalData

#: Which encoder of a router encodes a text: ``"query"`` or ``"document"`` (``models.router.QueryDocRouter``, and any
#: encoder), or a route name of a ``models.router.Router``.
Route = str
#: The two names every encoder accepts: queries and documents.
ROUTES: tuple[str, ...] = ("query", "document")


@dataclass
class TrainBatch:
    """A training batch of B queries, each with one positive and ``num_negatives`` hard negatives.

    Documents are stored column-major, as sentence-transformers stacks its columns: rows ``0..B-1`` are the
    positives, rows ``B..2B-1`` the first negative of every query, and so on. Query ``i``'s positive is doc row ``i``.

    Attributes:
        query_input_ids: (B, Lq) token ids.
        query_attention_mask: (B, Lq) 1 for real tokens.
        doc_input_ids: (B * (1 + num_negatives), Ld) token ids.
        doc_attention_mask: (B * (1 + num_negatives), Ld).
        num_negatives: hard negatives per query (0 for pairs).
        query_route: the route (encoder) the query column goes through: ``"query"`` unless the data module's
            ``router_mapping`` says otherwise.
        doc_route: the route of the positive and negative columns (``"document"`` by default).
        teacher_scores: (B, 1 + num_negatives) teacher scores of each query's documents, positive first (column c
            of row i scores doc row ``c·B + i``), for distillation losses; ``None`` when the data has none.
        labels: (B,) float gold label of each (query, positive) pair -- a similarity score or a class label -- for the
            pair losses (CoSENT, AnglE, CosineSimilarity); ``None`` when the data has none (num_negatives is 0 then).
    """

    query_input_ids: torch.Tensor
    query_attention_mask: torch.Tensor
    doc_input_ids: torch.Tensor
    doc_attention_mask: torch.Tensor
    num_negatives: int = 0
    query_route: Route = "query"
    doc_route: Route = "document"
    teacher_scores: torch.Tensor | None = None
    labels: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return int(self.query_input_ids.shape[0])

    def to(self, device: torch.device | str) -> TrainBatch:
        """Move every tensor to ``device`` (Lightning calls this through ``transfer_batch_to_device``)."""
        move = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in self.__dict__.items()}
        return TrainBatch(**move)


@dataclass
class EncodeBatch:
    """A batch of texts of one kind to encode, from one evaluation dataset.

    Attributes:
        input_ids: (N, L) token ids.
        attention_mask: (N, L).
        ids: the N query or document ids, in row order.
        kind: ``"query"`` or ``"doc"``.
        dataset: name of the evaluation dataset the texts belong to.
        eval_set: the evaluation set itself (queries, corpus, qrels), set on every batch of the data module's
            evaluation loaders; ``None`` for texts that are not from one (e.g. indexing a corpus).
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    ids: list[str] = field(default_factory=list)
    kind: Literal["query", "doc"] = "doc"
    dataset: str = ""
    eval_set: EvalData | None = None

    def to(self, device: torch.device | str) -> EncodeBatch:
        """Move the tensors to ``device`` (the ids and the evaluation set are carried over as they are)."""
        return EncodeBatch(self.input_ids.to(device), self.attention_mask.to(device), self.ids, self.kind, self.dataset,
                           self.eval_set)
