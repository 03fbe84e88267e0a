"""QueryDocRouter: queries through one encoder, documents through another, in one shared vocabulary space."""

from __future__ import annotations

import os

import torch

from splade_lightning.errors import ConfigError
from splade_lightning.models.base import SparseEncoderBase
from splade_lightning.types import ROUTES


class QueryDocRouter(SparseEncoderBase):
    """Route queries to ``query_encoder`` and documents to ``doc_encoder`` (the sentence-transformers ``Router``
    for inference-free SPLADE; Geng et al., arXiv:2411.04403).

    Both encoders map (B, L) token ids of ONE shared tokenizer to (B, V) vectors in the same vocabulary space, so a
    query-document score is a dot product. The constructor checks this: equal output widths, and identical
    vocabularies when the two name different tokenizers.

    Optionally the score is IDF-aware (arXiv:2411.04403, §3): ``s(q, d) = Σ_v idf(v)·q_v·d_v`` with a fixed IDF
    table. The factor is applied to the query vector, so training, evaluation and the exported model all score
    alike; an export folds it into the query weights.

    Args:
        doc_encoder: the document side, e.g. ``splade_lightning.models.SpladeEncoder``.
        query_encoder: the query side, e.g. ``splade_lightning.models.StaticSparseEncoder``; default: a trainable
            static encoder initialised at 1 over ``doc_encoder``'s tokenizer and width.
        score_idf: IDF table (OpenSearch ``idf.json``) for IDF-aware scoring; ``None`` for plain dot products.
            Tokens it does not list get 1; negative values are clamped to 0.
    """

    def __init__(self, doc_encoder: SparseEncoderBase, query_encoder: SparseEncoderBase | None = None,
                 score_idf: str | None = None):
        super().__init__()
        from splade_lightning.models.static import StaticSparseEncoder

        if query_encoder is None:
            query_encoder = StaticSparseEncoder(doc_encoder.tokenizer_name_or_path, vocab_size=doc_encoder.vocab_size)
        _check_compatible(query_encoder, doc_encoder)
        self.query_encoder = query_encoder
        self.doc_encoder = doc_encoder
        self.register_buffer("score_weights", _score_weights(score_idf, doc_encoder), persistent=True)

    @property
    def vocab_size(self) -> int:
        """Output width V (shared by both routes)."""
        return self.doc_encoder.vocab_size

    @property
    def tokenizer_name_or_path(self) -> str:
        """The shared tokenizer (the document encoder's)."""
        return self.doc_encoder.tokenizer_name_or_path

    @property
    def routes(self) -> dict[str, SparseEncoderBase]:
        """Route name -> encoder."""
        return {"query": self.query_encoder, "document": self.doc_encoder}

    def encode_query(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Query route: (B, L) -> (B, V), times the IDF-aware score weights when configured."""
        reps = self.query_encoder.encode_query(input_ids, attention_mask)
        return reps * self.score_weights.to(reps.dtype)  # all ones (exact) without score_idf

    def encode_doc(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Document route: (B, L) -> (B, V)."""
        return self.doc_encoder.encode_doc(input_ids, attention_mask)

    def encode(self, route: str, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Encode through ``route`` (``"query"`` or ``"document"``)."""
        return encode_route(self, route, input_ids, attention_mask)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Texts without a route are documents (the sentence-transformers default route): (B, L) -> (B, V)."""
        return self.encode_doc(input_ids, attention_mask)

    def query_term_weights(self) -> torch.Tensor | None:
        """(V,) effective query weight per term (IDF-aware factor included) for a static query side, else None."""
        if not hasattr(self.query_encoder, "term_weights"):
            return None
        return self.query_encoder.term_weights() * self.score_weights

    def export_config(self) -> dict:
        """Settings needed to rebuild this router (see ``models/serialization.py``)."""
        return {"architecture": "inference_free", "doc": self.doc_encoder.export_config(),
                "query": self.query_encoder.export_config()}


def encode_route(encoder: SparseEncoderBase, route: str, input_ids: torch.Tensor,
                 attention_mask: torch.Tensor) -> torch.Tensor:
    """Encode (B, L) ids through ``route``: ``"query"`` -> ``encoder.encode_query``, ``"document"`` ->
    ``encoder.encode_doc`` (one function for a single SPLADE encoder, two encoders for a router) -> (B, V)."""
    if route == "query":
        return encoder.encode_query(input_ids, attention_mask)
    if route == "document":
        return encoder.encode_doc(input_ids, attention_mask)
    raise ConfigError(f"{type(encoder).__name__}: unknown route {route!r}; available routes: {list(ROUTES)}")


def _check_compatible(query_encoder: SparseEncoderBase, doc_encoder: SparseEncoderBase) -> None:
    """One vocabulary space: equal output widths and the same tokenizer vocabulary on both routes."""
    for side, encoder in (("query_encoder", query_encoder), ("doc_encoder", doc_encoder)):
        missing = [a for a in ("vocab_size", "tokenizer_name_or_path", "encode_query", "encode_doc")
                   if not hasattr(encoder, a)]
        if missing:
            raise ConfigError(f"QueryDocRouter: {side} ({type(encoder).__name__}) lacks {missing}; expected an "
                              "encoder such as SpladeEncoder or StaticSparseEncoder")
    if query_encoder.vocab_size != doc_encoder.vocab_size:
        raise ConfigError(
            f"QueryDocRouter: the query route has {query_encoder.vocab_size} dimensions but the document route has "
            f"{doc_encoder.vocab_size}; both must share one vocabulary space (for a StaticSparseEncoder set "
            f"vocab_size: {doc_encoder.vocab_size})")
    q_name, d_name = str(query_encoder.tokenizer_name_or_path), str(doc_encoder.tokenizer_name_or_path)
    if q_name != d_name and _vocab(q_name) != _vocab(d_name):
        raise ConfigError(f"QueryDocRouter: the query tokenizer {q_name!r} and the document tokenizer {d_name!r} "
                          "have different vocabularies; both routes must use one tokenizer")


def _vocab(name: str) -> dict[str, int]:
    from splade_lightning.hub import load_tokenizer

    return load_tokenizer(name).get_vocab()


def _score_weights(score_idf: str | os.PathLike | None, doc_encoder: SparseEncoderBase) -> torch.Tensor:
    """(V,) IDF-aware scoring factors relu(idf) (1 for unlisted tokens), or ones."""
    if score_idf is None:
        return torch.ones(doc_encoder.vocab_size)
    from splade_lightning.formats.idf_json import read_idf_table
    from splade_lightning.hub import load_tokenizer

    table = read_idf_table(score_idf, load_tokenizer(doc_encoder.tokenizer_name_or_path), doc_encoder.vocab_size)
    return torch.relu(table.weights.float())
