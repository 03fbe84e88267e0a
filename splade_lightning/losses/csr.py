"""CSR reconstruction losses (top-k, top-4k and auxiliary-k): tensors in, named scalars out."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from splade_lightning.errors import ConfigError


def normalized_mse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """MSE(prediction, target) / MSE(mean over rows of target, target) (Gao et al., arXiv:2406.04093).

    As sentence-transformers 6.2, the normaliser is replaced by 1 (plain MSE) when the target has zero variance
    over the batch or all its rows are identical.

    Args:
        prediction: (B, d).
        target: (B, d).

    Returns:
        Scalar.
    """
    variance = F.mse_loss(target.mean(dim=0, keepdim=True).expand_as(target), target)
    degenerate = (variance == 0) | (target == target[:1]).all()
    variance = torch.where(degenerate, torch.ones_like(variance), variance)
    return F.mse_loss(prediction, target) / variance


class CSRReconstructionLoss(nn.Module):
    """Reconstruction terms of CSR (Wen et al., "Beyond Matryoshka", arXiv:2503.01776), after the TopK sparse
    autoencoder of Gao et al. (arXiv:2406.04093), for one column (one batch of texts):

    - ``recon_k``   = MSE(x, x̂_k): the top-k reconstruction of the backbone embedding x;
    - ``recon_4k``  = MSE(x, x̂_4k): the top-4k reconstruction (multi-k objective);
    - ``recon_aux`` = NMSE(x̂_aux, x - stopgrad(x̂_k - b_pre)): the dead latents (auxiliary-k code) predict the
      top-k residual; 0 when the auxiliary code is disabled (k_aux = 0, ``decoded_aux`` is None).

    The terms are returned raw (unweighted); :func:`csr_total` combines them. For several columns (anchor,
    positive, ...) call the loss once per column and average each term over the columns, as sentence-transformers'
    ``CSRLoss`` does (the NMSE normaliser is per column, so concatenating columns would differ).

    Args:
        beta: weight of ``recon_aux`` in the total (sentence-transformers' ``CSRLoss`` default 0.1); kept here for
            the caller to pass to :func:`csr_total`.
    """

    def __init__(self, beta: float = 0.1):
        super().__init__()
        if beta < 0:
            raise ConfigError(f"CSRReconstructionLoss: beta={beta!r}: expected a number >= 0")
        self.beta = beta

    def forward(
        self,
        x: torch.Tensor,
        decoded_k: torch.Tensor,
        decoded_4k: torch.Tensor,
        decoded_aux: torch.Tensor | None,
        decoded_k_pre_bias: torch.Tensor,
    ) -> dict[str, torch.Tensor]:
        """Compute the raw terms (``CSROutput.reconstruction_tensors()`` gives the arguments).

        Args:
            x: (B, d) backbone embedding, the target (not detached: the backbone gets reconstruction gradients).
            decoded_k: (B, d) reconstruction from the top-k code.
            decoded_4k: (B, d) reconstruction from the top-4k code.
            decoded_aux: (B, d) Wᵀz_aux + b_pre (scaled by σ when normalising), or None (k_aux = 0).
            decoded_k_pre_bias: (B, d) decoded_k - b_pre; detached here (the stop-gradient of the aux target).

        Returns:
            ``{"recon_k", "recon_4k", "recon_aux"}`` scalars.
        """
        recon_k = F.mse_loss(x, decoded_k)
        if decoded_aux is None:
            recon_aux = torch.zeros_like(recon_k)
        else:
            recon_aux = normalized_mse(decoded_aux, x - decoded_k_pre_bias.detach())
        return {"recon_k": recon_k, "recon_4k": F.mse_loss(x, decoded_4k), "recon_aux": recon_aux}


def csr_total(terms: dict[str, torch.Tensor], ranking_loss: torch.Tensor, beta: float, gamma: float) -> torch.Tensor:
    """CSR objective ``L_k + L_4k/8 + β·L_aux + γ·L_rank`` (arXiv:2503.01776; weights as sentence-transformers).

    Args:
        terms: the raw terms of :class:`CSRReconstructionLoss` (averaged over columns).
        ranking_loss: scalar contrastive loss on the sparse codes (e.g. ``InBatchNegativesLoss``).
        beta: weight of ``recon_aux``.
        gamma: weight of the ranking loss.

    Returns:
        Scalar total loss.
    """
    return terms["recon_k"] + terms["recon_4k"] / 8.0 + beta * terms["recon_aux"] + gamma * ranking_loss
