"""Distillation losses on teacher scores (MarginMSE, KL-Div and SPLADE-v3's mix of both): tensors in, scalars out.

Every loss here has ``uses_teacher_scores = True``, so :class:`~splade_lightning.systems.SpladeModule` calls it as
``loss(query_reps, doc_reps, num_negatives, teacher_scores)``:

- ``query_reps``: (B, V);
- ``doc_reps``: (B * (1 + n), V), column-major: rows ``c*B .. c*B + B - 1`` are column ``c`` (c = 0: the positives,
  c = j: every query's j-th hard negative), so query ``i``'s column-``c`` document is row ``c*B + i``;
- ``teacher_scores``: (B, 1 + n) raw teacher scores of [positive, negative_1, ..., negative_n] (not margins).

The student score of query ``i`` and its column-``c`` document is the dot product ``q_i · d_{c*B+i}``, as
sentence-transformers' ``pairwise_dot_score``. Only each query's own 1 + n candidates are scored (no in-batch
negatives). Scores are computed in float32 at least, so the losses are safe under bf16/fp16 autocast; the teacher
side is detached.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from splade_lightning.errors import ConfigError
from splade_lightning.losses.ranking import at_least_fp32


def candidate_scores(query_reps: torch.Tensor, doc_reps: torch.Tensor, num_negatives: int) -> torch.Tensor:
    """Dot-product score of each query with its own positive and hard negatives.

    Args:
        query_reps: (B, V).
        doc_reps: (B * (1 + num_negatives), V), column-major (rows 0..B-1 are the positives).
        num_negatives: hard negatives per query, n.

    Returns:
        (B, 1 + n) student scores, column 0 the positive; at least float32.
    """
    batch, vocab = query_reps.shape
    docs = at_least_fp32(doc_reps).reshape(1 + num_negatives, batch, vocab)
    # Same elementwise product + sum as sentence-transformers' pairwise_dot_score, per column.
    return (at_least_fp32(query_reps).unsqueeze(0) * docs).sum(dim=-1).transpose(0, 1)


def _check_inputs(loss: str, query_reps: torch.Tensor, doc_reps: torch.Tensor, num_negatives: int,
                  teacher_scores: torch.Tensor) -> None:
    """Raise ``ValueError`` naming the expected shapes when the batch does not fit the distillation layout."""
    if query_reps.ndim != 2:
        raise ValueError(f"{loss}: query_reps has shape {tuple(query_reps.shape)}, expected (B, V)")
    batch, vocab = query_reps.shape
    if num_negatives < 1:
        raise ValueError(f"{loss}: num_negatives={num_negatives}, expected at least 1 hard negative per query: "
                         "distillation compares the positive with the negatives (with one candidate the margins "
                         "do not exist and the softmax is constant)")
    expected_docs = (batch * (1 + num_negatives), vocab)
    if tuple(doc_reps.shape) != expected_docs:
        raise ValueError(f"{loss}: doc_reps has shape {tuple(doc_reps.shape)}, expected (B*(1+n), V) = "
                         f"({batch}*(1+{num_negatives}), {vocab}) = {expected_docs}")
    expected_teacher = (batch, 1 + num_negatives)
    if tuple(teacher_scores.shape) != expected_teacher:
        raise ValueError(f"{loss}: teacher_scores has shape {tuple(teacher_scores.shape)}, expected (B, 1+n) = "
                         f"{expected_teacher}: one raw teacher score for the positive and each of the "
                         f"n={num_negatives} negatives of every one of the B={batch} queries")


def _scores(loss: str, query_reps: torch.Tensor, doc_reps: torch.Tensor, num_negatives: int,
            teacher_scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Validated (B, 1+n) student scores and detached teacher scores of the same dtype."""
    _check_inputs(loss, query_reps, doc_reps, num_negatives, teacher_scores)
    student = candidate_scores(query_reps, doc_reps, num_negatives)
    return student, teacher_scores.detach().to(student.dtype)


def _check_temperature(loss: str, temperature: float) -> list[str]:
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 < temperature < math.inf:
        return [f"{loss}: temperature={temperature!r}: expected a positive finite number"]
    return []


