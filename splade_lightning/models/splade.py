"""SpladeEncoder: an MLM backbone plus SPLADE pooling, mapping token ids to (B, V) vocabulary term weights."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Literal

import torch
from torch import nn

from splade_lightning.errors import ConfigError
from splade_lightning.models.backbone import load_mlm, vocab_size_of
from splade_lightning.models.base import SparseEncoderBase
from splade_lightning.models.head_screen import HeadScreen
from splade_lightning.models.pooling import Activation, Pooling, splade_activation, splade_pool
from splade_lightning.models.recompute import selective_recompute
from splade_lightning.models.sparse_head import max_pool_projection
from splade_lightning.models.vocab_grad import (
    embedding_grads_can_be_sparse,
    row_sparse_grads_available,
    sparse_embedding_grads,
)


class SpladeEncoder(SparseEncoderBase):
    """SPLADE encoder (Formal et al., arXiv:2107.05720, arXiv:2109.10086): ``w = pool_l act(MLM(x)_l)``.

    Args:
        backbone: any HF masked-LM: an offline alias (``splade-tiny``), a local directory, or a hub id.
        pooling: ``max`` (SPLADE v2 / SPLADE++ / v3, default) or ``sum`` (SPLADE v1).
        activation: ``relu`` for log(1+relu(x)); ``log1p_relu`` for log(1+log(1+relu(x))) (OpenSearch v3 "L0").
        gradient_checkpointing: recompute the transformer body in backward (less memory, ~30% slower).
        selective_recompute: rebuild in backward, instead of keeping, each layer's attention core, layer-norm and
            GELU outputs, (on CPU) Q, K, V and FFN-input projections and dropout noise (``models/recompute.py``;
            Korthikanti et al., arXiv:2205.05198): bitwise-identical gradients, about 0.3x the activation memory
            of plain training, a few percent more time. Ignored with ``gradient_checkpointing``.
        efficient_head: for max pooling, use the memory-efficient head (``models/sparse_head.py``): logits computed
            chunk by chunk, never (B, L, V), and a backward over active terms only. Exact; ``false`` restores the
            plain HF head (it is also used automatically when the backbone's head cannot be split).
        head_chunk_tokens: rows x positions per chunk of the efficient head (extra memory ~ this x 1024 floats per
            logits tile on the CPU, x 32768 on a GPU). None: 512 on the CPU (encoded fastest on a 2-core AMD EPYC,
            AVX2) and 8192 on a GPU (a BERT-base-shaped bf16 step on an H200 ran 1.12-1.21x faster than with 512;
            benchmarks/README.md).
        sparse_vocab_grad: with the efficient head, build the gradients of the (V, H) vocabulary matrix (input
            embedding and decoder weight) from the rows a step touches and make them dense once, when accumulated
            (``models/vocab_grad.py``): one (V, H) gradient tensor alive instead of two or three. The same sums in
            another order. The dense path runs under ``torch.distributed`` and where few rows would be saved (see
            that module).
        head_screen: with the efficient head on the CPU, compute the logits first from bfloat16 inputs, with a
            rigorous bound of their rounding error, and recompute in float32 only the entries that may be active
            (``models/head_screen.py``): the same result (up to float32 summation order), in less time for a
            trained (sparse) model (benchmarks/README.md). ``auto`` (default): where the CPU has bf16
            dot-product instructions (AVX512-BF16, AMX; elsewhere bf16 matmuls are slower than float32); ``bf16``:
            always (float32 activations on the CPU); ``off``: never. It steps aside for dense activations (an
            untrained MLM head) and under bf16 autocast.
        backbone_config: internal: a ``config.json`` dict to build the backbone from (fresh weights, loaded
            afterwards from a checkpoint) instead of reading ``backbone``. Leave unset in YAML.
    """

    def __init__(
        self,
        backbone: str = "splade-tiny",
        pooling: Pooling = "max",
        activation: Activation = "relu",
        gradient_checkpointing: bool = False,
        selective_recompute: bool = True,
        efficient_head: bool = True,
        head_chunk_tokens: int | None = None,
        sparse_vocab_grad: bool = True,
        head_screen: HeadScreen = "auto",
        backbone_config: dict | None = None,
    ):
        super().__init__()
        problems = []
        if pooling not in ("max", "sum"):
            problems.append(f"pooling={pooling!r}: expected 'max' or 'sum'")
        if activation not in ("relu", "log1p_relu"):
            problems.append(f"activation={activation!r}: expected 'relu' or 'log1p_relu'")
        chunk = head_chunk_tokens
        if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1):
            problems.append(f"head_chunk_tokens={head_chunk_tokens!r}: expected an integer >= 1 or null (by device)")
        if head_screen not in ("auto", "bf16", "off"):
            problems.append(f"head_screen={head_screen!r}: expected 'auto', 'bf16' or 'off'")
        if problems:
            raise ConfigError("SpladeEncoder: " + "; ".join(problems))
        self.backbone = str(backbone)
        self.pooling: Literal["max", "sum"] = pooling
        self.activation: Literal["relu", "log1p_relu"] = activation
        self.mlm = load_mlm(backbone, config=backbone_config)
        self.mlm.train()  # from_pretrained returns eval mode; keep nn.Module semantics (Lightning preserves modes)
        if gradient_checkpointing:
            self.mlm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        self.selective_recompute = selective_recompute and not gradient_checkpointing
        self.head_chunk_tokens = head_chunk_tokens
        self.sparse_vocab_grad = sparse_vocab_grad
        self.head_screen: HeadScreen = head_screen
        self._decoder_slot = _find_decoder(self.mlm) if efficient_head and pooling == "max" else None
        if self._decoder_slot is not None and not self._head_split_is_exact():
            warnings.warn(f"SpladeEncoder: cannot split the MLM head of {type(self.mlm).__name__} into transform + "
                          "decoder exactly; using the plain (B, L, V) head", stacklevel=2)
            self._decoder_slot = None

    @property
    def efficient_head(self) -> bool:
        """Whether the memory-efficient max-pooling head is in use."""
        return self._decoder_slot is not None

    @contextmanager
    def _decoder_bypassed(self):
        """Within the block, the MLM returns the decoder's *input* (B, L, H) as ``logits``."""
        parent, name = self._decoder_slot
        decoder = getattr(parent, name)
        setattr(parent, name, nn.Identity())
        try:
            yield decoder
        finally:
            setattr(parent, name, decoder)

    def output_decoder(self) -> nn.Linear | None:
        """The MLM's output-embedding Linear when the max-pooling head is split (see :meth:`decoder_bypassed`)."""
        return getattr(*self._decoder_slot) if self._decoder_slot is not None else None

    @contextmanager
    def decoder_bypassed(self):
        """Within the block, when :meth:`output_decoder` is not None, the MLM returns the decoder's input (B, L, H)
        as ``logits``; otherwise the MLM is unchanged."""
        if self._decoder_slot is None:
            yield None
            return
        with self._decoder_bypassed() as decoder:
            yield decoder

    @torch.no_grad()
    def _head_split_is_exact(self) -> bool:
        was_training = self.mlm.training
        self.mlm.eval()
        try:
            ids = torch.tensor([[min(5, self.vocab_size - 1), min(7, self.vocab_size - 1)]])
            mask = torch.ones_like(ids)
            full = self.mlm(input_ids=ids, attention_mask=mask).logits
            with self._decoder_bypassed() as decoder:
                split = decoder(self.mlm(input_ids=ids, attention_mask=mask).logits)
            return split.shape == full.shape and torch.allclose(split, full, rtol=1e-4, atol=1e-4)
        except Exception:  # any architecture whose head does not end in the output-embedding Linear
            return False
        finally:
            self.mlm.train(was_training)
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
        with selective_recompute(self.selective_recompute):
            return self.mlm(input_ids=input_ids, attention_mask=attention_mask).logits

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Encode token ids.

        Args:
            input_ids: (B, L) token ids.
            attention_mask: (B, L) 1 for real tokens.

        Returns:
            (B, V) non-negative term weights.
        """
        if self._decoder_slot is not None:
            sparse = self.sparse_vocab_grad and torch.is_grad_enabled() and row_sparse_grads_available()
            lookup = self._sparse_lookup(attention_mask) if sparse else None
            with self._decoder_bypassed() as decoder, selective_recompute(self.selective_recompute), \
                    sparse_embedding_grads(lookup):
                hidden = self.mlm(input_ids=input_ids, attention_mask=attention_mask).logits  # (B, L, H)
            raw = max_pool_projection(hidden, decoder.weight, decoder.bias, attention_mask, self.head_chunk_tokens,
                                      sparse_weight_grad=sparse, screen=self.head_screen)
            return splade_activation(raw, self.activation)
        logits = self.logits(input_ids, attention_mask)
        return splade_pool(logits, attention_mask, self.pooling, self.activation, inplace=True)

    def _sparse_lookup(self, attention_mask: torch.Tensor) -> nn.Module | None:
        """The input embedding when its lookup of this batch should return a row-sparse gradient, else None."""
        embedding = self.mlm.get_input_embeddings()
        return embedding if embedding_grads_can_be_sparse(embedding, int(attention_mask.sum())) else None

    def encode_query(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Query side: (B, L) -> (B, V). SPLADE uses one encoder for both sides."""
        return self(input_ids, attention_mask)

    def encode_doc(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Document side: (B, L) -> (B, V)."""
        return self(input_ids, attention_mask)

    def export_config(self) -> dict:
        """What :func:`splade_lightning.load` needs to rebuild this encoder (see ``models/serialization.py``)."""
        return {"architecture": "splade", "pooling": self.pooling, "activation": self.activation}


def _find_decoder(mlm: nn.Module) -> tuple[nn.Module, str] | None:
    """(parent module, attribute name) of the MLM's output-embedding Linear, or None."""
    decoder = mlm.get_output_embeddings()
    if not isinstance(decoder, nn.Linear):
        return None
    for name, module in mlm.named_modules():
        if module is decoder and name:
            parent_name, _, attr = name.rpartition(".")
            return mlm.get_submodule(parent_name) if parent_name else mlm, attr
    return None
