"""SelectionCriterion: a checkpoint-selection and early-stopping metric that wants in-domain gains without
out-of-domain losses (the score is :func:`~splade_lightning.metrics.selection.selection_score`)."""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.trainer.states import TrainerFn

from splade_lightning.errors import ConfigError
from splade_lightning.metrics.selection import missing_sets, selection_score
from splade_lightning.systems.interfaces import EvalReporting, require

WHERE = "trainer.callbacks: SelectionCriterion"


class SelectionCriterion(pl.Callback):
    """Log ``val/<name>`` after every validation of ``fit``: the in-domain mean of ``measure`` when the
    out-of-domain mean has not dropped more than ``max_drop`` below zero-shot, else a value below every such
    candidate (``-1 - violation``). Monitor it to select the best checkpoint or to stop early:

    .. code-block:: yaml

        trainer:
          callbacks:
            - class_path: splade_lightning.callbacks.SelectionCriterion
              init_args: {in_domain: [hotpotqa-dev], out_of_domain: [msmarco-trecdl-5k], max_drop: 0.005}
            - class_path: lightning.pytorch.callbacks.ModelCheckpoint
              init_args: {monitor: val/selection, mode: max, save_top_k: 1}

    Also logged: ``val/<name>_feasible`` (1 or 0), ``val/<name>_in_domain_change`` and
    ``val/<name>_ood_change`` (mean change against zero-shot). The zero-shot reference is the module's
    ``zero_shot_metrics``, which ``fit --eval_before_fit`` sets (and checkpoints keep across a resume); ``fit``
    without it is refused before training. The set names are checked at that zero-shot evaluation, before training.
    The module logs these figures together with its own validation metrics (the
    :class:`~splade_lightning.systems.interfaces.EvalReporting` interface), so ``ModelCheckpoint`` and
    ``EarlyStopping`` see them wherever they are in the callback list.

    Args:
        in_domain: names of the validation sets of the training domain (``val_sets`` ``name``s).
        out_of_domain: names of the validation sets that must not lose quality; ``<suite>/mean`` names the mean over
            a suite's sets (``val_sets: [{suite: out_of_domain}]`` gives ``out_of_domain/mean``).
        measure: the measure compared (one of the module's ``eval_measures``).
        max_drop: the largest accepted drop of the out-of-domain mean against zero-shot (>= 0).
        name: the logged key is ``val/<name>``.
    """

    def __init__(self, in_domain: list[str], out_of_domain: list[str], measure: str = "ndcg@10",
                 max_drop: float = 0.005, name: str = "selection"):
        problems = []
        if not in_domain:
            problems.append(f"{WHERE}: in_domain: got no set names; give the validation sets of the training domain")
        if not out_of_domain:
            problems.append(f"{WHERE}: out_of_domain: got no set names; give at least one other validation set")
        if set(in_domain) & set(out_of_domain):
            problems.append(f"{WHERE}: sets named both in_domain and out_of_domain: "
                            f"{sorted(set(in_domain) & set(out_of_domain))}")
        if not max_drop >= 0:
            problems.append(f"{WHERE}: max_drop: got {max_drop}; expected a number >= 0, e.g. 0.005")
        if not name or "/" in name:
            problems.append(f"{WHERE}: name: got {name!r}; expected a non-empty name without '/'")
        if problems:
            raise ConfigError("\n".join(problems))
        self.in_domain = list(in_domain)
        self.out_of_domain = list(out_of_domain)
        self.measure = measure
        self.max_drop = float(max_drop)
        self.key = f"val/{name}"

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        require(pl_module, EvalReporting, "SelectionCriterion", "a RetrievalModule (SPLADE, inference-free, CSR)")
        pl_module.add_eval_reporter(self.report)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        pl_module.remove_eval_reporter(self.report)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if getattr(pl_module, "zero_shot_metrics", None) is None:
            raise ConfigError(f"{WHERE}: needs the zero-shot evaluation as its reference, and there is none: run "
                              "`fit` with --eval_before_fit (eval_before_fit: true in the config), or set the "
                              "module's zero_shot_metrics before trainer.fit")
        self._check_names(pl_module.zero_shot_metrics, "the zero-shot evaluation")

    def report(self, pl_module: pl.LightningModule, stage: str, metrics: dict) -> dict[str, float]:
        """The logged figures of one validation (the module logs them with its own metrics, in the same row); none
        for a test, or for a validation outside ``fit`` (the zero-shot run, a re-evaluation), whose set names are
        checked instead."""
        if stage != "validate":
            return {}
        if pl_module.trainer.state.fn != TrainerFn.FITTING:
            self._check_names(metrics, "this evaluation")
            return {}
        result = selection_score(metrics, pl_module.zero_shot_metrics, self.in_domain, self.out_of_domain,
                                 self.measure, self.max_drop)
        return {self.key: result.score, f"{self.key}_feasible": float(result.feasible),
                f"{self.key}_in_domain_change": result.in_domain_change,
                f"{self.key}_ood_change": result.out_of_domain_change}

    def _check_names(self, metrics: dict, what: str) -> None:
        missing = missing_sets(metrics, self.in_domain + self.out_of_domain, self.measure)
        if missing:
            known = sorted(name for name in metrics if name != "mean")
            raise ConfigError(f"{WHERE}: {what} has no {self.measure} for the sets {missing}; the validation sets "
                              f"are {known} (their val_sets names) and measure must be one of eval_measures")
