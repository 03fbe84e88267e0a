"""RetrievalModule: what every architecture's LightningModule shares: evaluation by exact retrieval, optimiser set-up,
learning-rate logging and self-contained checkpoints."""

from __future__ import annotations

from collections.abc import Sequence

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

import splade_lightning.systems.optim as optim
from splade_lightning.errors import ConfigError
from splade_lightning.metrics.ir import parse_measure
from splade_lightning.metrics.selection import Metrics
from splade_lightning.models.base import SparseEncoderBase
from splade_lightning.models.router import encode_route
from splade_lightning.prompts import check_prompts
from splade_lightning.systems.eval_buffer import (
    EvalBuffer,
    eval_set_of,
    mean_by_kind,
    quiet_sync_dist_warnings,
    score_buffer,
    suite_means,
)
from splade_lightning.systems.interfaces import EvalReporter
from splade_lightning.types import EncodeBatch

#: constructor arguments that are modules or factories, kept out of ``hparams``
MODULE_ARGS = ["encoder", "loss", "query_regularizer", "doc_regularizer", "optimizer", "lr_scheduler", "teacher"]



def check_eval_args(eval_k: int, eval_measures: Sequence[str]) -> None:
    """Raise a :class:`ConfigError` now, not after an epoch of training, on an unknown measure name or an
    ``eval_k`` below a measure's cut-off."""
    if isinstance(eval_measures, str) or not eval_measures:
        raise ConfigError(f"eval_measures={eval_measures!r}: expected a non-empty list such as [ndcg@10, mrr@10]")
    if isinstance(eval_k, bool) or not isinstance(eval_k, int) or eval_k < 1:
        raise ConfigError(f"eval_k={eval_k!r}: expected a positive integer (documents retrieved per query)")
    specs = [parse_measure(name) for name in eval_measures]
    deepest = max((s for s in specs if s.cutoff is not None), key=lambda s: s.cutoff, default=None)
    if deepest is not None and deepest.cutoff > eval_k:
        raise ConfigError(f"eval_k={eval_k} is smaller than the cut-off of measure {deepest.name!r}; expected "
                          f"eval_k >= {deepest.cutoff}")


