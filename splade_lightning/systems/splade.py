"""SpladeModule: the LightningModule that trains a SPLADE encoder with a ranking loss plus FLOPS/L1 regularisers."""

from __future__ import annotations

from collections.abc import Sequence

import lightning.pytorch as pl
import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

from ..errors import ConfigError
from ..losses import FlopsRegularizer, InBatchNegativesLoss
from ..models.router import encode_route
from ..types import EncodeBatch, TrainBatch
from . import optim
from .evaluation import EvalBuffer, mean_over_datasets, score_buffer

_MODULE_ARGS = ["encoder", "loss", "query_regularizer", "doc_regularizer", "optimizer", "lr_scheduler"]


def _reg_name(regularizer: nn.Module) -> str:
    """Log name of a regulariser: its ``name`` attribute, else its class name without "Regularizer"."""
    return getattr(regularizer, "name", type(regularizer).__name__.removesuffix("Regularizer").lower())


class SpladeModule(pl.LightningModule):
    """Train SPLADE: ``loss = L_rank(q, d) + λ_q(t)·R_q(q) + λ_d(t)·R_d(d)`` (Formal et al., arXiv:2109.10086).

    ``λ(t) = λ_max · reg_scale`` where ``reg_scale`` in [0, 1] is set each step by the ``RegularizerWarmup`` callback
    (1.0 without it). Validation/test encode every query and document of each evaluation set, retrieve exactly and log
    ``val/<dataset>/ndcg@10`` etc. plus the mean over datasets (``val/ndcg@10``).

    Args:
        encoder: the model: an ``nn.Module`` with ``encode_query(ids, mask)`` / ``encode_doc(ids, mask)`` -> (B, V),
            ``vocab_size`` and ``tokenizer_name_or_path`` (e.g. ``splade_lightning.models.SpladeEncoder``).
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
    """

    def __init__(
        self,
        encoder: nn.Module,
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
    ):
        super().__init__()
        optim.check_optim_args(lr, weight_decay, lr_warmup_steps, lr_warmup_fraction)
        if query_reg_weight < 0 or doc_reg_weight < 0:
            raise ConfigError(f"regularisation weights must be >= 0, got query_reg_weight={query_reg_weight}, "
                              f"doc_reg_weight={doc_reg_weight}")
        self.save_hyperparameters(ignore=_MODULE_ARGS)
        self.encoder = encoder
        self.loss = loss if loss is not None else InBatchNegativesLoss()
        self.query_regularizer = query_regularizer if query_regularizer is not None else FlopsRegularizer()
        self.doc_regularizer = doc_regularizer if doc_regularizer is not None else FlopsRegularizer()
        self.optimizer_factory = optimizer
        self.scheduler_factory = lr_scheduler
        self.reg_scale = 1.0  # written by callbacks.RegularizerWarmup from trainer.global_step
        self.last_eval_metrics: dict[str, dict[str, float]] = {}
        self.last_eval_step = -1  # global_step of the weights last_eval_metrics were computed with
        self._eval_buffer = EvalBuffer()

    # -- properties read by the data module and callbacks --------------------------------------------------------
    @property
    def tokenizer_name_or_path(self) -> str:
        """Tokenizer the data module should use (the encoder backbone's)."""
        return self.encoder.tokenizer_name_or_path

    # -- training ------------------------------------------------------------------------------------------------
    def compute_loss(self, query_reps: torch.Tensor, doc_reps: torch.Tensor, num_negatives: int) -> dict:
        """All loss terms for one batch: (B, V) queries, (B·(1+n), V) documents -> dict of scalars incl. ``loss``."""
        weight_query = self.hparams.query_reg_weight * self.reg_scale
        weight_doc = self.hparams.doc_reg_weight * self.reg_scale
        loss_rank = self.loss(query_reps, doc_reps, num_negatives)
        reg_query = self.query_regularizer(query_reps)
        reg_doc = self.doc_regularizer(doc_reps)
        return {
            "loss": loss_rank + weight_query * reg_query + weight_doc * reg_doc,
            "loss_rank": loss_rank,
            f"{_reg_name(self.query_regularizer)}_query": reg_query,
            f"{_reg_name(self.doc_regularizer)}_doc": reg_doc,
            "reg_weight_query": torch.tensor(float(weight_query)),
            "reg_weight_doc": torch.tensor(float(weight_doc)),
        }

    def encode(self, route: str, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Encode (B, L) ids through ``route`` (``"query"`` or ``"document"``) with :func:`encode_route`."""
        return encode_route(self.encoder, route, input_ids, attention_mask)

    def training_step(self, batch: TrainBatch, batch_idx: int) -> dict:
        query_reps = self.encode(batch.query_route, batch.query_input_ids, batch.query_attention_mask)
        doc_reps = self.encode(batch.doc_route, batch.doc_input_ids, batch.doc_attention_mask)
        terms = self.compute_loss(query_reps, doc_reps, batch.num_negatives)
        if not torch.isfinite(terms["loss"]):
            raise FloatingPointError(f"non-finite training loss at step {self.global_step}: "
                                     + ", ".join(f"{k}={float(v):.4g}" for k, v in terms.items()))
        logged = {f"train/{k}": v.detach() for k, v in terms.items()}
        logged.update(self._learning_rates())
        self.log_dict(logged, prog_bar=False, batch_size=batch.batch_size)
        self.log("train/loss_step", terms["loss"].detach(), prog_bar=True, logger=False, batch_size=batch.batch_size)
        return {"loss": terms["loss"], "query_reps": query_reps.detach(), "doc_reps": doc_reps.detach()}

    def _learning_rates(self) -> dict[str, torch.Tensor]:
        """``train/lr`` (the first parameter group) plus ``train/lr_<name>`` for every other named group."""
        groups = self.trainer.optimizers[0].param_groups
        rates = {"train/lr": torch.tensor(float(groups[0]["lr"]))}
        for group in groups[1:]:
            if group.get("name") and group["name"] != groups[0].get("name"):
                rates[f"train/lr_{group['name']}"] = torch.tensor(float(group["lr"]))
        return rates

    # -- evaluation ----------------------------------------------------------------------------------------------
    def _encode_eval(self, batch: EncodeBatch, dataloader_idx: int) -> torch.Tensor:
        reps = self.encode("query" if batch.kind == "query" else "document", batch.input_ids, batch.attention_mask)
        if not self.trainer.sanity_checking:
            self._eval_buffer.add(dataloader_idx, batch.kind, batch.ids, reps)
        return reps

    def validation_step(self, batch: EncodeBatch, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        return self._encode_eval(batch, dataloader_idx)

    def test_step(self, batch: EncodeBatch, batch_idx: int, dataloader_idx: int = 0) -> torch.Tensor:
        return self._encode_eval(batch, dataloader_idx)

    def on_validation_epoch_end(self) -> None:
        self._finish_eval("validate", "val")

    def on_test_epoch_end(self) -> None:
        self._finish_eval("test", "test")

    def _finish_eval(self, stage: str, prefix: str) -> None:
        if self.trainer.sanity_checking:
            self._eval_buffer.clear()
            return
        datamodule = self.trainer.datamodule
        results = score_buffer(self._eval_buffer, lambda idx: datamodule.eval_data(stage, idx),
                               self.hparams.eval_k, self.hparams.eval_measures)
        self._eval_buffer.clear()
        if not results:
            return
        results["mean"] = mean_over_datasets(results) if len(results) > 1 else next(iter(results.values()))
        self.last_eval_metrics = results
        self.last_eval_step = self.global_step
        logged = {f"{prefix}/{name}/{key}": value for name, metrics in results.items() if name != "mean"
                  for key, value in metrics.items()}
        logged.update({f"{prefix}/{key}": value for key, value in results["mean"].items()})
        self.log_dict({k: float(v) for k, v in logged.items()}, add_dataloader_idx=False, sync_dist=False)

    # -- optimisation --------------------------------------------------------------------------------------------
    def parameter_groups(self) -> list[dict]:
        """Optimiser parameter groups: decayed weights and no-decay biases/norms, both at ``lr``."""
        return optim.param_groups(self.named_parameters(), self.hparams.weight_decay)

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

    # -- checkpoints ---------------------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Embed what :func:`splade_lightning.load` needs to rebuild the encoder from the ``.ckpt`` alone."""
        from ..models.checkpoint import checkpoint_payload, inference_lengths

        datamodule = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        checkpoint["splade_lightning"] = checkpoint_payload(self.encoder, prefix="encoder.",
                                                            max_lengths=inference_lengths(datamodule))
