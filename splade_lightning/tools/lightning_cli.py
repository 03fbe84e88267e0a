"""``splade-lightning {fit,validate,test} --config FILE.yaml``: LightningCLI with our defaults.

Every model, data module, encoder, loss and callback of the package can be named by its short class name
(``--model SpladeModule``, ``--model.help SpladeModule``). The data module's tokenizer is linked from the model
(``model.tokenizer_name_or_path``), and so are its prompts (``model.prompts``). ``fit``, ``validate`` and ``test``
print the same compact report and write it, with the resolved config, the exported model and the checkpoints, into
the run's own version directory (:mod:`splade_lightning.tools.run_dir`).
"""

from __future__ import annotations

import argparse
import copy
import shlex
import sys
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.plugins.io import CheckpointIO
from lightning.pytorch.utilities import rank_zero_info

import splade_lightning.callbacks
import splade_lightning.data.datamodule
import splade_lightning.losses
import splade_lightning.models
import splade_lightning.systems  # noqa: F401  (imported so that short class names resolve)
from splade_lightning.callbacks.checkpoint_io import AtomicCheckpointIO
from splade_lightning.callbacks.exact_resume import ExactResume
from splade_lightning.errors import ConfigError
from splade_lightning.formats.outputs import check_dir_output, config_inputs
from splade_lightning.formats.report import write_per_query, write_report
from splade_lightning.models.router import route_problems
from splade_lightning.serialization.checkpoint import inference_lengths
from splade_lightning.serialization.model_card import CardContext
from splade_lightning.systems.base import RetrievalModule
from splade_lightning.systems.loss_inputs import check_loss_source
from splade_lightning.tools.ckpt_path import resolve_ckpt_path
from splade_lightning.tools.final_weights import (
    FinalWeights,
    SelectedWeights,
    best_checkpoint,
    earlier_best,
    load_weights,
    monitoring_checkpoint,
)
from splade_lightning.tools.lightning_errors import explain_parse_error, quiet_lightning
from splade_lightning.tools.parser import flag_names
from splade_lightning.tools.run_dir import RunConfig, place_checkpoints, run_dir

SUBCOMMANDS = ("fit", "validate", "test")


