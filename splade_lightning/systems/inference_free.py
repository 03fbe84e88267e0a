"""InferenceFreeSpladeModule: SPLADE documents + a lookup-table query side, trained jointly."""

from __future__ import annotations

from collections.abc import Sequence

from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

import splade_lightning.systems.optim as optim
from splade_lightning.errors import ConfigError
from splade_lightning.models.router import QueryDocRouter
from splade_lightning.systems.splade import SpladeModule

_QUERY_PATTERN = r"^encoder\.query_encoder\."


class InferenceFreeSpladeModule(SpladeModule):
    """Train inference-free SPLADE (SPLADE-doc, arXiv:2403.06789; OpenSearch doc-only, Geng et al.,
    arXiv:2411.04403): documents through SPLADE, queries through a lookup table, joined by a
    :class:`~splade_lightning.models.QueryDocRouter`.

    The same objective as :class:`SpladeModule`, with the OpenSearch / sentence-transformers defaults for this
    architecture: FLOPS on documents only (``query_reg_weight = 0``; the query side has no expansion to sparsify), and
    the query table in its own optimiser group with a larger learning rate (``idf_lr``, 1e-3 vs 2e-5 for the
    backbone) and its own weight decay. Its rate is logged as ``train/lr_idf`` next to ``train/lr``.

    ``idf_lr`` is a shorthand for the learning-rate rule ``{r"^encoder\\.query_encoder\\.": idf_lr}`` (group ``idf``,
    with ``idf_weight_decay``). It takes the query-side parameters before any ``learning_rate_mapping`` entry, so a
    mapping entry that matches only them is an error: set ``idf_lr`` instead.

    Args:
        encoder: a ``QueryDocRouter`` (query encoder + document encoder).
        loss: ranking loss ``(query_reps, doc_reps, num_negatives) -> scalar``; default in-batch InfoNCE.
        query_regularizer: regulariser for query reps (logged; weighted by ``query_reg_weight``); default FLOPS.
        doc_regularizer: regulariser for document reps; default FLOPS.
        query_reg_weight: λ_q (0: the query FLOPS is logged but not trained on).
        doc_reg_weight: λ_d, the final document regularisation weight.
        lr: peak learning rate of the document encoder.
        weight_decay: weight decay of the document encoder (never on biases and norm weights).
        idf_lr: peak learning rate of the query-side weights (the IDF table).
        idf_weight_decay: weight decay of the query-side weights (decay pulls the table towards 0).
        lr_warmup_fraction: linear LR warm-up as a fraction of the total steps (default 0.1), for both groups.
        lr_warmup_steps: linear LR warm-up in steps (instead of ``lr_warmup_fraction``).
        optimizer: optional optimiser factory; receives the parameter groups (the query group carries its own lr).
        lr_scheduler: optional scheduler factory replacing the default linear warm-up/decay.
        eval_k: retrieval depth used at evaluation.
        eval_measures: metrics computed at evaluation.
        learning_rate_mapping: ``{parameter-name regex: peak lr}`` for the other parameters (the first matching
            regex wins; see :class:`SpladeModule`).
        prompts: ``{route: text}`` prepended to queries (``query``: the static query side sees the prompt's tokens
            too, as sentence-transformers' Router) and documents (``document``); see :class:`SpladeModule`.
    """

    def __init__(
        self,
        encoder: QueryDocRouter,
        loss: nn.Module | None = None,
        query_regularizer: nn.Module | None = None,
        doc_regularizer: nn.Module | None = None,
        query_reg_weight: float = 0.0,
        doc_reg_weight: float = 3e-4,
        lr: float = 2e-5,
        weight_decay: float = 0.01,
        idf_lr: float = 1e-3,
        idf_weight_decay: float = 0.0,
        lr_warmup_fraction: float | None = None,
        lr_warmup_steps: int | None = None,
        optimizer: OptimizerCallable | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        eval_k: int = 1000,
        eval_measures: Sequence[str] = ("ndcg@10", "mrr@10", "recall@100"),
        learning_rate_mapping: dict[str, float] | None = None,
        prompts: dict[str, str] | None = None,
    ):
        problems = []
        if not (hasattr(encoder, "query_encoder") and hasattr(encoder, "doc_encoder")):
            problems.append(f"encoder: expected a splade_lightning.models.QueryDocRouter (query_encoder + "
                            f"doc_encoder), got {type(encoder).__name__}")
        if not idf_lr > 0:
            problems.append(f"idf_lr={idf_lr!r}: expected > 0")
        if not idf_weight_decay >= 0:
            problems.append(f"idf_weight_decay={idf_weight_decay!r}: expected >= 0")
        if problems:
            raise ConfigError("InferenceFreeSpladeModule: " + "; ".join(problems))
        super().__init__(encoder, loss, query_regularizer, doc_regularizer, query_reg_weight, doc_reg_weight, lr,
                         weight_decay, lr_warmup_fraction, lr_warmup_steps, optimizer, lr_scheduler, eval_k,
                         eval_measures, learning_rate_mapping, prompts)

    def shorthand_lr_rules(self) -> list[optim.LrRule]:
        """``idf_lr``: the trainable query-side weights at ``idf_lr`` with ``idf_weight_decay`` (group ``idf``;
        absent when the table is frozen)."""
        return [optim.LrRule(_QUERY_PATTERN, self.hparams.idf_lr, "idf", source="idf_lr",
                             weight_decay=self.hparams.idf_weight_decay, required=False)]
