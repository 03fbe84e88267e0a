"""SparsityMonitor: active dimensions, FLOPS and all-zero vectors of queries and documents, in training and at
validation."""

from __future__ import annotations

import lightning.pytorch as pl
import torch

from ..eval.sparsity import SparsityStats, flops


def sparsity_figures(stats_query: SparsityStats, stats_doc: SparsityStats) -> dict[str, float]:
    """Flatten two computed SparsityStats into logged figures (mean/min/max active dims, zero fraction, FLOPS)."""
    out: dict[str, float] = {}
    computed = {"query": stats_query.compute(), "doc": stats_doc.compute()}
    for kind, c in computed.items():
        out[f"active_dims_{kind}"] = float(c["active_dims"])
        out[f"active_dims_{kind}_min"] = float(c["active_dims_min"])
        out[f"active_dims_{kind}_max"] = float(c["active_dims_max"])
        out[f"zero_fraction_{kind}"] = float(c["zero_fraction"])
    out["flops"] = float(flops(computed["query"]["dim_frequency"], computed["doc"]["dim_frequency"]))
    return out


class SparsityMonitor(pl.Callback):
    """Log sparsity of the representations a module produces.

    Training: every ``every_n_steps`` optimiser steps, aggregated over all batches since the previous log:
    ``train/active_dims_query`` (mean), ``..._min``, ``..._max``, ``train/zero_fraction_doc`` (share of all-zero
    vectors, the collapse symptom) and ``train/flops`` = Σ_v p_q(v)·p_d(v) (expected multiply-adds per
    query-document pair; Paria et al., arXiv:2004.05665). Validation: the extremes per evaluation set
    (``val/<dataset>/active_dims_doc_min``, ``..._max``, ``zero_fraction_query``) over every encoded text; the means,
    FLOPS and ``zero_fraction_doc`` there are logged by the module's evaluation. Statistics are torchmetrics states,
    so they are reduced across DDP processes.

    Reads ``outputs["query_reps"]`` / ``outputs["doc_reps"]`` from ``training_step`` and the (B, V) tensor returned
    by ``validation_step`` together with ``batch.kind``.

    Args:
        every_n_steps: training logging interval in optimiser steps.
    """

    def __init__(self, every_n_steps: int = 50):
        if every_n_steps < 1:
            raise ValueError(f"SparsityMonitor: every_n_steps={every_n_steps!r}: expected >= 1")
        self.every_n_steps = every_n_steps
        self._train: tuple[SparsityStats, SparsityStats] | None = None
        self._val: dict[int, tuple[SparsityStats, SparsityStats]] = {}
        self._last_logged_step = -1

    @staticmethod
    def _new_pair(vocab_size: int, device: torch.device) -> tuple[SparsityStats, SparsityStats]:
        return SparsityStats(vocab_size).to(device), SparsityStats(vocab_size).to(device)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if not isinstance(outputs, dict) or "query_reps" not in outputs:
            return
        if self._train is None:
            self._train = self._new_pair(outputs["query_reps"].shape[-1], outputs["query_reps"].device)
        self._train[0].update(outputs["query_reps"])
        self._train[1].update(outputs["doc_reps"])
        step = trainer.global_step  # already counts the optimiser step this batch completed
        if step % self.every_n_steps == 0 and step != self._last_logged_step:
            figures = sparsity_figures(*self._train)
            pl_module.log_dict({f"train/{k}": v for k, v in figures.items()}, batch_size=1)
            self._train[0].reset()
            self._train[1].reset()
            self._last_logged_step = step

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0):
        if trainer.sanity_checking or not isinstance(outputs, torch.Tensor):
            return
        if dataloader_idx not in self._val:
            self._val[dataloader_idx] = self._new_pair(outputs.shape[-1], outputs.device)
        self._val[dataloader_idx][0 if batch.kind == "query" else 1].update(outputs)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        names = trainer.datamodule.eval_set_names("validate") if trainer.datamodule is not None else []
        logged = {}
        for idx, pair in sorted(self._val.items()):
            if not (pair[0].update_called and pair[1].update_called):
                continue  # a limited loop (fast_dev_run / limit_val_batches) saw only one kind of text
            name = names[idx] if idx < len(names) else str(idx)
            figures = sparsity_figures(*pair)
            logged.update({f"val/{name}/{k}": v for k, v in figures.items() if k.endswith(("_min", "_max"))
                           or k == "zero_fraction_query"})
        if logged:
            pl_module.log_dict(logged, add_dataloader_idx=False)
        self._val = {}
