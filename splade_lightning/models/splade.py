"""SpladeEncoder: an MLM backbone plus SPLADE pooling, mapping token ids to (B, V) vocabulary term weights."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from ..errors import ConfigError
from .backbone import load_mlm, vocab_size_of
from .pooling import Activation, Pooling, splade_pool


class SpladeEncoder(nn.Module):
    """SPLADE encoder (Formal et al., arXiv:2107.05720, arXiv:2109.10086): ``w = pool_l act(MLM(x)_l)``.

    Args:
        backbone: any HF masked-LM: an offline alias (``splade-tiny``), a local directory, or a hub id.
        pooling: ``max`` (SPLADE v2 / SPLADE++ / v3, default) or ``sum`` (SPLADE v1).
        activation: ``relu`` for log(1+relu(x)); ``log1p_relu`` for log(1+log(1+relu(x))) (OpenSearch v3 "L0").
        gradient_checkpointing: recompute the transformer body in backward (less memory, ~30% slower).
        backbone_config: internal: a ``config.json`` dict to build the backbone from (fresh weights, loaded
            afterwards from a checkpoint) instead of reading ``backbone``. Leave unset in YAML.
    """

    def __init__(
        self,
        backbone: str = "splade-tiny",
        pooling: Pooling = "max",
        activation: Activation = "relu",
        gradient_checkpointing: bool = False,
        backbone_config: dict | None = None,
    ):
        super().__init__()
        problems = []
        if pooling not in ("max", "sum"):
            problems.append(f"pooling={pooling!r}: expected 'max' or 'sum'")
        if activation not in ("relu", "log1p_relu"):
            problems.append(f"activation={activation!r}: expected 'relu' or 'log1p_relu'")
        if problems:
            raise ConfigError("SpladeEncoder: " + "; ".join(problems))
        self.backbone = str(backbone)
        self.pooling: Literal["max", "sum"] = pooling
        self.activation: Literal["relu", "log1p_relu"] = activation
        self.mlm = load_mlm(backbone, config=backbone_config)
        self.mlm.train()  # from_pretrained returns eval mode; keep nn.Module semantics (Lightning preserves modes)
        if gradient_checkpointing:
            self.mlm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    @property
    def vocab_size(self) -> int:
        """Output width V (the MLM head's rows)."""
        return vocab_size_of(self.mlm)

    @property
    def tokenizer_name_or_path(self) -> str:
        """Where the matching tokenizer lives (the backbone's name or directory)."""
        return self.backbone

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, L, V) MLM logits."""
        return self.mlm(input_ids=input_ids, attention_mask=attention_mask).logits

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Encode token ids.

        Args:
            input_ids: (B, L) token ids.
            attention_mask: (B, L) 1 for real tokens.

        Returns:
            (B, V) non-negative term weights.
        """
        logits = self.logits(input_ids, attention_mask)
        return splade_pool(logits, attention_mask, self.pooling, self.activation, inplace=True)

    def encode_query(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Query side: (B, L) -> (B, V). SPLADE uses one encoder for both sides."""
        return self(input_ids, attention_mask)

    def encode_doc(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Document side: (B, L) -> (B, V)."""
        return self(input_ids, attention_mask)

    def export_config(self) -> dict:
        """What :func:`splade_lightning.load` needs to rebuild this encoder (see ``models/serialization.py``)."""
        return {"architecture": "splade", "pooling": self.pooling, "activation": self.activation}