class TeacherScoreLoss(nn.Module):
    """Base of the distillation losses: validates the batch, computes the (B, 1+n) student scores of each query's
    own candidates and hands them with the teacher scores to :meth:`from_scores`."""

    uses_teacher_scores = True

    def forward(self, query_reps: torch.Tensor, doc_reps: torch.Tensor, num_negatives: int,
                teacher_scores: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        """Compute the loss.

        Args:
            query_reps: (B, V).
            doc_reps: (B * (1 + n), V), column-major: rows 0..B-1 are the positives.
            num_negatives: hard negatives per query, n >= 1.
            teacher_scores: (B, 1 + n) raw teacher scores of [positive, negative_1..negative_n].

        Returns:
            A scalar (at least float32), or a dict with ``"loss"`` and named parts.

        Raises:
            ValueError: n < 1 or a shape that does not match the layout above.
        """
        student, teacher = _scores(type(self).__name__, query_reps, doc_reps, num_negatives, teacher_scores)
        return self.from_scores(student, teacher)

    def from_scores(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor | dict[str, torch.Tensor]:
        """(B, 1+n) student scores and detached teacher scores -> the loss."""
        raise NotImplementedError


class MarginMSELoss(TeacherScoreLoss):
    """MarginMSE distillation (Hofstätter et al., "Improving Efficient Neural Ranking Models with Cross-Architecture
    Knowledge Distillation", arXiv:2010.02666).

    ``loss = mean_{i, j} [ (s(q_i, pos_i) - s(q_i, neg_{i,j})) - (t_{i,0} - t_{i,j}) ]^2`` over all B·n
    (query, negative) pairs, with s the student dot product and t the (detached) teacher scores. Equals
    sentence-transformers 6.2 ``SparseMarginMSELoss`` fed the same (B, 1+n) raw teacher scores
    (``sentence_transformer/losses/margin_mse.py:189-217``), NAVER's legacy ``DistilMarginMSE`` (n = 1) and
    OpenSearch's ``marginmse`` at T = 1.

    Note: NAVER's HF trainer (used for SPLADE-v3) instead averages over all (1+n)^2 candidate pairs, negative-negative
    margins and the zero diagonal included (naver/splade ``splade/hf/trainers.py:207-217``); for n = 1 that is half
    of this loss.
    """

    def from_scores(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """(B, 1+n) student and teacher scores -> scalar."""
        return _margin_mse(student, teacher)


def _margin_mse(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(student[:, :1] - student[:, 1:], teacher[:, :1] - teacher[:, 1:])


class KLDistillationLoss(TeacherScoreLoss):
    """KL-divergence distillation over each query's candidates (Hinton et al., arXiv:1503.02531; for SPLADE:
    SPLADE++, Formal et al., arXiv:2205.04733).

    ``loss = [T^2] * mean_i KL( softmax(t_i / T) || softmax(s_i / T) )`` over the 1 + n candidates
    [positive, negative_1..negative_n] of query i (``batchmean``), with s the student dot products and t the
    (detached) teacher scores.

    Defaults: ``temperature=1.0`` keeps NAVER's (``splade/hf/trainers.py:227-233``, T = 1) and OpenSearch's
    (``kldiv``, T = 1, no T^2) semantics; at T = 1 the T^2 factor is 1, so all three conventions agree and this equals
    sentence-transformers 6.2 ``SparseDistillKLDivLoss(temperature=1.0)``. sentence-transformers' sparse default is
    T = 2 (``sparse_encoder/losses/sparse_distill_kl_div.py:17``) multiplied by T^2
    (``sentence_transformer/losses/distill_kl_div.py:196-209``): use ``temperature=2.0`` to reproduce it. For
    OpenSearch at T != 1, set ``scale_by_temperature_squared=False``.

    Args:
        temperature: T > 0, divides student and teacher scores (higher = softer distributions).
        scale_by_temperature_squared: multiply by T^2, Hinton et al.'s correction that keeps the gradient magnitude
            independent of T (sentence-transformers does, OpenSearch does not).
    """

    def __init__(self, temperature: float = 1.0, scale_by_temperature_squared: bool = True):
        super().__init__()
        errors = _check_temperature(type(self).__name__, temperature)
        if not isinstance(scale_by_temperature_squared, bool):
            errors.append(f"{type(self).__name__}: scale_by_temperature_squared={scale_by_temperature_squared!r}: "
                          "expected true or false")
        if errors:
            raise ConfigError("; ".join(errors))
        self.temperature = float(temperature)
        self.scale_by_temperature_squared = scale_by_temperature_squared

    def from_scores(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """(B, 1+n) student and teacher scores -> scalar."""
        student_log_probs = torch.log_softmax(student / self.temperature, dim=1)
        teacher_probs = torch.softmax(teacher / self.temperature, dim=1)
        loss = F.kl_div(student_log_probs, teacher_probs, reduction="batchmean")
        return loss * self.temperature**2 if self.scale_by_temperature_squared else loss


class SpladeV3DistillationLoss(TeacherScoreLoss):
    """SPLADE-v3's mix of KL-Div and MarginMSE distillation (Lassance et al., "SPLADE-v3: New baselines for SPLADE",
    arXiv:2403.06789): ``loss = alpha * KL + (1 - alpha) * MarginMSE``.

    KL is :class:`KLDistillationLoss` (``temperature``, times T^2) and MarginMSE is :class:`MarginMSELoss`
    (positive-vs-negative margins, untempered), both over each query's 1 + n candidates.

    Default ``alpha=0.95``: NAVER's released SPLADE-v3 recipe (``conf/hf/training_mse.yaml``:
    ``training_loss: kldiv_mse_margin_with_weights``, 8 negatives) weighs ``0.99 * KL + 0.05 * MarginMSE``
    (naver/splade ``splade/hf/trainers.py:219-220, 234-235``), i.e. MarginMSE at about 1/20 of KL; alpha = 0.95
    keeps that ratio (0.99/1.04 = 0.952) with weights that sum to 1. Two differences remain: NAVER's total is about
    1.04x larger (relative to the regularizers), and NAVER's MarginMSE averages all (1+n)^2 candidate pairs (see
    :class:`MarginMSELoss`). The weights were read from NAVER's code, not from the paper's text.

    Args:
        alpha: weight of the KL term, 0 <= alpha <= 1; MarginMSE gets 1 - alpha.
        temperature: T > 0 of the KL term (SPLADE-v3 uses 1).
    """

    def __init__(self, alpha: float = 0.95, temperature: float = 1.0):
        super().__init__()
        name = type(self).__name__
        errors = _check_temperature(name, temperature)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
            errors.append(f"{name}: alpha={alpha!r}: expected a number with 0 <= alpha <= 1 (the KL weight)")
        if errors:
            raise ConfigError("; ".join(errors))
        self.alpha = float(alpha)
        self.kl = KLDistillationLoss(temperature=temperature)

    def from_scores(self, student: torch.Tensor, teacher: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, 1+n) student and teacher scores -> ``{"loss": alpha * kl + (1 - alpha) * margin_mse, "kl": ...,
        "margin_mse": ...}`` (the parts unweighted)."""
        kl = self.kl.from_scores(student, teacher)
        margin_mse = _margin_mse(student, teacher)
        return {"loss": self.alpha * kl + (1.0 - self.alpha) * margin_mse, "kl": kl, "margin_mse": margin_mse}
