"""Triplet loss on (anchor, positive, negative) sparse representations: tensors in, scalar out."""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from splade_lightning.errors import ConfigError
from splade_lightning.losses.pairs import pairwise_cosine
from splade_lightning.losses.ranking import at_least_fp32

DistanceMetric = Literal["euclidean", "cosine", "manhattan"]


def distance(a: torch.Tensor, b: torch.Tensor, metric: DistanceMetric) -> torch.Tensor:
    """(B, V), (B, V) -> (B,) distance of each row pair, as sentence-transformers 6.2 ``TripletDistanceMetric``:
    euclidean ``||a - b||_2``, manhattan ``||a - b||_1``, cosine ``1 - cos(a, b)``."""
    if metric == "euclidean":
        return torch.linalg.vector_norm(a - b, dim=-1)
    if metric == "manhattan":
        return (a - b).abs().sum(dim=-1)
    return 1 - pairwise_cosine(a, b)


class TripletLoss(nn.Module):
    """Triplet margin loss (Schroff et al., FaceNet, arXiv:1503.03832; for sentence embeddings Reimers & Gurevych,
    arXiv:1908.10084): ``loss = mean_i max(d(a_i, p_i) - d(a_i, n_i) + margin, 0)``.

    Takes the batch of a source with exactly one negative per query (``(anchor, positive, negative)`` columns:
    ``TextTriplets`` with ``num_negatives: 1``); the query column is the anchor. Defaults of sentence-transformers 6.2
    ``SparseTripletLoss`` (``sparse_encoder/losses/sparse_triplet.py``, computing
    ``sentence_transformer/losses/triplet.py``): euclidean distance, margin 5; values and gradients equal (tested).
    Distances are computed in float32 at least.

    Args:
        distance_metric: ``euclidean``, ``cosine`` (1 - cosine) or ``manhattan``.
        triplet_margin: how much farther than the positive the negative should be (>= 0).
    """

    #: (least, most) hard negatives per query the loss accepts
    negatives_needed = (1, 1)

    def __init__(self, distance_metric: DistanceMetric = "euclidean", triplet_margin: float = 5.0):
        super().__init__()
        problems = []
        if distance_metric not in ("euclidean", "cosine", "manhattan"):
            problems.append(f"distance_metric={distance_metric!r}: expected 'euclidean', 'cosine' or 'manhattan'")
        if (isinstance(triplet_margin, bool) or not isinstance(triplet_margin, (int, float))
                or not 0 <= triplet_margin < math.inf):
            problems.append(f"triplet_margin={triplet_margin!r}: expected a finite number >= 0")
        if problems:
            raise ConfigError("TripletLoss: " + "; ".join(problems))
        self.distance_metric, self.triplet_margin = distance_metric, float(triplet_margin)

    def forward(self, query_reps: torch.Tensor, doc_reps: torch.Tensor, num_negatives: int) -> torch.Tensor:
        """Compute the loss.

        Args:
            query_reps: (B, V) anchors.
            doc_reps: (2B, V), column-major: rows 0..B-1 the positives, rows B..2B-1 the negatives.
            num_negatives: must be 1.

        Returns:
            Scalar loss, at least float32.

        Raises:
            ValueError: ``num_negatives != 1`` or shapes that do not match the layout above.
        """
        if num_negatives != 1:
            raise ValueError(f"TripletLoss: num_negatives={num_negatives}, expected exactly 1 negative per anchor "
                             "(anchor, positive, negative)")
        batch = query_reps.shape[0]
        if query_reps.ndim != 2 or tuple(doc_reps.shape) != (2 * batch, query_reps.shape[1]):
            raise ValueError(f"TripletLoss: query_reps {tuple(query_reps.shape)}, doc_reps {tuple(doc_reps.shape)}: "
                             "expected (B, V) and (2B, V)")
        anchors = at_least_fp32(query_reps)
        positives, negatives = at_least_fp32(doc_reps).split(batch)
        gap = distance(anchors, positives, self.distance_metric) - distance(anchors, negatives, self.distance_metric)
        return F.relu(gap + self.triplet_margin).mean()
