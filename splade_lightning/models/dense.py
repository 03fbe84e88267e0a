"""DenseEncoder: a HF encoder plus mean/CLS pooling (and L2 normalisation), mapping token ids to (B, d) embeddings."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from splade_lightning.errors import ConfigError
from splade_lightning.models.backbone import load_encoder
from splade_lightning.models.recompute import selective_recompute


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Masked mean over tokens, as sentence-transformers' ``Pooling(mean)``: (B, L, H), (B, L) -> (B, H)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    summed = (hidden * mask).sum(dim=1)
    count = mask.sum(dim=1).clamp(min=1e-9)
    return summed / count


class DenseEncoder(nn.Module):
    """Dense sentence encoder ``e = normalize(pool(Encoder(x)))`` (Sentence-BERT, Reimers & Gurevych,
    arXiv:1908.10084): the backbone of CSR (Wen et al., arXiv:2503.01776), whose sparse head is
    :class:`splade_lightning.models.SparseAutoEncoder`.

    With the defaults on ``all-minilm-l6-v2`` this is the sentence-transformers pipeline of all-MiniLM-L6-v2:
    Transformer -> Pooling(mean) -> Normalize.

    Args:
        backbone: any HF encoder: an offline alias (``all-minilm-l6-v2``), a local directory (plain HF or a
            sentence-transformers directory, whose root holds the HF weights), or a hub id.
        pooling: ``mean`` (masked mean over non-pad tokens) or ``cls`` (the first token's hidden state).
        normalize: L2-normalise the pooled vector (all-MiniLM-L6-v2's ``Normalize`` module).
        frozen: freeze the backbone: no gradients (the forward runs under ``torch.no_grad``) and dropout stays off
            (the backbone stays in eval mode even under ``.train()``), so the embeddings are deterministic.
        selective_recompute: when training the backbone, rebuild each layer's attention core, layer-norm and GELU
            outputs and (on CPU) Q, K, V and FFN-input projections and dropout noise in backward instead of keeping
            them (``models/recompute.py``): bitwise-identical gradients, less memory.
        backbone_config: internal: a ``config.json`` dict to build the backbone from (fresh weights, loaded
            afterwards from a checkpoint) instead of reading ``backbone``. Leave unset in YAML.
    """

    def __init__(
        self,
        backbone: str = "all-minilm-l6-v2",
        pooling: Literal["mean", "cls"] = "mean",
        normalize: bool = True,
        frozen: bool = False,
        selective_recompute: bool = True,
        backbone_config: dict | None = None,
    ):
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ConfigError(f"DenseEncoder: pooling={pooling!r}: expected 'mean' or 'cls'")
        self.backbone = str(backbone)
        self.pooling: Literal["mean", "cls"] = pooling
        self.normalize = bool(normalize)
        self.frozen = bool(frozen)
        self.selective_recompute = bool(selective_recompute)
        self.encoder = load_encoder(backbone, config=backbone_config)
        if self.frozen:
            self.encoder.requires_grad_(False)
        self.train()  # from_pretrained returns eval mode; keep nn.Module semantics (a frozen backbone stays in eval)

    def train(self, mode: bool = True) -> DenseEncoder:
        """Set the training mode; a frozen backbone always stays in eval mode (no dropout)."""
        super().train(mode)
        if self.frozen:
            self.encoder.eval()
        return self

    @property
    def embedding_dim(self) -> int:
        """Width d of the embeddings (the backbone's hidden size)."""
        return int(self.encoder.config.hidden_size)

    @property
    def tokenizer_name_or_path(self) -> str:
        """Where the matching tokenizer lives (the backbone's name or directory)."""
        return self.backbone

    def export_config(self) -> dict:
        """Constructor settings (without ``backbone``) that rebuild this encoder around saved weights."""
        return {"architecture": "dense", "pooling": self.pooling, "normalize": self.normalize, "frozen": self.frozen}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Encode token ids.

        Args:
            input_ids: (B, L) token ids.
            attention_mask: (B, L) 1 for real tokens.

        Returns:
            (B, d) embeddings, unit length when ``normalize``.
        """
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen), \
                selective_recompute(self.selective_recompute):
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = mean_pool(hidden, attention_mask) if self.pooling == "mean" else hidden[:, 0]
        return F.normalize(pooled, p=2, dim=-1) if self.normalize else pooled
