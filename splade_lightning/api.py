"""Public inference API: ``splade_lightning.load(name_or_path)`` -> a model with ``encode_query`` /
``encode_document`` / ``decode``, usable without Lightning."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from .data.collate import EncodeCollator
from .errors import ConfigError
from .hub import ALIASES


class SparseModel(nn.Module):
    """A trained sparse encoder plus its tokenizer, ready to encode text.

    Args:
        encoder: the (B, L) -> (B, V) encoder (e.g. ``SpladeEncoder``, or ``CSREncoder`` whose V is its number
            of latents), with ``encode_query``/``encode_doc``.
        tokenizer: its HF tokenizer.
        max_query_length: queries are truncated to this many tokens.
        max_doc_length: documents are truncated to this many tokens.
    """

    def __init__(self, encoder: nn.Module, tokenizer, max_query_length: int = 512, max_doc_length: int = 512):
        super().__init__()
        self.encoder = encoder.eval()
        self.tokenizer = tokenizer
        self.max_query_length = max_query_length
        self.max_doc_length = max_doc_length

    @property
    def vocab_size(self) -> int:
        return self.encoder.vocab_size

    @property
    def device(self) -> torch.device:
        return next(self.encoder.parameters()).device

    def encode_query(self, texts: Sequence[str] | str, batch_size: int = 32, show_progress_bar: bool = False):
        """Encode queries -> sparse COO tensor (N, V) on the CPU (a 1-D sparse vector for a single string)."""
        return self._encode(texts, "query", batch_size, show_progress_bar)

    def encode_document(self, texts: Sequence[str] | str, batch_size: int = 32, show_progress_bar: bool = False):
        """Encode documents -> sparse COO tensor (N, V) on the CPU (a 1-D sparse vector for a single string)."""
        return self._encode(texts, "doc", batch_size, show_progress_bar)

    @torch.no_grad()  # not inference_mode: its tensors cannot be used by later autograd-aware code (e.g. search)
    def _encode(self, texts, kind: str, batch_size: int, show_progress_bar: bool) -> torch.Tensor:
        single = isinstance(texts, str)
        texts = [texts] if single else list(texts)
        if not all(isinstance(t, str) for t in texts):
            raise ConfigError(f"encode_{'query' if kind == 'query' else 'document'}: expected a list of strings")
        collate = EncodeCollator(self.tokenizer, self.max_query_length if kind == "query" else self.max_doc_length,
                                 kind=kind)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # length-sorted batches: little padding
        encode = self.encoder.encode_query if kind == "query" else self.encoder.encode_doc
        rows, cols, vals = [], [], []
        for start in tqdm(range(0, len(order), batch_size), disable=not show_progress_bar, desc=f"encode {kind}"):
            idx = order[start:start + batch_size]
            batch = collate([(str(i), texts[i]) for i in idx]).to(self.device)
            reps = encode(batch.input_ids, batch.attention_mask).float()
            nz = reps.nonzero()
            rows.append(torch.tensor(idx, dtype=torch.long)[nz[:, 0].cpu()])
            cols.append(nz[:, 1].cpu())
            vals.append(reps[nz[:, 0], nz[:, 1]].cpu())
        size = (len(texts), self.vocab_size)
        if not rows:
            out = torch.sparse_coo_tensor(torch.empty(2, 0, dtype=torch.long), torch.empty(0), size)
        else:
            out = torch.sparse_coo_tensor(torch.stack([torch.cat(rows), torch.cat(cols)]), torch.cat(vals), size,
                                          check_invariants=False)  # built from nonzero(): valid by construction
        out = out.coalesce()
        return out[0] if single else out

    def decode(self, vector: torch.Tensor, top_k: int | None = None):
        """Readable (token, weight) pairs of one vector (V,) — or a list of them for (N, V) — by decreasing weight.

        Dimensions are named by the encoder's ``dimension_names`` when it has one (CSR: ``latent_<j>``, latents have
        no token), else by the tokenizer's tokens.

        Args:
            vector: dense or sparse, 1-D (V,) or 2-D (N, V).
            top_k: keep only the ``top_k`` heaviest tokens (None: every active token).
        """
        if vector.is_sparse or vector.layout != torch.strided:
            vector = vector.to_dense()
        if vector.dim() == 2:
            return [self.decode(row, top_k) for row in vector]
        if vector.dim() != 1 or vector.shape[0] != self.vocab_size:
            raise ConfigError(f"decode: expected a vector of size {self.vocab_size}, got shape {tuple(vector.shape)}")
        active = vector.nonzero().flatten()
        weights = vector[active]
        order = torch.argsort(weights, descending=True, stable=True)[: top_k if top_k is not None else None]
        ids = active[order].tolist()
        names = getattr(self.encoder, "dimension_names", None)
        tokens = names(ids) if names is not None else self.tokenizer.convert_ids_to_tokens(ids)
        return [(tok if tok is not None else f"[{i}]", float(w)) for tok, i, w in zip(tokens, ids, weights[order])]

    def save(self, path: str | os.PathLike) -> Path:
        """Save as a model directory that :func:`load` (and sentence-transformers' ``SparseEncoder``) can read."""
        from .models.serialization import save_encoder

        return save_encoder(self.encoder, self.tokenizer, path, self.max_query_length, self.max_doc_length)


def load(name_or_path: str | os.PathLike, device: str | torch.device | None = None) -> SparseModel:
    """Load a model for inference.

    Args:
        name_or_path: an offline alias (``splade-tiny``), a directory saved by us (or by sentence-transformers:
            SPLADE, inference-free or CSR; or a bare HF masked-LM directory), a HF hub id, or a Lightning ``.ckpt``
            written by ``fit``.
        device: where to run it (default: CPU).

    Returns:
        A :class:`SparseModel` in eval mode.
    """
    from .models.serialization import encoder_from_checkpoint, load_encoder_dir, torch_load_checkpoint

    name = str(name_or_path)
    path = Path(name)
    if name.endswith(".ckpt"):
        if not path.is_file():
            raise ConfigError(f"load: checkpoint {name!r} does not exist")
        checkpoint = torch_load_checkpoint(path)
        encoder, tokenizer = encoder_from_checkpoint(checkpoint)
        lengths = checkpoint["splade_lightning"].get("max_lengths", {})
        model = SparseModel(encoder, tokenizer, **lengths)
    else:
        if not path.exists() and ("/" not in name or name.startswith((".", "/"))) and name.lower() not in ALIASES:
            raise ConfigError(f"load: {name!r} is neither an existing path, a known alias {sorted(ALIASES)}, "
                              "nor a HF hub id of the form 'owner/name'")
        encoder, tokenizer, settings = load_encoder_dir(name)
        lengths = {k: settings[k] for k in ("max_query_length", "max_doc_length") if k in settings}
        model = SparseModel(encoder, tokenizer, **lengths)
    return model.to(device or "cpu")
