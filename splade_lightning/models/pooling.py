"""SPLADE pooling of MLM logits into vocabulary-sized term weights.

SPLADE (Formal et al., SIGIR 2021, arXiv:2107.05720) and SPLADE v2 (arXiv:2109.10086):
``w_v = max_l log(1 + relu(x_{l,v}))`` over the valid tokens ``l`` (``sum`` in the original SPLADE).
The ``log1p_relu`` activation applies ``log1p`` twice (OpenSearch "L0-enhanced" v3 models; sentence-transformers
``activation_function="log1p_relu"``).
"""

from __future__ import annotations

from typing import Literal

import torch

Pooling = Literal["max", "sum"]
Activation = Literal["relu", "log1p_relu"]


def splade_activation(x: torch.Tensor, activation: Activation = "relu") -> torch.Tensor:
    """``log1p(relu(x))``, or ``log1p(log1p(relu(x)))`` for ``log1p_relu``. Any shape."""
    out = torch.log1p(torch.relu(x))
    if activation == "log1p_relu":
        out = torch.log1p(out)
    return out


def splade_pool(
    logits: torch.Tensor,
    attention_mask: torch.Tensor,
    pooling: Pooling = "max",
    activation: Activation = "relu",
    inplace: bool = False,
) -> torch.Tensor:
    """Pool (B, L, V) MLM logits into (B, V) non-negative term weights.

    Max pooling takes the maximum of the *raw* logits over valid positions and activates the (B, V) result only:
    the activation is monotone, so this equals ``max_l act(x_l)`` exactly (the OpenSearch trick) and never builds an
    activated (B, L, V) tensor. Padded positions never contribute (they count as 0, as in sentence-transformers).

    Args:
        logits: (B, L, V) MLM logits.
        attention_mask: (B, L), 1 for real tokens, 0 for padding.
        pooling: ``max`` (SPLADE v2+) or ``sum`` (SPLADE v1).
        activation: ``relu`` -> log(1+relu(x)); ``log1p_relu`` -> log(1+log(1+relu(x))).
        inplace: for max pooling, mask ``logits`` in place (saves one (B, L, V) copy; the caller must not reuse them).

    Returns:
        (B, V) term weights, all >= 0.
    """
    mask = attention_mask.to(torch.bool).unsqueeze(-1)  # (B, L, 1)
    if pooling == "max":
        fill = torch.finfo(logits.dtype).min
        masked = logits.masked_fill_(~mask, fill) if inplace else logits.masked_fill(~mask, fill)
        return splade_activation(masked.amax(dim=1), activation)
    if pooling == "sum":
        return (splade_activation(logits, activation) * mask.to(logits.dtype)).sum(dim=1)
    raise ValueError(f"pooling must be 'max' or 'sum', got {pooling!r}")
