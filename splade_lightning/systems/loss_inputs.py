"""What a training loss needs from the batch, the check that the training data provides it (run before training),
and the one call that hands a loss its inputs; shared by :class:`~splade_lightning.systems.SpladeModule` and
:class:`~splade_lightning.systems.CSRModule`.

A loss declares its needs with class attributes (absent = not needed):

- ``uses_teacher_scores = True``: called as ``loss(query_reps, doc_reps, num_negatives, teacher_scores)`` with the
  batch's (B, 1 + n) teacher scores (distillation: ``MarginMSELoss``, ``KLDistillationLoss``, ...);
- ``uses_labels = True``: called as ``loss(query_reps, doc_reps, num_negatives, labels)`` with the batch's (B,) pair
  labels (``CoSENTLoss``, ``AnglELoss``, ``CosineSimilarityLoss``);
- ``uses_teacher_reps = True``: called as ``loss(query_reps, doc_reps, num_negatives, teacher_query_reps,
  teacher_doc_reps)`` with a teacher model's reps of the same texts (``EmbeddingMSELoss``; the system holds the
  teacher);
- ``negatives_needed = (least, most)``: hard negatives per query it accepts (``most`` ``None``: no limit); default
  ``(0, None)``, distillation losses ``(1, None)``, ``TripletLoss`` ``(1, 1)``, the pair losses ``(0, 0)``.

Otherwise it is called as ``loss(query_reps, doc_reps, num_negatives)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from splade_lightning.errors import ConfigError

#: batch field -> what a loss that reads it does, for messages
NEEDS = {"teacher_scores": "distils teacher scores", "labels": "learns from pair labels (scores or classes)"}
#: batch field -> what supplies it, for messages
SUPPLIERS = {
    "teacher_scores": "a ScoredGroups source, or an IdGroups source with teacher_scores",
    "labels": "a TextPairs source ((text1, text2, score) or (text1, text2, label) columns)",
}


def batch_fields_needed(loss: nn.Module) -> frozenset[str]:
    """The :class:`~splade_lightning.types.TrainBatch` fields ``loss`` reads: ``teacher_scores`` and/or ``labels``."""
    needed = set()
    if getattr(loss, "uses_teacher_scores", False):
        needed.add("teacher_scores")
    if getattr(loss, "uses_labels", False):
        needed.add("labels")
    return frozenset(needed)


def negatives_needed(loss: nn.Module) -> tuple[int, int | None]:
    """``(least, most)`` hard negatives per query ``loss`` accepts."""
    default = (1, None) if getattr(loss, "uses_teacher_scores", False) else (0, None)
    return tuple(getattr(loss, "negatives_needed", default))


def check_loss_data(loss: nn.Module, fields: frozenset[str], num_negatives: int,
                    batches: str = "the training batches") -> list[str]:
    """Problems that keep ``loss`` from training on batches that carry ``fields`` and ``num_negatives`` hard
    negatives per query (``batches`` names them in messages, e.g. "the TextTriplets source's batches"); empty when
    they fit."""
    name = type(loss).__name__
    problems = [f"{name} {NEEDS[field]}, but {batches} carry none; train on {SUPPLIERS[field]}"
                for field in sorted(batch_fields_needed(loss) - fields)]
    least, most = negatives_needed(loss)
    if num_negatives < least or (most is not None and num_negatives > most):
        wanted = f"exactly {least}" if least == most else f"at least {least}" if most is None else f"{least}-{most}"
        problems.append(f"{name} needs {wanted} hard negative(s) per query, but {batches} have "
                        f"num_negatives={num_negatives}")
    return problems


def raise_unless_fits(loss: nn.Module, fields: frozenset[str], num_negatives: int,
                      batches: str = "the training batches") -> None:
    """:func:`check_loss_data`, raised as one :class:`ConfigError` (``--model.init_args.loss`` in the message)."""
    problems = check_loss_data(loss, fields, num_negatives, batches)
    if problems:
        raise ConfigError("--model.init_args.loss does not fit the training data: " + "; ".join(problems))


def check_loss_source(loss: nn.Module | None, source: object) -> None:
    """Before training: raise a :class:`ConfigError` when the training source's batches (``source.batch_fields``,
    ``source.num_negatives``) cannot feed ``loss``; nothing to check without a loss or a source."""
    if loss is None or source is None or not isinstance(getattr(source, "num_negatives", None), int):
        return
    raise_unless_fits(loss, frozenset(getattr(source, "batch_fields", ())), source.num_negatives,
                      f"the batches of the {type(source).__name__} source (--data.init_args.train)")


def present_fields(teacher_scores: torch.Tensor | None, labels: torch.Tensor | None) -> frozenset[str]:
    """The optional batch fields that are set."""
    return frozenset(name for name, value in (("teacher_scores", teacher_scores), ("labels", labels))
                     if value is not None)


def loss_terms(loss: nn.Module, query_reps: torch.Tensor, doc_reps: torch.Tensor, num_negatives: int,
               teacher_scores: torch.Tensor | None = None, labels: torch.Tensor | None = None,
               teacher_reps: Callable[[], tuple[torch.Tensor, torch.Tensor]] | None = None
               ) -> dict[str, torch.Tensor]:
    """``{"loss_rank": scalar, "loss_<part>": ...}``: ``loss`` called with what it needs (module docstring); a
    dict result's parts other than ``"loss"`` become ``loss_<name>``.

    Args:
        loss: the training loss.
        query_reps: (B, V).
        doc_reps: (B * (1 + n), V), column-major.
        num_negatives: n.
        teacher_scores: (B, 1 + n) or ``None``.
        labels: (B,) or ``None``.
        teacher_reps: computes the teacher's (query reps, doc reps) of the batch, for ``uses_teacher_reps``.

    Raises:
        ConfigError: the batch lacks what the loss needs.
    """
    raise_unless_fits(loss, present_fields(teacher_scores, labels), num_negatives)
    if getattr(loss, "uses_teacher_reps", False):
        if teacher_reps is None:
            raise ConfigError(f"{type(loss).__name__} regresses on a teacher's representations, but the module has "
                              "no teacher; set --model.init_args.teacher")
        out = loss(query_reps, doc_reps, num_negatives, *teacher_reps())
    elif getattr(loss, "uses_teacher_scores", False):
        out = loss(query_reps, doc_reps, num_negatives, teacher_scores)
    elif getattr(loss, "uses_labels", False):
        out = loss(query_reps, doc_reps, num_negatives, labels)
    else:
        out = loss(query_reps, doc_reps, num_negatives)
    if isinstance(out, dict):
        return {"loss_rank": out["loss"], **{f"loss_{k}": v for k, v in out.items() if k != "loss"}}
    return {"loss_rank": out}
