"""Losses on labelled text pairs (text1, text2, label): CoSENT, AnglE and CosineSimilarity. Tensors in, scalar out.

Every loss here has ``uses_labels = True`` and ``negatives_needed = (0, 0)``, so a system calls it as
``loss(query_reps, doc_reps, num_negatives, labels)`` with

- ``query_reps``: (B, V), the first text of each pair (``text1``);
- ``doc_reps``: (B, V), the second text (``text2``), row ``i`` paired with query row ``i``;
- ``labels``: (B,) the pair's gold similarity score or class label (float).

They equal sentence-transformers 6.2 ``SparseCoSENTLoss``, ``SparseAnglELoss`` and ``SparseCosineSimilarityLoss``
(``sparse_encoder/losses/sparse_cosent.py``, ``sparse_angle.py``, ``sparse_cosine_similarity.py``, which compute
``sentence_transformer/losses/cosent.py`` and ``cosine_similarity.py``) with their default arguments, values and
gradients (tested). Similarities are computed in float32 at least, so the losses are safe under bf16/fp16 autocast.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from splade_lightning.errors import ConfigError
from splade_lightning.losses.ranking import at_least_fp32


def check_pairs(loss: str, query_reps: torch.Tensor, doc_reps: torch.Tensor, num_negatives: int,
                labels: torch.Tensor) -> None:
    """Raise ``ValueError`` naming the expected shapes when the batch is not B labelled pairs."""
    if num_negatives != 0:
        raise ValueError(f"{loss}: num_negatives={num_negatives}, expected 0: the loss compares labelled "
                         "(text1, text2) pairs, not a query with negatives (train on a TextPairs source)")
    if query_reps.ndim != 2 or tuple(doc_reps.shape) != tuple(query_reps.shape):
        raise ValueError(f"{loss}: query_reps {tuple(query_reps.shape)} and doc_reps {tuple(doc_reps.shape)}: "
                         "expected both (B, V)")
    if tuple(labels.shape) != (query_reps.shape[0],):
        raise ValueError(f"{loss}: labels has shape {tuple(labels.shape)}, expected (B,) = "
                         f"({query_reps.shape[0]},): one label per pair")


def pairwise_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, V), (B, V) -> (B,) cosine of each row pair, as sentence-transformers' ``util.pairwise_cos_sim``
    (L2-normalise with eps 1e-12, then dot; an all-zero row scores 0)."""
    return (F.normalize(a, p=2, dim=1) * F.normalize(b, p=2, dim=1)).sum(dim=-1)


def pairwise_angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(B, V), (B, V) -> (B,) AnglE similarity ``|cos + sin|`` (Li & Li, arXiv:2309.12871), as sentence-transformers
    6.2 ``util.pairwise_angle_sim``: rows L2-normalised, dimension ``i`` paired with ``i + V/2`` for the sine term
    (V padded with a zero column when odd)."""
    if a.shape[1] % 2:
        a, b = F.pad(a, (0, 1)), F.pad(b, (0, 1))
    a, b = F.normalize(a, p=2, dim=1), F.normalize(b, p=2, dim=1)
    cosines = (a * b).sum(dim=1)
    first_a, last_a = torch.chunk(a, 2, dim=1)
    first_b, last_b = torch.chunk(b, 2, dim=1)
    sines = (last_a * first_b - first_a * last_b).sum(dim=1)
    return (cosines + sines).abs()


def cosent(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """CoSENT's ranking objective on (B,) scaled pair scores and (B,) labels:
    ``log(1 + sum_{(i, j): label_i > label_j} exp(s_j - s_i))`` (ties and equal pairs contribute nothing)."""
    diffs = scores.unsqueeze(0) - scores.unsqueeze(1)  # [i, j] = s_j - s_i
    ordered = labels.unsqueeze(1) > labels.unsqueeze(0)  # label_i > label_j
    terms = diffs.masked_fill(~ordered, -math.inf).flatten()
    return torch.logsumexp(torch.cat([terms.new_zeros(1), terms]), dim=0)


class LabelledPairLoss(nn.Module):
    """Base of the pair losses: validates the batch and hands (B, V) float32 reps and (B,) labels to
    :meth:`from_reps`."""

    uses_labels = True
    #: (least, most) hard negatives per query the loss accepts
    negatives_needed = (0, 0)

    def forward(self, query_reps: torch.Tensor, doc_reps: torch.Tensor, num_negatives: int,
                labels: torch.Tensor) -> torch.Tensor:
        """Compute the loss.

        Args:
            query_reps: (B, V) reps of each pair's first text.
            doc_reps: (B, V) reps of each pair's second text.
            num_negatives: must be 0.
            labels: (B,) gold similarity scores or class labels.

        Returns:
            Scalar loss, at least float32.

        Raises:
            ValueError: a batch that is not B labelled pairs.
        """
        check_pairs(type(self).__name__, query_reps, doc_reps, num_negatives, labels)
        query_reps, doc_reps = at_least_fp32(query_reps), at_least_fp32(doc_reps)
        return self.from_reps(query_reps, doc_reps, labels.detach().to(query_reps.dtype))

    def from_reps(self, query_reps: torch.Tensor, doc_reps: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, V), (B, V) reps and (B,) labels -> scalar."""
        raise NotImplementedError


