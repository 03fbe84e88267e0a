"""CSRModule: train a TopK sparse autoencoder (optionally with its dense backbone) with the CSR objective."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from torch import nn

import splade_lightning.systems.optim as optim
from splade_lightning.errors import ConfigError
from splade_lightning.losses import CSRReconstructionLoss, InBatchNegativesLoss, csr_total
from splade_lightning.models.csr import ACTIVE_EPS, CSROutput
from splade_lightning.models.csr_encoder import CSREncoder
from splade_lightning.systems.base import RetrievalModule
from splade_lightning.systems.eval_buffer import EvalBuffer, eval_set_of, score_buffer
from splade_lightning.systems.loss_inputs import loss_terms
from splade_lightning.types import EncodeBatch, TrainBatch

_AUTOENCODER_PATTERN = r"^encoder\.autoencoder\."


class CSRModule(RetrievalModule):
    """Train CSR (Wen et al., "Beyond Matryoshka", arXiv:2503.01776): a TopK sparse autoencoder over a dense
    sentence embedding, with the objective of sentence-transformers 6.x ``CSRLoss``:

    ``loss = L_k + L_4k/8 + β·L_aux + γ·L_rank``

    where the reconstruction terms (``CSRReconstructionLoss``) are computed per input column (queries, positives,
    each negative column) and averaged over the columns, and ``L_rank`` is the contrastive loss on the top-k codes
    (default: in-batch negatives, cosine similarity, scale 20, as the CSR paper and the sentence-transformers
    example). Logged: ``train/loss``, ``train/loss_rank``, ``train/recon_k``, ``train/recon_4k``, ``train/recon_aux``
    (raw, before weighting) and ``train/dead_fraction``.

    Dead latents are counted in optimizer steps: the codes of every text of a step (all columns, all accumulated
    micro-batches, all DDP ranks) update ``SparseAutoEncoder.stats_last_nonzero`` once, just before the optimizer
    steps.

    Evaluation adds, per dataset: ``dense_<measure>`` (the same retrieval with the backbone's dense embeddings, from
    the same forward pass, so the sparse-vs-dense gap is on every validation; ``eval_dense_baseline``),
    ``recon_mse`` (MSE of the top-k reconstruction over the evaluation texts), ``recon_fvu`` (its fraction of variance
    unexplained, Gao et al.'s normalised MSE) and ``dead_fraction``.

    Args:
        encoder: a :class:`~splade_lightning.models.CSREncoder` (dense backbone + ``SparseAutoEncoder``).
        loss: the loss on the codes, as in :class:`~splade_lightning.systems.SpladeModule`: contrastive
            ``(query_codes, doc_codes, num_negatives) -> scalar``, a distillation loss on teacher scores
            (``MarginMSELoss``, ``KLDistillationLoss``, ``SpladeV3DistillationLoss``; student scores are dot products
            of the codes) or a pair loss on labels (``CoSENTLoss``, ``AnglELoss``, ``CosineSimilarityLoss``), weighted
            by ``gamma``; default ``InBatchNegativesLoss(scale=20, similarity="cosine")``.
        beta: weight of the auxiliary (dead-latent) reconstruction term (sentence-transformers' default 0.1).
        gamma: weight of the contrastive term (sentence-transformers' ``CSRLoss`` default 1.0; the CSR paper's
            example uses 0.1).
        lr: peak learning rate of the default AdamW (the backbone's, and the autoencoder's unless
            ``autoencoder_lr`` is set).
        autoencoder_lr: separate peak learning rate for the autoencoder (group ``autoencoder``, logged as
            ``train/lr_autoencoder``); ``None``: ``lr``. A shorthand for the learning-rate rule
            ``{r"^encoder\\.autoencoder\\.": autoencoder_lr}``, applied before ``learning_rate_mapping``.
        weight_decay: AdamW weight decay (never on biases and norm weights).
        lr_warmup_fraction: linear LR warm-up as a fraction of the total steps (default 0.1).
        lr_warmup_steps: linear LR warm-up in steps (instead of ``lr_warmup_fraction``).
        optimizer: optional optimiser factory; receives the parameter groups.
        lr_scheduler: optional scheduler factory replacing the default linear warm-up/decay.
        eval_k: retrieval depth used at evaluation.
        eval_measures: metrics computed at evaluation.
        eval_dense_baseline: also evaluate retrieval with the dense backbone embeddings (``dense_*`` metrics).
        learning_rate_mapping: ``{parameter-name regex: peak lr}``: the first matching regex sets a parameter's lr
            (see :class:`~splade_lightning.systems.SpladeModule`).
        prompts: ``{route: text}`` prepended to queries (``query``) and documents (``document``); the prompt's tokens
            are pooled with the text (sentence-transformers' ``include_prompt: true``); see
            :class:`~splade_lightning.systems.SpladeModule`.
    """

    def __init__(
        self,
        encoder: CSREncoder,
        loss: nn.Module | None = None,
        beta: float = 0.1,
        gamma: float = 1.0,
        lr: float = 4e-5,
        autoencoder_lr: float | None = None,
        weight_decay: float = 0.01,
        lr_warmup_fraction: float | None = None,
        lr_warmup_steps: int | None = None,
        optimizer: OptimizerCallable | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        eval_k: int = 1000,
        eval_measures: Sequence[str] = ("ndcg@10", "mrr@10", "recall@100"),
        eval_dense_baseline: bool = True,
        learning_rate_mapping: dict[str, float] | None = None,
        prompts: dict[str, str] | None = None,
    ):
        _check_args(encoder, loss, beta, gamma, autoencoder_lr)
        super().__init__(encoder, lr, weight_decay, lr_warmup_fraction, lr_warmup_steps, optimizer, lr_scheduler,
                         eval_k, eval_measures, learning_rate_mapping, prompts)
        self.loss = loss if loss is not None else InBatchNegativesLoss(scale=20.0, similarity="cosine")
        self.reconstruction = CSRReconstructionLoss(beta=beta)
        self.parameter_groups()  # every learning_rate_mapping regex claims a parameter: fail now, not at fit
        self._fired: torch.Tensor | None = None  # (h,) latents active in the current optimizer step
        self._dense_buffer = EvalBuffer()
        self._recon: dict[int, dict[str, torch.Tensor | float]] = defaultdict(dict)

    @property
    def autoencoder(self) -> nn.Module:
        return self.encoder.autoencoder

    # -- training ------------------------------------------------------------------------------------------------
    def compute_loss(self, query_out: CSROutput, doc_out: CSROutput, num_negatives: int,
                     teacher_scores: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> dict:
        """All loss terms for one batch: the autoencoder outputs of B queries and B·(1+n) documents (column-major:
        rows c·B..(c+1)·B-1 are column c), plus the batch's (B, 1+n) teacher scores and (B,) pair labels for losses
        that use them (distillation, the pair losses) -> dict of scalars incl. ``loss``. A loss that returns named
        parts has them logged as ``loss_<name>`` (unweighted)."""
        batch = query_out.z_k.shape[0]
        columns = [_rows(query_out, 0, batch)]
        columns += [_rows(doc_out, c * batch, (c + 1) * batch) for c in range(1 + num_negatives)]
        per_column = [self.reconstruction(**column) for column in columns]
        terms = {key: torch.stack([t[key] for t in per_column]).mean() for key in per_column[0]}
        ranking = loss_terms(self.loss, query_out.z_k, doc_out.z_k, num_negatives, teacher_scores, labels)
        total = csr_total(terms, ranking["loss_rank"], self.hparams.beta, self.hparams.gamma)
        return {"loss": total, **ranking, **terms}

    def training_step(self, batch: TrainBatch, batch_idx: int) -> dict:
        query_out = self.encoder(batch.query_input_ids, batch.query_attention_mask)
        doc_out = self.encoder(batch.doc_input_ids, batch.doc_attention_mask)
        terms = self.compute_loss(query_out, doc_out, batch.num_negatives, batch.teacher_scores, batch.labels)
        fired = (torch.cat([query_out.z_k, doc_out.z_k]).detach() > ACTIVE_EPS).any(dim=0)
        self._fired = fired if self._fired is None else self._fired | fired
        terms["dead_fraction"] = torch.tensor(self.autoencoder.dead_fraction())
        self.log_training(terms, batch.batch_size)
        return {"loss": terms["loss"], "query_reps": query_out.z_k.detach(), "doc_reps": doc_out.z_k.detach()}

    def on_before_optimizer_step(self, optimizer) -> None:
        """Record which latents fired during this optimizer step (once per step, whatever the accumulation)."""
        if self._fired is None:
            return
        fired = self._fired.to(torch.uint8)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(fired, op=torch.distributed.ReduceOp.MAX)  # fired on any rank
        self.autoencoder.record_activity(fired.unsqueeze(0).float())
        self._fired = None

    # -- evaluation ----------------------------------------------------------------------------------------------
    def _encode_eval(self, batch: EncodeBatch, dataloader_idx: int) -> torch.Tensor:
        """Encode one evaluation batch -> (B, h) codes; keep the codes, the dense embeddings and the reconstruction
        error, with the batch's evaluation set."""
        eval_set = eval_set_of(batch, type(self).__name__)
        x = self.encoder.embed(batch.input_ids, batch.attention_mask)
        codes = self.autoencoder.encode(x)
        if not self.trainer.sanity_checking:
            self._eval_buffer.add(dataloader_idx, batch.kind, batch.ids, codes, eval_set)
            if self.hparams.eval_dense_baseline:
                self._dense_buffer.add(dataloader_idx, batch.kind, batch.ids, x, eval_set)
            self._add_reconstruction(dataloader_idx, x)
        return codes

    def _add_reconstruction(self, dataloader_idx: int, x: torch.Tensor) -> None:
        """Accumulate the squared error of the top-k reconstruction and the moments of x over evaluation texts."""
        x = x.float()
        error = (self.autoencoder(x).decoded_k.float() - x).pow(2).sum()
        acc = self._recon[dataloader_idx]
        for key, value in (("sse", error), ("sum", x.sum(0)), ("sumsq", x.pow(2).sum(0))):
            acc[key] = acc[key] + value if key in acc else value
        acc["rows"] = acc.get("rows", 0) + x.shape[0]

    def extra_eval_metrics(self, stage: str, results: dict[str, dict]) -> None:
        """Add ``recon_mse``, ``recon_fvu``, ``dead_fraction`` and the ``dense_*`` retrieval metrics per dataset."""
        dense = {}
        if self.hparams.eval_dense_baseline:
            dense = score_buffer(self._dense_buffer, self.hparams.eval_k, self.hparams.eval_measures)
        for idx, acc in self._recon.items():
            name = self._eval_buffer.eval_set(idx).name
            if name not in results:
                continue
            rows, width = acc["rows"], acc["sum"].numel()
            variance = float((acc["sumsq"] - acc["sum"].pow(2) / rows).sum())
            results[name]["recon_mse"] = float(acc["sse"]) / (rows * width)
            results[name]["recon_fvu"] = float(acc["sse"]) / variance if variance > 0 else float("nan")
            results[name]["dead_fraction"] = self.autoencoder.dead_fraction()
            for measure in self.hparams.eval_measures:
                if measure in dense.get(name, {}):
                    results[name][f"dense_{measure}"] = dense[name][measure]

    def clear_eval_state(self) -> None:
        super().clear_eval_state()
        self._dense_buffer.clear()
        self._recon.clear()

    # -- optimisation --------------------------------------------------------------------------------------------
    def shorthand_lr_rules(self) -> list[optim.LrRule]:
        """``autoencoder_lr``: the autoencoder's parameters at that rate (group ``autoencoder``); none when it is
        ``None``."""
        if self.hparams.autoencoder_lr is None:
            return []
        return [optim.LrRule(_AUTOENCODER_PATTERN, self.hparams.autoencoder_lr, "autoencoder",
                             source="autoencoder_lr", required=False)]


def _rows(out: CSROutput, start: int, end: int) -> dict[str, torch.Tensor | None]:
    """The reconstruction tensors of rows ``start..end-1`` (one input column)."""
    return {k: (v[start:end] if v is not None else None) for k, v in out.reconstruction_tensors().items()}


def _check_args(encoder: nn.Module, loss: nn.Module | None, beta: float, gamma: float,
                autoencoder_lr: float | None) -> None:
    problems = []
    if not (hasattr(encoder, "autoencoder") and hasattr(encoder, "embed")):
        problems.append(f"encoder: expected a splade_lightning.models.CSREncoder (dense backbone + "
                        f"SparseAutoEncoder), got {type(encoder).__name__}")
    if not beta >= 0:
        problems.append(f"beta={beta!r}: expected >= 0")
    if not gamma >= 0:
        problems.append(f"gamma={gamma!r}: expected >= 0")
    if getattr(loss, "uses_teacher_reps", False):
        problems.append(f"loss: {type(loss).__name__} needs a teacher model's representations, which CSRModule does "
                        "not provide; use a distillation loss on teacher scores (MarginMSELoss, KLDistillationLoss) "
                        "or train with SpladeModule")
    if autoencoder_lr is not None and not autoencoder_lr > 0:
        problems.append(f"autoencoder_lr={autoencoder_lr!r}: expected null or > 0")
    if problems:
        raise ConfigError("CSRModule: " + "; ".join(problems))
