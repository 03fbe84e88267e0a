"""CSREncoder: a dense sentence encoder followed by a TopK sparse autoencoder (Contrastive Sparse Representation)."""

from __future__ import annotations

import torch
from torch import nn

from splade_lightning.errors import ConfigError
from splade_lightning.models.base import SparseEncoderBase
from splade_lightning.models.csr import CSROutput, SparseAutoEncoder


class CSREncoder(SparseEncoderBase):
    """CSR (Wen et al., "Beyond Matryoshka", arXiv:2503.01776): ``z = TopK-SAE(e(x))`` with ``e`` a dense sentence
    encoder. Queries and documents share the one model; both map (B, L) token ids to (B, h) sparse codes whose
    "vocabulary" is the h latents of the autoencoder, so retrieval is a sparse dot product as for SPLADE.

    Frozen-backbone embedding cache. With a frozen ``dense`` encoder the embedding of a text never changes, so
    ``embedding_cache > 0`` memoises it by the text's token ids (at most that many texts; later texts are computed
    and not stored). Training epochs after the first and every evaluation after the first then skip the
    backbone. The cache is a plain dict on the encoder, never saved; it is cleared on :meth:`load_state_dict`.

    Args:
        dense: the dense backbone, e.g. :class:`~splade_lightning.models.DenseEncoder` (``embedding_dim``,
            ``tokenizer_name_or_path``, ``forward(ids, mask) -> (B, d)``).
        autoencoder: the sparse head; its ``input_dim`` must equal ``dense.embedding_dim``.
        embedding_cache: texts whose backbone embedding is memoised (0: off). Requires a frozen ``dense``.
    """

    def __init__(self, dense: nn.Module, autoencoder: SparseAutoEncoder, embedding_cache: int = 0):
        super().__init__()
        width = int(dense.embedding_dim)
        problems = []
        if autoencoder.input_dim != width:
            problems.append(f"autoencoder.input_dim={autoencoder.input_dim} but the dense backbone "
                            f"{getattr(dense, 'backbone', type(dense).__name__)!r} produces {width}-dim embeddings; "
                            f"set autoencoder input_dim: {width}")
        if isinstance(embedding_cache, bool) or not isinstance(embedding_cache, int) or embedding_cache < 0:
            problems.append(f"embedding_cache={embedding_cache!r}: expected an int >= 0 (texts to memoise)")
        elif embedding_cache > 0 and not getattr(dense, "frozen", False):
            problems.append(f"embedding_cache={embedding_cache} needs a frozen dense encoder (frozen: true): a "
                            "trained backbone changes every text's embedding at every step")
        if problems:
            raise ConfigError("CSREncoder: " + "; ".join(problems))
        self.dense = dense
        self.autoencoder = autoencoder
        self.embedding_cache = embedding_cache
        self._cache: dict[bytes, torch.Tensor] = {}

    @property
    def vocab_size(self) -> int:
        """Width h of the sparse codes (the number of latents)."""
        return self.autoencoder.hidden_dim

    @property
    def tokenizer_name_or_path(self) -> str:
        """The dense backbone's tokenizer."""
        return self.dense.tokenizer_name_or_path

    @property
    def backbone(self) -> str:
        """Name or directory of the dense backbone."""
        return getattr(self.dense, "backbone", "")

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Dense embeddings (B, d) of (B, L) token ids, through the cache when it is on."""
        if self.embedding_cache == 0:
            return self.dense(input_ids, attention_mask)
        rows, masks = input_ids.cpu().numpy(), attention_mask.cpu().numpy().astype(bool)
        # the text's tokens and where they start (left padding shifts positions), whatever the batch's padding
        keys = [row[mask].tobytes() + int(mask.argmax()).to_bytes(4, "little") for row, mask in zip(rows, masks)]
        missing = [i for i, key in enumerate(keys) if key not in self._cache]
        if missing:
            fresh = self.dense(input_ids[missing], attention_mask[missing])
            room = self.embedding_cache - len(self._cache)
            for i, row in zip(missing[: max(room, 0)], fresh):
                self._cache[keys[i]] = row.detach()
        out = [None] * len(keys)
        for pos, i in enumerate(missing):
            out[i] = fresh[pos]
        for i, key in enumerate(keys):
            if out[i] is None:
                out[i] = self._cache[key].to(input_ids.device)
        return torch.stack(out)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> CSROutput:
        """Training path: embed (B, L) ids and run the autoencoder -> :class:`CSROutput` (codes + reconstructions)."""
        return self.autoencoder(self.embed(input_ids, attention_mask))

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
               max_active_dims: int | None = None) -> torch.Tensor:
        """Inference path: (B, L) ids -> (B, h) sparse codes with at most ``max_active_dims`` latents active (None:
        ``autoencoder.max_active_dims``, else k). A larger value than k activates more latents, as
        sentence-transformers' ``SparseAutoEncoder.forward(max_active_dims=...)`` does."""
        return self.autoencoder.encode(self.embed(input_ids, attention_mask), max_active_dims)

    def encode_query(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                     max_active_dims: int | None = None) -> torch.Tensor:
        """(B, L) query ids -> (B, h) codes (queries and documents share the model; see :meth:`encode`)."""
        return self.encode(input_ids, attention_mask, max_active_dims)

    def encode_doc(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                   max_active_dims: int | None = None) -> torch.Tensor:
        """(B, L) document ids -> (B, h) codes (see :meth:`encode`)."""
        return self.encode(input_ids, attention_mask, max_active_dims)

    def dimension_names(self, ids: list[int]) -> list[str]:
        """Readable names of code dimensions (latents have no token): ``latent_<j>``."""
        return [f"latent_{j}" for j in ids]

    def _load_from_state_dict(self, *args, **kwargs) -> None:
        self._cache.clear()  # new weights (a frozen backbone loaded from a checkpoint) invalidate the memo
        super()._load_from_state_dict(*args, **kwargs)

    def export_config(self) -> dict:
        """What :func:`splade_lightning.load` needs to rebuild this encoder around saved weights."""
        dense = self.dense.export_config() if hasattr(self.dense, "export_config") else {}
        return {"architecture": "csr", "dense": dense, "autoencoder": self.autoencoder.export_config()}
