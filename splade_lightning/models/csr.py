"""SparseAutoEncoder: the CSR head, a TopK sparse autoencoder over a dense sentence embedding."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from splade_lightning.errors import ConfigError

#: a latent "fires" when its top-k activation exceeds this (sentence-transformers' threshold)
ACTIVE_EPS = 1e-5


def topk_relu(a: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest entries of each row, zero the rest, then ReLU.

    Negative top values become 0, so fewer than k entries can be active; ties are broken by ``torch.topk``.
    ``k`` is clamped to the row width.

    Args:
        a: (B, h) pre-activations.
        k: entries to keep per row.

    Returns:
        (B, h) with at most k non-zero (positive) entries per row.
    """
    top = torch.topk(a, k=min(k, a.shape[-1]), dim=-1)
    return F.relu(torch.zeros_like(a).scatter(-1, top.indices, top.values))


class _TiedDecoder(nn.Module):
    """x̂ = Wᵀz with the encoder's W; stored as ``decoder.linear.weight`` like sentence-transformers' TiedTranspose."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.linear = linear

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.linear(z, self.linear.weight.t())


@dataclass
class CSROutput:
    """Training outputs of :class:`SparseAutoEncoder` (B rows, d = input_dim, h = hidden_dim).

    Attributes:
        z_k: (B, h) sparse code, top-k: the sentence embedding.
        x: (B, d) the input as given (the backbone embedding; reconstruction target, not detached).
        pre_activation: (B, h) a = W(x' - b_pre) + b_lat, x' the (optionally normalised) input.
        z_4k: (B, h) top-4k code (4k clamped to h).
        z_aux: (B, h) auxiliary code over dead latents, or None when k_aux = 0.
        decoded_k: (B, d) reconstruction from z_k.
        decoded_4k: (B, d) reconstruction from z_4k.
        decoded_aux: (B, d) Wᵀz_aux + b_pre (times σ when normalising), or None when k_aux = 0.
        decoded_k_pre_bias: (B, d) decoded_k - b_pre (b_pre·σ when normalising).
    """

    z_k: torch.Tensor
    x: torch.Tensor
    pre_activation: torch.Tensor
    z_4k: torch.Tensor
    z_aux: torch.Tensor | None
    decoded_k: torch.Tensor
    decoded_4k: torch.Tensor
    decoded_aux: torch.Tensor | None
    decoded_k_pre_bias: torch.Tensor

    def reconstruction_tensors(self) -> dict[str, torch.Tensor | None]:
        """Keyword arguments of :class:`splade_lightning.losses.CSRReconstructionLoss`."""
        return {"x": self.x, "decoded_k": self.decoded_k, "decoded_4k": self.decoded_4k,
                "decoded_aux": self.decoded_aux, "decoded_k_pre_bias": self.decoded_k_pre_bias}


class SparseAutoEncoder(nn.Module):
    """TopK sparse autoencoder of CSR (Wen et al., "Beyond Matryoshka", arXiv:2503.01776), after the TopK SAE of
    Gao et al. (arXiv:2406.04093). Same math, parameter names and shapes as sentence-transformers 6.2's
    ``SparseAutoEncoder``, so state dicts are interchangeable.

    ``a = W(x' - b_pre) + b_lat`` with ``x' = (x - μ)/(σ + 1e-5)`` per row when ``normalize`` (else x' = x);
    ``z_k = relu(topk_k(a))``; the decoder is tied: ``decode(z) = (Wᵀz + b_pre)·σ + μ``.

    Dead latents. ``stats_last_nonzero[j]`` counts the consecutive *training steps* in which latent j did not fire
    (activation > 1e-5 in the top-k code of any text of the step); latent j is dead when
    ``stats_last_nonzero[j] >= dead_threshold``. This is Gao et al.'s definition (not fired for a number of
    tokens) counted in optimizer steps. The forward is pure: the owner calls :meth:`record_activity` once per
    optimizer step with the codes of every text of that step, so the count does not depend on how many columns or
    forward calls a step makes (nor on gradient accumulation), and it survives a resume because the buffer is saved
    with the weights. sentence-transformers instead updates the buffer inside every training forward, twice per call
    (top-k and top-4k), so its counter is per ``top_k`` call and, after a forward, tracks top-4k membership; its
    test ``stats > dead_threshold`` on the freshly updated counter equals ours on the count of previous calls for
    every latent that does not fire in the current batch. Given the same buffer values and a non-updating ST
    forward (eval or no-grad), the outputs agree whenever no value equals ``dead_threshold`` exactly.

    Args:
        input_dim: width d of the incoming dense embedding (the backbone's ``embedding_dim``).
        hidden_dim: number of latents h (the sparse embedding's width).
        k: active latents per text (the paper's K); also the inference default.
        k_aux: latents of the auxiliary code over dead latents (0 disables the auxiliary loss).
        normalize: standardise each input row (mean 0, std 1) before encoding and undo it after decoding.
        dead_threshold: training steps without firing after which a latent counts as dead.
        max_active_dims: active latents at inference (:meth:`encode`); ``None``: ``k``.

    The top-4k code uses min(4k, h) latents: sentence-transformers' ``torch.topk`` raises when 4k > h; here it
    then keeps every latent (z_4k = relu(a)).
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int = 512,
        k: int = 8,
        k_aux: int = 512,
        normalize: bool = False,
        dead_threshold: int = 30,
        max_active_dims: int | None = None,
    ):
        super().__init__()
        _validate(input_dim, hidden_dim, k, k_aux, dead_threshold, max_active_dims)
        self.input_dim = input_dim
        self.hidden_dim = hidden_dim
        self.k = k
        self.k_aux = k_aux
        self.normalize = bool(normalize)
        self.dead_threshold = dead_threshold
        self.max_active_dims = max_active_dims
        self.pre_bias = nn.Parameter(torch.zeros(input_dim))
        self.encoder = nn.Linear(input_dim, hidden_dim, bias=False)
        self.latent_bias = nn.Parameter(torch.zeros(hidden_dim))
        self.decoder = _TiedDecoder(self.encoder)
        self.stats_last_nonzero: torch.Tensor
        self.register_buffer("stats_last_nonzero", torch.zeros(hidden_dim, dtype=torch.long))
        self._register_load_state_dict_pre_hook(_fill_tied_weight)

    @property
    def embedding_dim(self) -> int:
        """Width h of the sparse code."""
        return self.hidden_dim

    def _prepare(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """(B, d) -> (x', μ, σ): per-row standardisation when ``normalize`` (σ unbiased, +1e-5), else x unchanged."""
        if x.shape[-1] != self.input_dim:
            raise ConfigError(f"SparseAutoEncoder: input has {x.shape[-1]} dims but input_dim={self.input_dim}; "
                              "set input_dim to the backbone's embedding_dim")
        if not self.normalize:
            return x, None, None
        mu = x.mean(dim=-1, keepdim=True)
        centred = x - mu
        std = centred.std(dim=-1, keepdim=True)
        return centred / (std + 1e-5), mu, std

    def _pre_activation(self, x_prepared: torch.Tensor) -> torch.Tensor:
        """(B, d) -> (B, h): W(x' - b_pre) + b_lat."""
        return F.linear(x_prepared - self.pre_bias, self.encoder.weight, self.latent_bias)

    def _decode(self, z: torch.Tensor, mu: torch.Tensor | None, std: torch.Tensor | None) -> torch.Tensor:
        """(B, h) -> (B, d): (Wᵀz + b_pre)·σ + μ."""
        out = self.decoder(z) + self.pre_bias
        return out * std + mu if self.normalize else out

    def forward(self, x: torch.Tensor) -> CSROutput:
        """Encode and reconstruct (training path). Pure: the dead-latent counters are not touched.

        Args:
            x: (B, d) dense embeddings.

        Returns:
            :class:`CSROutput` with the codes and reconstructions the CSR losses need.
        """
        x_prepared, mu, std = self._prepare(x)
        a = self._pre_activation(x_prepared)
        z_k = topk_relu(a, self.k)
        z_4k = topk_relu(a, 4 * self.k)
        decoded_k = self._decode(z_k, mu, std)
        bias = self.pre_bias * std if self.normalize else self.pre_bias
        z_aux, decoded_aux = None, None
        if self.k_aux > 0:
            z_aux = topk_relu(a * self.dead_mask(), self.k_aux)
            decoded_aux = self.decoder(z_aux) + self.pre_bias
            decoded_aux = decoded_aux * std if self.normalize else decoded_aux
        return CSROutput(z_k=z_k, x=x, pre_activation=a, z_4k=z_4k, z_aux=z_aux, decoded_k=decoded_k,
                         decoded_4k=self._decode(z_4k, mu, std), decoded_aux=decoded_aux,
                         decoded_k_pre_bias=decoded_k - bias)

    def encode(self, x: torch.Tensor, max_active_dims: int | None = None) -> torch.Tensor:
        """Inference path: sparse code only (no decoder, no statistics).

        Args:
            x: (B, d) dense embeddings.
            max_active_dims: active latents per row; ``None``: ``self.max_active_dims``, else ``self.k``.

        Returns:
            (B, h) sparse code with at most ``max_active_dims`` positive entries per row.
        """
        k = max_active_dims if max_active_dims is not None else self.max_active_dims or self.k
        if not 1 <= k <= self.hidden_dim:
            raise ConfigError(f"SparseAutoEncoder.encode: max_active_dims={k!r}: expected 1..hidden_dim="
                              f"{self.hidden_dim}")
        x_prepared, _, _ = self._prepare(x)
        return topk_relu(self._pre_activation(x_prepared), k)

    @torch.no_grad()
    def record_activity(self, z_k: torch.Tensor) -> None:
        """Update the dead-latent counters after one optimizer step.

        Args:
            z_k: (N, h) top-k codes of every text encoded in the step (all columns, all micro-batches).
                A latent active (> 1e-5) in some row is reset to 0; every other latent is incremented by 1.
        """
        active = (z_k.detach().reshape(-1, self.hidden_dim) > ACTIVE_EPS).any(dim=0)
        self.stats_last_nonzero.add_(1).masked_fill_(active.to(self.stats_last_nonzero.device), 0)

    def dead_mask(self) -> torch.Tensor:
        """(h,) bool: latents that have not fired for ``dead_threshold`` or more recorded steps."""
        return self.stats_last_nonzero >= self.dead_threshold

    def dead_fraction(self) -> float:
        """Share of dead latents, in [0, 1]."""
        return float(self.dead_mask().float().mean())

    def export_config(self) -> dict:
        """Constructor arguments: sentence-transformers' six config keys plus ``max_active_dims``."""
        return {"input_dim": self.input_dim, "hidden_dim": self.hidden_dim, "k": self.k, "k_aux": self.k_aux,
                "normalize": self.normalize, "dead_threshold": self.dead_threshold,
                "max_active_dims": self.max_active_dims}


def _validate(input_dim, hidden_dim, k, k_aux, dead_threshold, max_active_dims) -> None:
    """Raise one :class:`ConfigError` listing every bad argument."""

    def is_int(v) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    problems = []
    if not is_int(input_dim) or input_dim < 1:
        problems.append(f"input_dim={input_dim!r}: expected an int >= 1 (the backbone's embedding_dim)")
    if not is_int(hidden_dim) or hidden_dim < 1:
        problems.append(f"hidden_dim={hidden_dim!r}: expected an int >= 1")
    h = hidden_dim if is_int(hidden_dim) and hidden_dim >= 1 else None
    if not is_int(k) or k < 1 or (h is not None and k > h):
        problems.append(f"k={k!r}: expected an int in 1..hidden_dim ({h})")
    if not is_int(k_aux) or k_aux < 0 or (h is not None and k_aux > h):
        problems.append(f"k_aux={k_aux!r}: expected an int in 0..hidden_dim ({h}); 0 disables the auxiliary loss")
    if not is_int(dead_threshold) or dead_threshold < 1:
        problems.append(f"dead_threshold={dead_threshold!r}: expected an int >= 1 (training steps)")
    if max_active_dims is not None and (not is_int(max_active_dims) or max_active_dims < 1
                                        or (h is not None and max_active_dims > h)):
        problems.append(f"max_active_dims={max_active_dims!r}: expected null or an int in 1..hidden_dim ({h})")
    if problems:
        raise ConfigError("SparseAutoEncoder: " + "; ".join(problems))


def _fill_tied_weight(state_dict, prefix, *args) -> None:
    """Accept state dicts that store the tied matrix once (safetensors de-duplication) under either name."""
    names = (prefix + "encoder.weight", prefix + "decoder.linear.weight")
    present = [n for n in names if n in state_dict]
    if len(present) == 1:
        other = names[1] if present[0] == names[0] else names[0]
        state_dict[other] = state_dict[present[0]]
