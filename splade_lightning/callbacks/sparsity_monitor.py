"""SparsityMonitor: active dimensions (mean, extremes, percentiles, histogram), FLOPS and all-zero vectors of queries
and documents, in training and at validation."""

from __future__ import annotations

from collections.abc import Sequence

import lightning.pytorch as pl
import torch

from splade_lightning.callbacks.logger_media import log_histogram
from splade_lightning.errors import ConfigError
from splade_lightning.metrics.active_dims import ActiveDimsDistribution, check_percentiles, percentiles
from splade_lightning.metrics.sparsity import SparsityStats, flops
from splade_lightning.systems.eval_buffer import eval_set_of

KINDS = ("query", "doc")


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


def distribution_figures(counts: dict[str, torch.Tensor], qs: Sequence[int]) -> dict[str, float]:
    """``active_dims_<kind>_p<q>`` for every kind of ``counts`` (kind -> (N,) active dims per text) and q in ``qs``."""
    return {f"active_dims_{kind}_p{q}": value for kind, c in counts.items() for q, value in percentiles(c, qs).items()}


class _Group:
    """SparsityStats + ActiveDimsDistribution of queries and of documents."""

    def __init__(self, vocab_size: int, device: torch.device):
        self.stats = {kind: SparsityStats(vocab_size).to(device) for kind in KINDS}
        self.dist = {kind: ActiveDimsDistribution().to(device) for kind in KINDS}

    def update(self, kind: str, reps: torch.Tensor) -> None:
        self.stats[kind].update(reps)
        self.dist[kind].update(reps)

    def complete(self) -> bool:
        return all(self.stats[kind].update_called for kind in KINDS)

    def figures(self, qs: Sequence[int]) -> tuple[dict[str, float], dict[str, float], dict[str, torch.Tensor]]:
        """(:func:`sparsity_figures`, :func:`distribution_figures`, kind -> (N,) active dims per text)."""
        counts = {kind: self.dist[kind].compute() for kind in KINDS}
        return sparsity_figures(self.stats["query"], self.stats["doc"]), distribution_figures(counts, qs), counts

    def reset(self) -> None:
        for metric in (*self.stats.values(), *self.dist.values()):
            metric.reset()


class SparsityMonitor(pl.Callback):
    """Log sparsity of the representations a module produces.

    Training: every ``every_n_steps`` optimiser steps, aggregated over all batches since the previous log:
    ``train/active_dims_query`` (mean), ``..._min``, ``..._max``, ``..._p10``/``_p50``/``_p90`` (percentiles of the
    active dims per text, one key per entry of ``percentiles``), ``train/zero_fraction_doc`` (share of all-zero
    vectors, the collapse symptom) and ``train/flops`` = Σ_v p_q(v)·p_d(v) (expected multiply-adds per
    query-document pair; Paria et al., arXiv:2004.05665). Validation, per evaluation set over every encoded text:
    ``val/<dataset>/active_dims_doc_min``, ``..._max``, ``..._p50`` ... and ``zero_fraction_query``; the means, FLOPS
    and ``zero_fraction_doc`` there are logged by the module's evaluation. With ``histograms``, loggers that draw
    histograms (wandb, TensorBoard) also get the active dims per text as ``train/active_dims_<kind>_hist`` and
    ``val/<dataset>/active_dims_<kind>_hist``. Statistics are torchmetrics states, so they are reduced across DDP
    processes.

    Reads ``outputs["query_reps"]`` / ``outputs["doc_reps"]`` from ``training_step`` and the (B, V) tensor returned
    by ``validation_step`` together with ``batch.kind`` and the set's name from ``batch.eval_set`` (a validation
    batch without one is a :class:`~splade_lightning.errors.ConfigError`).

    Args:
        every_n_steps: training logging interval in optimiser steps.
        percentiles: percentiles of the active dims per text logged as scalars (integers in [0, 100]).
        histograms: also log per-text active dims as histograms to the loggers that support them.
    """

    def __init__(self, every_n_steps: int = 50, percentiles: Sequence[int] = (10, 50, 90), histograms: bool = True):
        if isinstance(every_n_steps, bool) or not isinstance(every_n_steps, int) or every_n_steps < 1:
            raise ConfigError(f"SparsityMonitor: every_n_steps={every_n_steps!r}: expected an integer >= 1")
        self.every_n_steps = every_n_steps
        self.percentiles = check_percentiles(percentiles, "SparsityMonitor: percentiles")
        self.histograms = histograms
        self._train: _Group | None = None
        self._val: dict[int, _Group] = {}
        self._val_names: dict[int, str] = {}  # dataloader index -> evaluation set name
        self._last_logged_step = -1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if not isinstance(outputs, dict) or "query_reps" not in outputs:
            return
        if self._train is None:
            self._train = _Group(outputs["query_reps"].shape[-1], outputs["query_reps"].device)
        self._train.update("query", outputs["query_reps"])
        self._train.update("doc", outputs["doc_reps"])
        step = trainer.global_step  # already counts the optimiser step this batch completed
        if step % self.every_n_steps == 0 and step != self._last_logged_step:
            figures, distribution, counts = self._train.figures(self.percentiles)
            pl_module.log_dict({f"train/{k}": v for k, v in {**figures, **distribution}.items()}, batch_size=1)
            self._log_histograms(trainer, "train", counts)
            self._train.reset()
            self._last_logged_step = step

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0):
        if trainer.sanity_checking or not isinstance(outputs, torch.Tensor):
            return
        if dataloader_idx not in self._val:
            self._val_names[dataloader_idx] = eval_set_of(batch, type(self).__name__).name
            self._val[dataloader_idx] = _Group(outputs.shape[-1], outputs.device)
        self._val[dataloader_idx].update("query" if batch.kind == "query" else "doc", outputs)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        logged = {}
        for idx, group in sorted(self._val.items()):
            if not group.complete():
                continue  # a limited loop (fast_dev_run / limit_val_batches) saw only one kind of text
            name = self._val_names[idx]
            figures, distribution, counts = group.figures(self.percentiles)
            figures = {k: v for k, v in figures.items() if k.endswith(("_min", "_max")) or k == "zero_fraction_query"}
            logged.update({f"val/{name}/{k}": v for k, v in {**figures, **distribution}.items()})
            self._log_histograms(trainer, f"val/{name}", counts)
        if logged:
            pl_module.log_dict(logged, add_dataloader_idx=False)
        self._val, self._val_names = {}, {}

    def _log_histograms(self, trainer, prefix: str, counts: dict[str, torch.Tensor]) -> None:
        if self.histograms:
            for kind, values in counts.items():
                log_histogram(trainer, f"{prefix}/active_dims_{kind}_hist", values, trainer.global_step)
