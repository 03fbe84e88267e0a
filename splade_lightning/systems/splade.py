"""SpladeModule: the LightningModule that trains a SPLADE encoder with a ranking loss plus FLOPS/L1 regularisers."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn

from splade_lightning.errors import ConfigError
from splade_lightning.losses import FlopsRegularizer, InBatchNegativesLoss
from splade_lightning.models.base import SparseEncoderBase
from splade_lightning.models.router import encode_route
from splade_lightning.systems.base import RetrievalModule
from splade_lightning.systems.interfaces import Side, check_side
from splade_lightning.systems.loss_inputs import loss_terms
from splade_lightning.systems.teacher_checkpoint import drop_teacher_state, restore_teacher_state, teacher_fingerprint
from splade_lightning.types import TrainBatch

#: computes the teacher's (query reps, doc reps) of the current batch
TeacherReps = Callable[[], tuple[torch.Tensor, torch.Tensor]]


def _reg_name(regularizer: nn.Module) -> str:
    """Log name of a regulariser: its ``name`` attribute, else its class name without "Regularizer"."""
    return getattr(regularizer, "name", type(regularizer).__name__.removesuffix("Regularizer").lower())


class SpladeModule(RetrievalModule):
    """Train SPLADE: ``loss = L_rank(q, d) + λ_q(t)·R_q(q) + λ_d(t)·R_d(d)`` (Formal et al., arXiv:2109.10086).

    ``λ_side(t) = λ_max · reg_scale · reg_multiplier(side)`` (:meth:`reg_weight`), where ``reg_scale`` in [0, 1] is
    set each step by the ``RegularizerWarmup`` callback (1.0 without it) and the multipliers by the
    ``SparsityController`` callback (1.0 without it), both through the
    :class:`~splade_lightning.systems.interfaces.Regularized` methods. Validation/test encode every query and document
    of each evaluation set, retrieve exactly and log ``val/<dataset>/ndcg@10`` etc. plus the mean over datasets
    (``val/ndcg@10``).

    Args:
        encoder: the model, e.g. ``splade_lightning.models.SpladeEncoder``: ``encode_query(ids, mask)`` /
            ``encode_doc(ids, mask)`` -> (B, V), ``vocab_size`` and ``tokenizer_name_or_path``.
        loss: ranking loss ``(query_reps, doc_reps, num_negatives) -> scalar``; default in-batch InfoNCE.
        query_regularizer: regulariser for query reps; default FLOPS.
        doc_regularizer: regulariser for document reps; default FLOPS.
        query_reg_weight: λ_q, the final query regularisation weight (0 disables its gradient).
        doc_reg_weight: λ_d, the final document regularisation weight.
        lr: peak learning rate of the default AdamW.
        weight_decay: AdamW weight decay (never applied to biases and norm weights).
        lr_warmup_fraction: linear LR warm-up as a fraction of the total steps (default schedule). When neither this
            nor ``lr_warmup_steps`` is given: 0.1.
        lr_warmup_steps: linear LR warm-up in steps (instead of ``lr_warmup_fraction``; giving both is an error).
        optimizer: optional optimiser factory (``class_path: torch.optim.X``); receives parameter groups.
        lr_scheduler: optional scheduler factory; replaces the default linear warm-up/decay (stepped every step).
        eval_k: retrieval depth used at evaluation (>= the largest metric cut-off).
        eval_measures: metrics computed at evaluation.
        learning_rate_mapping: ``{parameter-name regex: peak lr}`` (sentence-transformers' argument of that name):
            each trainable parameter trains at the lr of the FIRST regex (in mapping order) that ``re.search``-es
            its name in ``named_parameters()`` (e.g. ``encoder.mlm.bert.embeddings.word_embeddings.weight``); the
            rest at ``lr``. Each entry is its own group, logged as ``train/lr_<name>``: the regex without
            backslashes, other punctuation runs as ``_`` (``layer\\.(0|1)\\.`` -> ``layer_0_1``). A regex that
            gives no trainable parameter its lr is an error. See docs/splade.md.
        prompts: ``{route: text}`` prepended to every query (``query``) and document (``document``) before
            tokenisation, in training, evaluation and inference; saved with the exported model
            (sentence-transformers' ``prompts``; see docs/splade.md#prompts). Default: none.
        teacher: a frozen sparse encoder for ``EmbeddingMSELoss`` (embedding distillation): it encodes the batch's
            texts (the same token ids, so it must share the student's tokenizer and vocabulary) and the loss regresses
            the student's reps on its reps. Not trained, kept in eval mode, not exported; checkpoints record a
            fingerprint of its weights instead of the weights (``systems/teacher_checkpoint.py``), and resuming with
            another teacher is refused. ``None``: no teacher.
    """

    def __init__(
        self,
        encoder: SparseEncoderBase,
        loss: nn.Module | None = None,
        query_regularizer: nn.Module | None = None,
        doc_regularizer: nn.Module | None = None,
        query_reg_weight: float = 5e-5,
        doc_reg_weight: float = 3e-5,
        lr: float = 2e-5,
        weight_decay: float = 0.01,
        lr_warmup_fraction: float | None = None,
        lr_warmup_steps: int | None = None,
        optimizer: OptimizerCallable | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        eval_k: int = 1000,
        eval_measures: Sequence[str] = ("ndcg@10", "mrr@10", "recall@100"),
        learning_rate_mapping: dict[str, float] | None = None,
        prompts: dict[str, str] | None = None,
        teacher: SparseEncoderBase | None = None,
    ):
        if query_reg_weight < 0 or doc_reg_weight < 0:
            raise ConfigError(f"regularisation weights must be >= 0, got query_reg_weight={query_reg_weight}, "
                              f"doc_reg_weight={doc_reg_weight}")
        super().__init__(encoder, lr, weight_decay, lr_warmup_fraction, lr_warmup_steps, optimizer, lr_scheduler,
                         eval_k, eval_measures, learning_rate_mapping, prompts)
        self.loss = loss if loss is not None else InBatchNegativesLoss()
        self.query_regularizer = query_regularizer if query_regularizer is not None else FlopsRegularizer()
        self.doc_regularizer = doc_regularizer if doc_regularizer is not None else FlopsRegularizer()
        self.teacher = _frozen_teacher(teacher, encoder, self.loss)
        self._teacher_fingerprint = teacher_fingerprint(self.teacher)  # before any precision conversion
        self.parameter_groups()  # every learning_rate_mapping regex claims a parameter: fail now, not at fit
        self._configured_reg_weights: dict[str, float] = {"query": query_reg_weight, "doc": doc_reg_weight}
        self._reg_scale = 1.0  # set by callbacks.RegularizerWarmup from trainer.global_step
        self._reg_multipliers: dict[str, float] = {"query": 1.0, "doc": 1.0}  # set by callbacks.SparsityController

    # -- regularisation weights (the Regularized interface) -------------------------------------------------------
    @property
    def reg_scale(self) -> float:
        """The warm-up scale shared by both sides (1.0 until a ``RegularizerWarmup`` sets it)."""
        return self._reg_scale

    def set_reg_scale(self, scale: float) -> None:
        """Set the warm-up scale (a finite number >= 0; the warm-up keeps it in [0, 1])."""
        if not (math.isfinite(scale) and scale >= 0):
            raise ConfigError(f"{type(self).__name__}.set_reg_scale: scale={scale!r}: expected a finite number >= 0")
        self._reg_scale = scale

    def reg_multiplier(self, side: Side) -> float:
        """The controller's factor on ``side``'s configured λ (1.0 until a ``SparsityController`` sets it)."""
        return self._reg_multipliers[check_side(side)]

    def set_reg_multiplier(self, side: Side, value: float) -> None:
        """Set the controller's factor on ``side``'s configured λ (a finite number > 0)."""
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(f"{type(self).__name__}.set_reg_multiplier: value={value!r}: expected a finite "
                              "number > 0")
        self._reg_multipliers[check_side(side)] = value

    def configured_reg_weight(self, side: Side) -> float:
        """λ as configured: ``query_reg_weight`` or ``doc_reg_weight``."""
        return self._configured_reg_weights[check_side(side)]

    def reg_weight(self, side: Side) -> float:
        """The λ applied now: ``configured_reg_weight(side) · reg_scale · reg_multiplier(side)``."""
        return self.configured_reg_weight(side) * self._reg_scale * self._reg_multipliers[side]

    # -- training ------------------------------------------------------------------------------------------------
    def ranking_terms(self, query_reps: torch.Tensor, doc_reps: torch.Tensor, num_negatives: int,
                      teacher_scores: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                      teacher_reps: TeacherReps | None = None) -> dict[str, torch.Tensor]:
        """``{"loss_rank": scalar, ...}``: the ranking loss, plus its named parts when it returns a dict (e.g. the
        KL and MarginMSE terms of a combined distillation loss, logged as ``loss_<name>``).

        The loss gets what it declares it needs (:mod:`splade_lightning.systems.loss_inputs`): ``teacher_scores``
        (B, 1 + n) for distillation, ``labels`` (B,) for the pair losses, the teacher's reps (``teacher_reps()``) for
        ``EmbeddingMSELoss``.
        """
        return loss_terms(self.loss, query_reps, doc_reps, num_negatives, teacher_scores, labels, teacher_reps)

    def compute_loss(self, query_reps: torch.Tensor, doc_reps: torch.Tensor, num_negatives: int,
                     teacher_scores: torch.Tensor | None = None, labels: torch.Tensor | None = None,
                     teacher_reps: TeacherReps | None = None) -> dict:
        """All loss terms for one batch: (B, V) queries, (B·(1+n), V) documents (and optional (B, 1+n) teacher
        scores, (B,) pair labels, a callable giving the teacher's reps) -> dict of scalars incl. ``loss``."""
        weight_query, weight_doc = self.reg_weight("query"), self.reg_weight("doc")
        ranking = self.ranking_terms(query_reps, doc_reps, num_negatives, teacher_scores, labels, teacher_reps)
        reg_query = self.query_regularizer(query_reps)
        reg_doc = self.doc_regularizer(doc_reps)
        return {
            "loss": ranking["loss_rank"] + weight_query * reg_query + weight_doc * reg_doc,
            **ranking,
            f"{_reg_name(self.query_regularizer)}_query": reg_query,
            f"{_reg_name(self.doc_regularizer)}_doc": reg_doc,
            "reg_weight_query": torch.tensor(float(weight_query)),
            "reg_weight_doc": torch.tensor(float(weight_doc)),
        }

    def training_step(self, batch: TrainBatch, batch_idx: int) -> dict:
        query_reps = self.encode(batch.query_route, batch.query_input_ids, batch.query_attention_mask)
        doc_reps = self.encode(batch.doc_route, batch.doc_input_ids, batch.doc_attention_mask)
        terms = self.compute_loss(query_reps, doc_reps, batch.num_negatives, batch.teacher_scores, batch.labels,
                                  (lambda: self.teacher_reps(batch)) if self.teacher is not None else None)
        self.log_training(terms, batch.batch_size)
        return {"loss": terms["loss"], "query_reps": query_reps.detach(), "doc_reps": doc_reps.detach()}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """The base payload; the teacher's weights are replaced by their fingerprint."""
        super().on_save_checkpoint(checkpoint)
        drop_teacher_state(checkpoint, self._teacher_fingerprint)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """The base payload; the configured teacher's weights go back in (refused if they differ from the run's)."""
        super().on_load_checkpoint(checkpoint)
        trainer = self._trainer
        path = getattr(trainer, "ckpt_path", None) if trainer is not None else None
        resuming = trainer is not None and trainer.state.fn == TrainerFn.FITTING
        restore_teacher_state(checkpoint, self.teacher, self._teacher_fingerprint, resuming,
                              f"checkpoint {path}" if path else "the checkpoint")

    @torch.no_grad()
    def teacher_reps(self, batch: TrainBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """The frozen teacher's (B, V) query and (B·(1+n), V) document reps of the batch (same routes, eval mode)."""
        self.teacher.eval()
        return (encode_route(self.teacher, batch.query_route, batch.query_input_ids, batch.query_attention_mask),
                encode_route(self.teacher, batch.doc_route, batch.doc_input_ids, batch.doc_attention_mask))


def _frozen_teacher(teacher: nn.Module | None, encoder: nn.Module, loss: nn.Module) -> nn.Module | None:
    """The teacher with gradients off; a :class:`ConfigError` when the loss needs one and there is none, or when its
    vocabulary differs from the student's."""
    needs = getattr(loss, "uses_teacher_reps", False)
    if teacher is None:
        if needs:
            raise ConfigError(f"{type(loss).__name__} regresses on a teacher's representations: set "
                              "--model.init_args.teacher (a sparse encoder with the student's tokenizer)")
        return None
    if not needs:
        raise ConfigError(f"--model.init_args.teacher is set, but the loss {type(loss).__name__} does not use a "
                          "teacher's representations (EmbeddingMSELoss does); drop the teacher")
    if teacher.vocab_size != encoder.vocab_size:
        raise ConfigError(f"--model.init_args.teacher: vocab_size={teacher.vocab_size}, but the student's is "
                          f"{encoder.vocab_size}; the teacher must share the student's tokenizer and vocabulary")
    return teacher.requires_grad_(False).eval()