def _check_scale(loss: str, scale: float) -> None:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < math.inf:
        raise ConfigError(f"{loss}: scale={scale!r}: expected a positive finite number (the inverse temperature)")


class CoSENTLoss(LabelledPairLoss):
    """CoSENT (Su, "CoSENT", https://kexue.fm/archives/8847): for every two pairs of the batch whose labels are
    ordered, the higher-labelled pair should score higher:

    ``loss = log(1 + sum_{label_i > label_j} exp(scale · (sim(a_j, b_j) - sim(a_i, b_i))))``

    Only the order of the labels matters (scores, 0/1 labels or classes all work). Defaults of sentence-transformers
    6.2 ``SparseCoSENTLoss``: ``scale=20``, cosine similarity.

    Args:
        scale: multiplies the similarities (the inverse temperature).
        similarity: ``cosine`` (sentence-transformers' default) or ``dot`` (SPLADE's raw scoring function; mind the
            scale, dot products of sparse reps are not bounded).
    """

    def __init__(self, scale: float = 20.0, similarity: Literal["cosine", "dot"] = "cosine"):
        super().__init__()
        _check_scale(type(self).__name__, scale)
        if similarity not in ("cosine", "dot"):
            raise ConfigError(f"{type(self).__name__}: similarity={similarity!r}: expected 'cosine' or 'dot'")
        self.scale, self.similarity = float(scale), similarity

    def from_reps(self, query_reps: torch.Tensor, doc_reps: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, V), (B, V) reps and (B,) labels -> scalar."""
        if self.similarity == "cosine":
            scores = pairwise_cosine(query_reps, doc_reps)
        else:
            scores = (query_reps * doc_reps).sum(dim=-1)
        return cosent(self.scale * scores, labels)


class AnglELoss(LabelledPairLoss):
    """AnglE (Li & Li, "AnglE-optimized Text Embeddings", arXiv:2309.12871): CoSENT's objective on the angle
    similarity ``|cos + sin|`` (:func:`pairwise_angle`) instead of the cosine, whose gradient vanishes near ±1.

    Default of sentence-transformers 6.2 ``SparseAnglELoss``: ``scale=20``. (``SparseAnglELoss`` subclasses
    ``SparseCoSENTLoss``, so it takes pairs only, unlike the dense ``AnglELoss`` that also expands triplets.)

    Args:
        scale: multiplies the similarities (the inverse temperature).
    """

    def __init__(self, scale: float = 20.0):
        super().__init__()
        _check_scale(type(self).__name__, scale)
        self.scale = float(scale)

    def from_reps(self, query_reps: torch.Tensor, doc_reps: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, V), (B, V) reps and (B,) labels -> scalar."""
        return cosent(self.scale * pairwise_angle(query_reps, doc_reps), labels)


class CosineSimilarityLoss(LabelledPairLoss):
    """Regress the cosine of each pair on its label (Reimers & Gurevych, Sentence-BERT, arXiv:1908.10084):
    ``loss = mean_i (cos(a_i, b_i) - label_i)^2``.

    The labels should lie in the cosine's range; sentence-transformers expects [0, 1]. As sentence-transformers 6.2
    ``SparseCosineSimilarityLoss`` with its defaults (``loss_fct=MSELoss()``, ``cos_score_transformation=Identity()``;
    ``torch.cosine_similarity`` with eps 1e-8); other ``loss_fct``/transformations are not offered.
    """

    def from_reps(self, query_reps: torch.Tensor, doc_reps: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """(B, V), (B, V) reps and (B,) labels -> scalar."""
        return F.mse_loss(torch.cosine_similarity(query_reps, doc_reps), labels)
