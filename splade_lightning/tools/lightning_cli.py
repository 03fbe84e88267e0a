"""``python -m splade_lightning {fit,validate,test,...} --config FILE.yaml``: LightningCLI with our defaults."""

from __future__ import annotations

import copy
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.plugins.io import CheckpointIO
from lightning.pytorch.utilities import rank_zero_info

from splade_lightning.callbacks.checkpoint_io import AtomicCheckpointIO
from splade_lightning.callbacks.exact_resume import ExactResume
from splade_lightning.formats.outputs import Input, check_dir_output
from splade_lightning.formats.report import write_report
from splade_lightning.serialization.checkpoint import inference_lengths
from splade_lightning.tools.ckpt_path import resolve_ckpt_path

#: config keys that name where a run writes, not what it reads
OUTPUT_KEYS = frozenset({"default_root_dir", "save_dir", "export_dir", "dirpath", "log_dir", "cache_dir"})


def config_inputs(config, prefix: str = "") -> list[Input]:
    """Every input a resolved run config names: the ``--config`` files and each string value that is an existing
    path (data files, BEIR folders, the backbone directory, ``ckpt_path``), except the keys in
    :data:`OUTPUT_KEYS`."""
    found: list[Input] = []
    items = config.items() if hasattr(config, "items") else enumerate(config)
    for key, value in items:
        name = f"{prefix}.{key}" if prefix else str(key)
        if str(key) in OUTPUT_KEYS:
            continue
        if key == "config" and not prefix:
            found += [Input(str(path), "--config") for path in value or () if path is not None]
        elif isinstance(value, str | Path) and value and Path(value).exists():
            found.append(Input(str(value), f"config {name}"))
        elif hasattr(value, "items") or isinstance(value, list | tuple):
            found += config_inputs(value, name)
    return found


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
    ``--eval_before_fit`` runs a full validation before training (the zero-shot baseline, logged at step 0), and
    ``--export_dir`` is where the fine-tuned model directory is written after ``fit`` (default ``<log_dir>/model``).
    """

    def __init__(self, args=None, run: bool = True, **kwargs):
        self.zero_shot_metrics: dict | None = None
        super().__init__(
            model_class=pl.LightningModule,
            datamodule_class=pl.LightningDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            auto_configure_optimizers=False,
            seed_everything_default=42,
            save_config_kwargs={"overwrite": True},
            args=args,
            run=run,
            **kwargs,
        )

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--eval_before_fit", type=bool, default=False,
                            help="fit: validate once before training (zero-shot baseline) and report both")
        parser.add_argument("--export_dir", type=str | None, default=None,
                            help="fit: save the final encoder here as a model directory (default <log_dir>/model); "
                                 "it must be new or empty, or an earlier output of splade_lightning with --overwrite")
        parser.add_argument("--overwrite", type=bool, default=False,
                            help="fit: let --export_dir replace an earlier output of splade_lightning (only its own "
                                 "files are removed)")

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
        super()._run_subcommand(subcommand)

    def _sub(self, key: str):
        return self.config[self.subcommand].get(key) if self.subcommand else None

    def _export_target(self) -> Path:
        log_dir = Path(self.trainer.log_dir or self.trainer.default_root_dir)
        return Path(self._sub("export_dir") or log_dir / "model")

    def before_fit(self) -> None:
        if hasattr(getattr(self.model, "encoder", None), "export_config"):  # refuse a bad target before training
            check_dir_output(self._export_target(), "--export_dir", bool(self._sub("overwrite")),
                             config_inputs(self.config[self.subcommand]))
        if self._sub("eval_before_fit"):
            rank_zero_info("Zero-shot evaluation before training (--eval_before_fit)")
            self.trainer.validate(self.model, datamodule=self.datamodule, verbose=False)
            self.zero_shot_metrics = copy.deepcopy(getattr(self.model, "last_eval_metrics", None)) or None

    def after_fit(self) -> None:
        if self.trainer.interrupted:
            return
        if getattr(self.model, "last_eval_step", None) not in (None, self.trainer.global_step):
            rank_zero_info("Evaluating the final weights (the last validation ran before the final step)")
            self.trainer.validate(self.model, datamodule=self.datamodule, verbose=False)
        log_dir = Path(self.trainer.log_dir or self.trainer.default_root_dir)  # a broadcast under DDP: every rank
        if not self.trainer.is_global_zero:
            return
        self._export(log_dir)
        final = getattr(self.model, "last_eval_metrics", None)
        if final:
            table = write_report(log_dir, self.zero_shot_metrics, final)
            print(f"\nRetrieval results (written to {log_dir / 'report.md'}):\n{table}\n", flush=True)

    def _export(self, log_dir: Path) -> None:
        encoder = getattr(self.model, "encoder", None)
        if encoder is None or not hasattr(encoder, "export_config"):
            return
        from splade_lightning.hub import load_tokenizer
        from splade_lightning.serialization.model_dir import save_encoder

        target = self._export_target()
        lengths = inference_lengths(self.datamodule)
        save_encoder(encoder, load_tokenizer(encoder.tokenizer_name_or_path), target, **lengths,
                     overwrite=bool(self._sub("overwrite")), flag="--export_dir", tool="fit",
                     inputs=config_inputs(self.config[self.subcommand]))
        print(f"Saved the fine-tuned model to {target} (load it with splade_lightning.load({str(target)!r}))",
              flush=True)
