"""SparseEncoderBase: what every sparse encoder a LightningModule trains provides (the type of its ``encoder``)."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn


class SparseEncoderBase(nn.Module, ABC):
    """Base of the encoders that map token ids to (B, V) sparse vectors:
    :class:`~splade_lightning.models.SpladeEncoder`, :class:`~splade_lightning.models.StaticSparseEncoder`,
    :class:`~splade_lightning.models.QueryDocRouter` and :class:`~splade_lightning.models.CSREncoder`.

    The modules type their ``encoder`` argument with this class, so the CLI lists these encoders (``--model.init_args
    .encoder.help``) rather than every ``torch.nn`` module. A subclass implements :meth:`encode_query`,
    :meth:`encode_doc`, :meth:`export_config` and the properties :attr:`vocab_size` and
    :attr:`tokenizer_name_or_path`.
    """

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """Output width V (vocabulary terms, or latents for CSR)."""

    @property
    @abstractmethod
    def tokenizer_name_or_path(self) -> str:
        """The tokenizer the input ids come from (an alias, a directory or a hub id)."""

    @abstractmethod
    def encode_query(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Encode queries.

        Args:
            input_ids: (B, L) token ids.
            attention_mask: (B, L) 1 for real tokens.

        Returns:
            (B, V) non-negative query vectors.
        """

    @abstractmethod
    def encode_doc(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Encode documents.

        Args:
            input_ids: (B, L) token ids.
            attention_mask: (B, L) 1 for real tokens.

        Returns:
            (B, V) non-negative document vectors.
        """

    @abstractmethod
    def export_config(self) -> dict:
        """Settings that rebuild this encoder around saved weights (``{"architecture": ..., ...}``; see
        ``splade_lightning/serialization/``)."""
