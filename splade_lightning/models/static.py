"""StaticSparseEncoder: the inference-free query side, a binary bag of the query's tokens times a weight per term."""

from __future__ import annotations

import os

import torch
from torch import nn

from splade_lightning.errors import ConfigError
from splade_lightning.models.base import SparseEncoderBase


class StaticSparseEncoder(SparseEncoderBase):
    """Inference-free query encoder: ``q_v = 1[v in query] · relu(w_v)`` for every non-special token v.

    The query vector is a lookup, with no neural inference at query time (SPLADE-doc, Lassance et al.,
    arXiv:2403.06789; OpenSearch neural sparse doc-only models, Geng et al., arXiv:2411.04403). With ``w`` an IDF table,
    the ranking score ``Σ_v q_v d_v = Σ_{v ∈ q} idf(v)·d_v`` is the IDF-aware score of arXiv:2411.04403.

    Each distinct token counts once (repeats do not add up); padding and every special token (``[CLS]``, ``[SEP]``,
    ``[PAD]``, ``[UNK]``, ``[MASK]``) get 0, and ``w`` is clamped at 0 by a ReLU, as OpenSearch does.

    Args:
        tokenizer: the tokenizer queries are tokenised with (alias, directory or hub id); it must be the document
            encoder's. It maps the IDF file's token strings to ids and names the special tokens.
        vocab_size: size V of the weight vector: the document model's output width (its ``config.vocab_size``),
            which can exceed the tokenizer's length. ``None``: the tokenizer's length.
        idf_file: initialise ``w`` from an IDF table in OpenSearch's format (JSON ``{token string: weight}``), e.g.
            OpenSearch's ``idf.json`` or the smoothed IDF ``log((N+1)/(df+1)) + 1`` of a corpus written by
            ``python -m splade_lightning idf --corpus <BEIR dir or JSONL> --output idf.json`` (with the same
            tokenizer). ``None``: ``w`` starts at 1 (a binary bag of words).
        frozen: keep ``w`` fixed (no gradient).
        missing_weight: initial weight of tokens the IDF table does not list (OpenSearch: 1.0;
            sentence-transformers' ``from_json``: 0.0).
    """

    def __init__(
        self,
        tokenizer: str = "splade-tiny",
        vocab_size: int | None = None,
        idf_file: str | None = None,
        frozen: bool = False,
        missing_weight: float = 1.0,
    ):
        super().__init__()
        from splade_lightning.hub import load_tokenizer

        if vocab_size is not None and (not isinstance(vocab_size, int) or vocab_size < 1):
            raise ConfigError(f"StaticSparseEncoder: vocab_size={vocab_size!r}: expected a positive int or null")
        tok = load_tokenizer(tokenizer)
        self._tokenizer_name_or_path = str(tokenizer)
        size = len(tok) if vocab_size is None else vocab_size
        if size < len(tok):
            raise ConfigError(f"StaticSparseEncoder: vocab_size={size} is smaller than the tokenizer's {len(tok)} "
                              f"tokens ({tokenizer!r}); expected the document model's output width")
        self.weight = nn.Parameter(_initial_weights(tok, size, idf_file, missing_weight),
                                   requires_grad=not frozen)
        special = sorted({i for i in tok.all_special_ids if i is not None and 0 <= i < size})
        self.register_buffer("special_ids", torch.tensor(special, dtype=torch.long), persistent=False)
        self.missing_weight = float(missing_weight)

    @property
    def vocab_size(self) -> int:
        """Output width V."""
        return int(self.weight.shape[0])

    @property
    def tokenizer_name_or_path(self) -> str:
        """The tokenizer queries are tokenised with (settable: a loader points it at unpacked tokenizer files)."""
        return self._tokenizer_name_or_path

    @tokenizer_name_or_path.setter
    def tokenizer_name_or_path(self, value: str) -> None:
        self._tokenizer_name_or_path = str(value)

    @property
    def frozen(self) -> bool:
        """Whether the weights are fixed."""
        return not self.weight.requires_grad

    def term_weights(self) -> torch.Tensor:
        """(V,) effective weight of each term: ``relu(w)``, 0 for special tokens."""
        weights = torch.relu(self.weight)
        return weights.index_fill(0, self.special_ids, 0.0)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Encode queries by lookup.

        Args:
            input_ids: (B, L) token ids (specials may be present; they get 0).
            attention_mask: (B, L) 1 for real tokens; padded positions are ignored.

        Returns:
            (B, V) query vectors, non-zero only at the query's non-special tokens.
        """
        if input_ids.numel() and int(input_ids.max()) >= self.vocab_size:
            raise ValueError(f"StaticSparseEncoder: token id {int(input_ids.max())} >= vocab_size {self.vocab_size}")
        weights = self.term_weights()
        present = torch.zeros(input_ids.shape[0], self.vocab_size, dtype=weights.dtype, device=input_ids.device)
        present.scatter_reduce_(1, input_ids, attention_mask.to(weights.dtype), reduce="amax")
        return present * weights

    def encode_query(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Query side: (B, L) -> (B, V)."""
        return self(input_ids, attention_mask)

    def encode_doc(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The same lookup for any text (e.g. when routed as a document): (B, L) -> (B, V)."""
        return self(input_ids, attention_mask)

    def export_config(self) -> dict:
        """Settings needed to rebuild this encoder (the weights travel separately)."""
        return {"architecture": "static", "vocab_size": self.vocab_size, "frozen": self.frozen,
                "missing_weight": self.missing_weight}


def _initial_weights(tokenizer, size: int, idf_file: str | os.PathLike | None, missing_weight: float) -> torch.Tensor:
    """(size,) float32 initial weights: ones, or an IDF table read from ``idf_file``."""
    if idf_file is None:
        return torch.ones(size)
    from splade_lightning.formats.idf_json import read_idf_table

    return read_idf_table(idf_file, tokenizer, size, missing_weight).weights.float()