class RetrievalModule(pl.LightningModule):
    """Base of the architecture modules; subclasses add the training objective (``training_step``).

    Validation/test encode every query and document of each evaluation set (queries through the ``query`` route,
    documents through ``document``), retrieve exactly and log ``val/<dataset>/ndcg@10`` etc. plus the mean over
    datasets (``val/ndcg@10``) and over the sets of each suite (``val/<suite>/mean/ndcg@10``, sets from a suite file,
    :mod:`splade_lightning.formats.suite`). The evaluation sets come with the batches: every
    :class:`~splade_lightning.types.EncodeBatch` of dataloader ``i`` carries its set (``batch.eval_set``: name,
    queries, corpus, qrels, ``min_relevance``); a batch without one is a :class:`ConfigError`. Subclasses may add
    per-dataset figures with :meth:`extra_eval_metrics`.

    A non-finite training loss raises ``FloatingPointError`` unless a callback defers the decision
    (:meth:`defer_nonfinite_loss`, the :class:`~splade_lightning.systems.interfaces.DeferrableLoss` interface).

    Args:
        encoder: the sparse encoder: ``encode_query(ids, mask)`` / ``encode_doc(ids, mask)`` -> (B, V),
            ``vocab_size``, ``tokenizer_name_or_path`` and ``export_config()``.
        lr: peak learning rate of the default AdamW.
        weight_decay: AdamW weight decay (never applied to biases and norm weights).
        lr_warmup_fraction: linear LR warm-up as a fraction of the total steps (default 0.1).
        lr_warmup_steps: linear LR warm-up in steps (instead of ``lr_warmup_fraction``; giving both is an error).
        optimizer: optional optimiser factory (``class_path: torch.optim.X``); receives parameter groups.
        lr_scheduler: optional scheduler factory; replaces the default linear warm-up/decay (stepped every step).
        eval_k: retrieval depth used at evaluation (>= the largest metric cut-off).
        eval_measures: metrics computed at evaluation.
        learning_rate_mapping: ``{parameter-name regex: peak lr}``, as sentence-transformers'
            ``learning_rate_mapping``: see :meth:`parameter_groups`.
        prompts: ``{route: text}`` prepended to every query (``query``) and document (``document``) before
            tokenisation, in training, evaluation and inference; saved with the exported model
            (sentence-transformers' ``prompts``; see docs/splade.md#prompts). Default: none.

    Attributes:
        last_eval_metrics: ``{dataset: {measure: value}}``, then ``"<suite>/mean"`` for each suite in the evaluation
            (the mean over its sets) and ``"mean"`` (over all datasets) of the latest completed validation or test;
            ``{}`` before the first.
        last_eval_per_query: ``{dataset: {measure: {query_id: value}}}`` of that evaluation (written to
            ``per_query.json`` by the CLI; read by the ablation runner's paired tests).
        last_eval_step: ``global_step`` of the weights ``last_eval_metrics`` were computed with; -1 before the first
            evaluation.
        zero_shot_metrics: the metrics of the evaluation before training (same shape as ``last_eval_metrics``), set by
            whoever ran it (the CLI's ``--eval_before_fit``); ``None`` when there was none. Saved in checkpoints and
            restored from them, so a resumed ``fit`` need not repeat the zero-shot evaluation.
    """

    def __init__(
        self,
        encoder: SparseEncoderBase,
        lr: float,
        weight_decay: float,
        lr_warmup_fraction: float | None,
        lr_warmup_steps: int | None,
        optimizer: OptimizerCallable | None,
        lr_scheduler: LRSchedulerCallable | None,
        eval_k: int,
        eval_measures: Sequence[str],
        learning_rate_mapping: dict[str, float] | None = None,
        prompts: dict[str, str] | None = None,
    ):
        super().__init__()
        optim.check_optim_args(lr, weight_decay, lr_warmup_steps, lr_warmup_fraction, learning_rate_mapping)
        check_eval_args(eval_k, eval_measures)
        self.prompts = check_prompts(prompts)
        self.save_hyperparameters(ignore=MODULE_ARGS)  # collects the subclass's constructor arguments too
        self.encoder = encoder
        self.optimizer_factory = optimizer
        self.scheduler_factory = lr_scheduler
        self.last_eval_metrics: Metrics = {}
        self.last_eval_per_query: dict[str, dict[str, dict[str, float]]] = {}
        self.last_eval_step: int = -1
        self.zero_shot_metrics: Metrics | None = None
        self._eval_buffer = EvalBuffer()
        self._defer_nonfinite = False
        self._nonfinite_terms: dict[str, float] | None = None
        self._eval_reporters: list[EvalReporter] = []

    @property
    def tokenizer_name_or_path(self) -> str:
        """Tokenizer the data module should use (the encoder backbone's)."""
        return self.encoder.tokenizer_name_or_path

    def encode(self, route: str, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Encode (B, L) ids through ``route`` (``"query"`` or ``"document"``) with :func:`encode_route`."""
        return encode_route(self.encoder, route, input_ids, attention_mask)

    def log_training(self, terms: dict[str, torch.Tensor], batch_size: int) -> None:
        """Log every term as ``train/<name>``, the learning rates, and the loss on the progress bar.

        A non-finite ``terms["loss"]`` raises ``FloatingPointError`` with every term in the message, unless a
        callback (:class:`~splade_lightning.callbacks.CollapseGuard`) has taken the decision over with
        :meth:`defer_nonfinite_loss`: then nothing is logged for the batch and the terms are kept in
        :attr:`nonfinite_terms` for its message.
        """
        if not torch.isfinite(terms["loss"]):
            values = {k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in terms.items()}
            if self._defer_nonfinite:
                self._nonfinite_terms = values
                return
            raise FloatingPointError(f"non-finite training loss at step {self.global_step}: "
                                     + ", ".join(f"{k}={v:.4g}" for k, v in values.items()))
        self._nonfinite_terms = None
        logged = {f"train/{k}": v.detach() if torch.is_tensor(v) else torch.tensor(float(v)) for k, v in terms.items()}
        logged.update(self._learning_rates())
        self.log_dict(logged, prog_bar=False, batch_size=batch_size)
        self.log("train/loss_step", terms["loss"].detach(), prog_bar=True, logger=False, batch_size=batch_size)

    def defer_nonfinite_loss(self, enabled: bool) -> None:
        """``True``: a non-finite training loss is left to a callback (nothing logged, terms kept in
        :attr:`nonfinite_terms`); ``False``: :meth:`log_training` raises ``FloatingPointError`` (the default)."""
        self._defer_nonfinite = bool(enabled)

    @property
    def nonfinite_terms(self) -> dict[str, float] | None:
        """``{term: value}`` of the last training batch when its loss was non-finite and the decision deferred;
        ``None`` after a finite loss."""
        return self._nonfinite_terms

    def _learning_rates(self) -> dict[str, torch.Tensor]:
        """``train/lr``: the rate of the parameters no learning-rate rule claims (group ``backbone``; the first group
        when rules claim every parameter), plus ``train/lr_<name>`` for every other named group: ``idf``,
        ``autoencoder``, one per ``learning_rate_mapping`` entry (:meth:`lr_rules`)."""
        groups = self.trainer.optimizers[0].param_groups
        base = next((g for g in groups if g.get("name") == optim.BASE_GROUP), groups[0])
        rates = {"train/lr": torch.tensor(float(base["lr"]))}
        for group in groups:
            if group.get("name") and group["name"] != optim.BASE_GROUP:
                rates[f"train/lr_{group['name']}"] = torch.tensor(float(group["lr"]))
        return rates

    # -- evaluation ----------------------------------------------------------------------------------------------
    def add_eval_reporter(self, reporter: EvalReporter) -> None:
        """Log what ``reporter(self, stage, metrics)`` returns with every evaluation's metrics (the
        :class:`~splade_lightning.systems.interfaces.EvalReporting` interface); once per reporter."""
        if reporter not in self._eval_reporters:
            self._eval_reporters.append(reporter)

    def remove_eval_reporter(self, reporter: EvalReporter) -> None:
        """Stop calling ``reporter``."""
        if reporter in self._eval_reporters:
            self._eval_reporters.remove(reporter)

    def _encode_eval(self, batch: EncodeBatch, dataloader_idx: int) -> torch.Tensor:
        """Encode one evaluation batch -> (B, V) and keep it, with its evaluation set, for :meth:`_finish_eval`."""
        eval_set = eval_set_of(batch, type(self).__name__)
        reps = self.encode("query" if batch.kind == "query" else "document", batch.input_ids, batch.attention_mask)
        if not self.trainer.sanity_checking:
            self._eval_buffer.add(dataloader_idx, batch.kind, batch.ids, reps, eval_set)
        return reps

    def validation_step(self, batch: EncodeBatch, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        return self._encode_eval(batch, dataloader_idx)

    def test_step(self, batch: EncodeBatch, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        return self._encode_eval(batch, dataloader_idx)

    def on_validation_epoch_end(self) -> None:
        self._finish_eval("validate", "val")

    def on_test_epoch_end(self) -> None:
        self._finish_eval("test", "test")

    def extra_eval_metrics(self, stage: str, results: dict[str, dict]) -> None:
        """Hook: add figures to ``results`` (``{dataset: metrics}``, modified in place) before they are averaged
        and logged. Called once per evaluation, after retrieval; the default adds nothing."""

    def clear_eval_state(self) -> None:
        """Drop what the evaluation epoch collected (also after a sanity check)."""
        self._eval_buffer.clear()

    def _finish_eval(self, stage: str, prefix: str) -> None:
        if self.trainer.sanity_checking:
            self.clear_eval_state()
            return
        per_query: dict = {}
        results = score_buffer(self._eval_buffer, self.hparams.eval_k, self.hparams.eval_measures, per_query)
        if results:
            self.extra_eval_metrics(stage, results)
        suites = suite_means(self._eval_buffer, results)
        self.clear_eval_state()
        if not results:
            return
        overall = mean_by_kind(results)  # over the sets only, not the suites' means
        results.update({f"{suite}/mean": means for suite, means in suites.items()})
        results["mean"] = overall
        self.last_eval_metrics = results
        self.last_eval_per_query = per_query
        self.last_eval_step = self.global_step
        logged = {f"{prefix}/{name}/{key}": value for name, metrics in results.items() if name != "mean"
                  for key, value in metrics.items()}  # a suite's mean: val/<suite>/mean/<measure>
        logged.update({f"{prefix}/{key}": value for key, value in results["mean"].items()})
        for reporter in self._eval_reporters:  # e.g. SelectionCriterion's val/selection, in the same row
            logged.update(reporter(self, stage, results))
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            quiet_sync_dist_warnings(list(logged))
        self.log_dict({k: float(v) for k, v in logged.items()}, add_dataloader_idx=False, sync_dist=False)

    # -- optimisation --------------------------------------------------------------------------------------------
    def shorthand_lr_rules(self) -> list[optim.LrRule]:
        """Hook: the learning-rate rules of the module's own arguments (``idf_lr``, ``autoencoder_lr``); none here."""
        return []

    def lr_rules(self) -> list[optim.LrRule]:
        """Every learning-rate rule, in precedence order: the shorthands (:meth:`shorthand_lr_rules`), then the
        ``learning_rate_mapping`` entries in mapping order, named by :func:`~splade_lightning.systems.optim.group_name`
        (``_2``, ``_3``, ... when the name is taken)."""
        shorthands = self.shorthand_lr_rules()
        reserved = [optim.BASE_GROUP, *(rule.name for rule in shorthands)]
        return shorthands + optim.mapping_rules(self.hparams.get("learning_rate_mapping"), reserved)

    def parameter_groups(self) -> list[dict]:
        """Optimiser parameter groups: each trainable parameter goes to the first of :meth:`lr_rules` whose regex
        ``re.search``-es its name (``named_parameters()``, e.g. ``encoder.mlm.bert.encoder.layer.0...``) and
        trains at that rule's lr; the rest (group ``backbone``) at ``lr``. Within each, biases and norm weights get no
        weight decay. A ``learning_rate_mapping`` entry that claims no trainable parameter is a :class:`ConfigError`.
        """
        return optim.rule_param_groups(self.named_parameters(), self.hparams.weight_decay, self.lr_rules())

    def configure_optimizers(self):
        groups = self.parameter_groups()
        if self.optimizer_factory is not None:
            optimizer = self.optimizer_factory(groups)
        else:
            optimizer = optim.default_optimizer(groups, self.hparams.lr)
        if self.scheduler_factory is not None:
            scheduler = self.scheduler_factory(optimizer)
        else:
            total = max(1, int(self.trainer.estimated_stepping_batches))
            warmup = optim.resolve_warmup_steps(total, self.hparams.lr_warmup_steps, self.hparams.lr_warmup_fraction)
            scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, optim.linear_warmup_decay(warmup, total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_callbacks(self) -> list[pl.Callback]:
        """:class:`~splade_lightning.systems.optim.ReleaseSparseGrads`: when ``fit`` ends or fails, the default
        optimiser stops taking sparse gradients."""
        return [optim.ReleaseSparseGrads()]

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        """Lightning's clipping, after making the vocabulary matrix's sparse gradient dense (``RowSparseAdamW``)."""
        optim.dense_grads_for_clipping(optimizer, gradient_clip_val)
        self.clip_gradients(optimizer, gradient_clip_val=gradient_clip_val,
                            gradient_clip_algorithm=gradient_clip_algorithm)

    # -- checkpoints ---------------------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Embed what :func:`splade_lightning.load` needs to rebuild the encoder from the ``.ckpt`` alone."""
        from splade_lightning.serialization.checkpoint import checkpoint_payload, inference_lengths

        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        payload = checkpoint_payload(self.encoder, prefix="encoder.", max_lengths=inference_lengths(datamodule))
        payload["prompts"] = dict(self.prompts)
        payload["zero_shot_metrics"] = plain_metrics(self.zero_shot_metrics)
        checkpoint["splade_lightning"] = payload

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Restore :attr:`zero_shot_metrics` (a checkpoint written before they were saved leaves them as they are)."""
        payload = checkpoint.get("splade_lightning") or {}
        if "zero_shot_metrics" in payload:
            self.zero_shot_metrics = plain_metrics(payload["zero_shot_metrics"])


def plain_metrics(metrics: Metrics | None) -> Metrics | None:
    """A copy of ``metrics`` as plain ``str -> str -> float`` dicts (safe for ``torch.load(weights_only=True)``);
    ``None`` stays ``None``."""
    if metrics is None:
        return None
    return {str(name): {str(key): float(value) for key, value in values.items()} for name, values in metrics.items()}