class SpladeCLI(LightningCLI):
    """LightningCLI where ``model:`` and ``data:`` take any LightningModule / LightningDataModule via
    ``class_path``/``init_args``; optimisers are configured by the module (``--model.optimizer``); checkpoints are
    written atomically unless another CheckpointIO plugin is configured;
    :class:`~splade_lightning.callbacks.ExactResume` is installed first among the callbacks unless configured (a
    resumed run continues the epoch's data order at the next batch and draws the same dropout masks).

    ``--ckpt_path`` is resolved before the run (:func:`~splade_lightning.tools.ckpt_path.resolve_ckpt_path`): ``last``
    finds the newest ``last*.ckpt`` in every version directory of the logger and, when that file is damaged, falls
    back with a warning to the newest loadable one of its directory; an explicit file that cannot be loaded is an
    error (exit 2), never replaced by another checkpoint.

    Extra top-level options (accepted by every subcommand so one YAML serves fit/validate/test; used by ``fit``):
    ``--eval_before_fit`` validates once before training (the zero-shot rows of the report; a resumed run takes them
    from the checkpoint instead of evaluating again), ``--export_dir`` is where the trained model directory goes
    (default ``<run dir>/model``), ``--overwrite`` lets it replace an earlier output of splade_lightning, and
    ``--final_weights best`` ends the run with the best checkpoint's weights by the metric a ``ModelCheckpoint``
    monitors instead of the last ones (:mod:`splade_lightning.tools.final_weights`).
    """

    def __init__(self, args=None, run: bool = True, **kwargs):
        self._argv = list(args) if isinstance(args, list | tuple) else sys.argv[1:] if args is None else None
        self._earlier_best: tuple[str, float] | None = None
        super().__init__(
            model_class=pl.LightningModule,
            datamodule_class=pl.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            auto_configure_optimizers=False,
            seed_everything_default=42,
            save_config_callback=RunConfig,
            save_config_kwargs={"overwrite": True},
            parser_kwargs={"exit_on_error": False},
            args=args,
            run=run,
            **kwargs,
        )

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """``fit``, ``validate`` and ``test`` (``predict`` is ``splade-lightning index``)."""
        return {name: methods for name, methods in LightningCLI.subcommands().items() if name in SUBCOMMANDS}

    def parse_arguments(self, parser, args) -> None:
        try:
            super().parse_arguments(parser, args)
        except argparse.ArgumentError as e:
            subcommand = next((a for a in args or [] if a in SUBCOMMANDS), "fit")
            subparser = getattr(self, "_subcommand_parsers", {}).get(subcommand, parser)
            raise explain_parse_error(e, [subcommand], flag_names(subparser)) from None

    def init_parser(self, **kwargs):
        parser = super().init_parser(**kwargs)
        parser.prog = "splade-lightning"
        return parser

    def _add_subcommands(self, parser, **kwargs) -> None:
        super()._add_subcommands(parser, **kwargs)
        for name, subparser in self._subcommand_parsers.items():
            subparser.prog = f"splade-lightning {name}"
            if name in ("validate", "test"):
                subparser.set_defaults(verbose=False)  # our compact report replaces Lightning's metric tables

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--eval_before_fit", type=bool, nargs="?", const=True, default=False,
                            help="fit: validate once before training (the zero-shot rows of the report)")
        parser.add_argument("--export_dir", type=str | None, default=None,
                            help="fit: save the trained model here as a model directory (default <run dir>/model); "
                                 "it must be new or empty, or an earlier output of splade_lightning with --overwrite")
        parser.add_argument("--overwrite", type=bool, nargs="?", const=True, default=False,
                            help="fit: let --export_dir replace an earlier output of splade_lightning (only its own "
                                 "files are removed)")
        parser.add_argument("--final_weights", type=FinalWeights, default="last",
                            help="fit: the weights the run ends with (evaluated, reported, exported): last (the final "
                                 "step's) or best (the best checkpoint of the one ModelCheckpoint that monitors a "
                                 "metric, e.g. monitor: val/ndcg@10, mode: max)")
        parser.link_arguments("model", "data.init_args.tokenizer", compute_fn=_tokenizer_of, apply_on="instantiate")
        parser.link_arguments("model", "data.init_args.prompts", compute_fn=_prompts_of, apply_on="instantiate")

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        if self._sub("final_weights") == "best" and self.subcommand in (None, "fit"):
            monitoring_checkpoint(self.trainer)  # no such checkpoint: an error before anything runs

    def _instantiate_trainer(self, config: dict, callbacks: list) -> pl.Trainer:
        plugins = config.get("plugins") or []
        plugins = plugins if isinstance(plugins, list) else [plugins]
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            config = {**config, "plugins": [*plugins, AtomicCheckpointIO()]}
        configured = config.get("callbacks") or []
        configured = configured if isinstance(configured, list) else [configured]
        if not any(isinstance(c, ExactResume) for c in [*configured, *callbacks]):
            config = {**config, "callbacks": [ExactResume(), *configured]}
        return super()._instantiate_trainer(config, callbacks)

    def _parse_ckpt_path(self) -> None:
        # LightningCLI torch.loads an explicit --ckpt_path here (for its hyperparameters): check it first
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path is not None and ckpt_path != "last":
            self.config[subcommand]["ckpt_path"] = resolve_ckpt_path(ckpt_path, None, fallback=False)
        super()._parse_ckpt_path()

    def _run_subcommand(self, subcommand: str) -> None:
        options = self.config_init[subcommand]
        if options.get("ckpt_path") == "last":  # needs the trainer: its checkpoint callbacks and logger
            options["ckpt_path"] = resolve_ckpt_path("last", self.trainer)
        place_checkpoints(self.trainer)
        super()._run_subcommand(subcommand)

    # -- the run -------------------------------------------------------------------------------------------------
    def _sub(self, key: str):
        return (self.config[self.subcommand] if self.subcommand else self.config).get(key)

    def _ckpt_path(self) -> str | None:
        """The checkpoint this run starts from, once resolved (``last`` before any checkpoint exists is None)."""
        return self.config_init[self.subcommand].get("ckpt_path") if self.subcommand else None

    def _module(self) -> RetrievalModule | None:
        return self.model if isinstance(self.model, RetrievalModule) else None

    def _export_target(self, directory: Path) -> Path:
        """Where ``fit`` saves the model: ``--export_dir``, else ``<run dir>/model``."""
        return Path(self._sub("export_dir") or directory / "model")

    def before_fit(self) -> None:
        module = self._module()
        if module is not None:  # refuse a bad target or a route the model lacks before training
            _check_train_routes(module, self.datamodule)
            check_loss_source(getattr(module, "loss", None), getattr(self.datamodule, "train", None))
            target = self._export_target(run_dir(self.trainer))  # run_dir is a broadcast: every rank
            check_dir_output(target, "--export_dir", bool(self._sub("overwrite")),
                             config_inputs(self.config[self.subcommand]))
            if self._sub("final_weights") == "best" and self._ckpt_path():  # read before the resumed run writes
                self._earlier_best = earlier_best(self._ckpt_path(), monitoring_checkpoint(self.trainer))
        if not self._sub("eval_before_fit") or module is None:
            return
        if self._ckpt_path():  # resuming: the zero-shot metrics come back with the checkpoint
            rank_zero_info("Resuming: the zero-shot rows of the report come from the checkpoint")
            return
        rank_zero_info("Zero-shot evaluation before training (--eval_before_fit)")
        self.trainer.validate(module, datamodule=self.datamodule, verbose=False)
        module.zero_shot_metrics = copy.deepcopy(module.last_eval_metrics) or None

    def after_fit(self) -> None:
        module = self._module()
        if self.trainer.interrupted or module is None:
            return
        weights = self._final_weights(module)  # every rank: the best checkpoint's weights are loaded on each
        if module.last_eval_step != weights.step:
            which = ("the best checkpoint's weights" if weights.selected == "best"
                     else "the final weights (the last validation ran before the final step)")
            rank_zero_info(f"Evaluating {which}")
            self.trainer.validate(module, datamodule=self.datamodule, verbose=False)
            module.last_eval_step = weights.step
        directory = run_dir(self.trainer)  # a broadcast under DDP: every rank
        if not self.trainer.is_global_zero:
            return
        runs = {"zero-shot": module.zero_shot_metrics, "fine-tuned": module.last_eval_metrics}
        target = self._export_target(directory)
        report_weights = weights.to_report(directory)
        self._export(module, target, self._card(directory, runs, str(target), report_weights))
        if module.last_eval_metrics:
            self._report(directory, runs, module.last_eval_per_query, report_weights)

    def _final_weights(self, module: RetrievalModule) -> SelectedWeights:
        """With ``--final_weights best``, load the best checkpoint's weights into ``module`` (on every rank, from the
        path rank 0 chose); the weights the run ends with."""
        if self._sub("final_weights") != "best":
            return SelectedWeights("last", self.trainer.global_step)
        callback = monitoring_checkpoint(self.trainer)
        path, value = self.trainer.strategy.broadcast(best_checkpoint(callback, self._earlier_best))
        step = load_weights(module, path)
        rank_zero_info(f"Best checkpoint by {callback.monitor} ({callback.mode}): {value:.4f} at step {step}, {path}")
        return SelectedWeights("best", step, callback.monitor, callback.mode, value, path)

    def before_test(self) -> None:
        if not splade_lightning_eval_sets(self.datamodule, "test"):
            raise ConfigError("test: the data module has no test sets; set --data.init_args.test_sets (e.g. "
                              "[{path: data/scifact, split: test}]) or use validate")

    def after_validate(self) -> None:
        self._report_evaluation()

    def after_test(self) -> None:
        self._report_evaluation()

    def _report_evaluation(self) -> None:
        module = self._module()
        directory = run_dir(self.trainer)
        if module is None or not self.trainer.is_global_zero or not module.last_eval_metrics:
            return
        ckpt = self._ckpt_path()
        self._report(directory, {Path(ckpt).stem if ckpt else "model": module.last_eval_metrics},
                     module.last_eval_per_query)

    def _report(self, directory: Path, runs: dict, per_query: dict, weights: dict | None = None) -> None:
        text = write_report(directory, runs, weights)
        if per_query:
            write_per_query(directory, per_query)
        print(f"\nRetrieval results (written to {directory / 'report.md'}):\n{text}\n", flush=True)

    def _card(self, directory: Path, runs: dict, name: str, weights: dict) -> CardContext:
        """What the model card of the exported model records: the command, the resolved config (the run's
        ``config.yaml``, written by :class:`~splade_lightning.tools.run_dir.RunConfig`), the report and which
        weights were saved."""
        config = directory / "config.yaml"
        command = f"splade-lightning {shlex.join(map(str, self._argv))}" if self._argv else None
        return CardContext(name=name, command=command, config=config.read_text() if config.is_file() else None,
                           results=runs if runs["fine-tuned"] else None, weights=weights)

    def _export(self, module: RetrievalModule, target: Path, card: CardContext) -> None:
        from splade_lightning.hub import load_tokenizer
        from splade_lightning.serialization.model_dir import save_encoder

        encoder = module.encoder
        save_encoder(encoder, load_tokenizer(encoder.tokenizer_name_or_path), target,
                     **inference_lengths(self.datamodule), prompts=module.prompts,
                     overwrite=bool(self._sub("overwrite")),
                     flag="--export_dir", tool="fit", inputs=config_inputs(self.config[self.subcommand]),
                     card=card)
        print(f"Saved the fine-tuned model to {target} (load it with splade_lightning.load({str(target)!r}))",
              flush=True)


