"""A tiny sparse encoder for module tests that need no transformer: a bag of token ids."""

import torch

from splade_lightning.models import SparseEncoderBase

V = 8


class BagEncoder(SparseEncoderBase):
    """(B, L) ids -> (B, V) bag of ids (1 where an id occurs; id 0 is padding) times one trainable scale."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    @property
    def vocab_size(self) -> int:
        return V

    @property
    def tokenizer_name_or_path(self) -> str:
        return "bag"

    def encode_query(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        reps = torch.zeros(input_ids.shape[0], V).scatter_(1, input_ids, attention_mask.float())
        return reps.index_fill(1, torch.tensor([0]), 0.0) * self.scale

    def encode_doc(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encode_query(input_ids, attention_mask)

    def export_config(self) -> dict:
        return {"architecture": "bag"}