def _check_train_routes(module: RetrievalModule, datamodule) -> None:
    """The routes the training data is stamped with (``router_mapping``) must be routes of the model's encoder."""
    routes = getattr(getattr(datamodule, "train", None), "routes", None)
    problems = route_problems(module.encoder, list(routes or ()), "--data.init_args.train.init_args.router_mapping")
    if problems:
        raise ConfigError("; ".join(problems))


def _tokenizer_of(model) -> str | None:
    """The tokenizer a model's data must use (``model.tokenizer_name_or_path``)."""
    return getattr(model, "tokenizer_name_or_path", None)


def _prompts_of(model) -> dict[str, str] | None:
    """The prompts a model's data must prepend (``model.prompts``, :mod:`splade_lightning.prompts`)."""
    prompts = getattr(model, "prompts", None)
    return dict(prompts) if prompts is not None else None


def splade_lightning_eval_sets(datamodule, stage: str) -> list[str]:
    """Names of a data module's evaluation sets of ``stage`` (empty for a foreign data module)."""
    names = getattr(datamodule, "eval_set_names", None)
    return list(names(stage)) if names is not None else ["(unknown)"]


def run_lightning(argv: list[str]) -> int:
    """Run ``fit``/``validate``/``test`` with ``argv`` (the subcommand first); returns 0 (errors propagate)."""
    quiet_lightning()
    SpladeCLI(args=argv)
    return 0
