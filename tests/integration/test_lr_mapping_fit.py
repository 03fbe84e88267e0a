"""``learning_rate_mapping`` in training: every group's rate logged as ``train/lr_<name>`` and scaled by the schedule,
exact resume with the mapping, checkpoints from before the option, and a YAML mapping through the real CLI."""

from __future__ import annotations

import re
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from splade_lightning.models import SpladeEncoder
from splade_lightning.systems import SpladeModule
from tests.unit.systems.train_batches import train_loader

REPO = Path(__file__).resolve().parents[2]
LAYER1 = r"layer\.1\."


# -- per-group logging and resume --------------------------------------------------------------------------------------


class Rates(pl.Callback):
    """Records the logged learning rates of every step; stops the run after ``stop_after`` steps."""

    def __init__(self, stop_after: int | None = None):
        self.rows: list[dict[str, float]] = []
        self.stop_after = stop_after

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.rows.append({k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/lr")})
        trainer.should_stop = trainer.global_step == self.stop_after


def trainer(max_steps: int, *callbacks) -> pl.Trainer:
    return pl.Trainer(accelerator="cpu", max_steps=max_steps, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
                      callbacks=list(callbacks))


def test_each_group_is_logged_and_resumes(tiny_bert_dir, tmp_path):
    mapping = {LAYER1: 1e-3, r"cls\.predictions\.": 4e-4}
    torch.manual_seed(0)
    module = SpladeModule(SpladeEncoder(tiny_bert_dir), lr=2e-5, lr_warmup_steps=0, learning_rate_mapping=mapping)
    rates = Rates(stop_after=1)
    first = trainer(2, rates)  # a 2-step run, interrupted after its first step
    first.fit(module, train_dataloaders=train_loader(tiny_bert_dir))
    assert rates.rows == [pytest.approx({"train/lr": 2e-5, "train/lr_layer.1": 1e-3,
                                         "train/lr_cls.predictions": 4e-4})]
    path = tmp_path / "step1.ckpt"
    first.save_checkpoint(path)

    resumed = SpladeModule(SpladeEncoder(tiny_bert_dir), lr=2e-5, lr_warmup_steps=0, learning_rate_mapping=mapping)
    rates = Rates()
    second = trainer(2, rates)
    second.fit(resumed, train_dataloaders=train_loader(tiny_bert_dir), ckpt_path=path)
    # the optimiser state loaded group by group, and the schedule (2 steps, no warm-up) went on from step 1: ×0.5
    assert second.global_step == 2
    assert rates.rows == [pytest.approx({"train/lr": 1e-5, "train/lr_layer.1": 5e-4,
                                                       "train/lr_cls.predictions": 2e-4})]
    state = torch.load(path, map_location="cpu", weights_only=False)["optimizer_states"][0]
    assert [g["name"] for g in state["param_groups"]] == [g["name"] for g in second.optimizers[0].param_groups]


def test_a_checkpoint_from_before_the_mapping_loads(tiny_bert_dir, tmp_path):
    module = SpladeModule(SpladeEncoder(tiny_bert_dir))
    path = tmp_path / "old.ckpt"
    hparams = {k: v for k, v in module.hparams.items() if k != "learning_rate_mapping"}
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": hparams,
                "pytorch-lightning_version": pl.__version__}, path)
    loaded = SpladeModule.load_from_checkpoint(path, encoder=SpladeEncoder(tiny_bert_dir))
    assert loaded.hparams.learning_rate_mapping is None
    assert {g["name"] for g in loaded.parameter_groups()} == {"backbone"}


# -- YAML --------------------------------------------------------------------------------------------------------------
OVERLAY = r"""
model:
  init_args:
    learning_rate_mapping:
      'encoder\.mlm\.cls\.': 1e-3
      embeddings: 5.0e-5
"""


def test_a_yaml_mapping_is_parsed_and_instantiated_by_the_cli(tmp_path, monkeypatch):
    from splade_lightning.tools.lightning_cli import SpladeCLI

    monkeypatch.chdir(REPO)  # the shipped config's paths are relative to the repository root
    overlay = tmp_path / "lr_mapping.yaml"
    overlay.write_text(OVERLAY)
    base = ["--config", str(REPO / "configs" / "splade" / "quickstart.yaml"), "--config", str(overlay)]
    cli = SpladeCLI(args=base, run=False)
    assert cli.model.hparams.learning_rate_mapping == {r"encoder\.mlm\.cls\.": 1e-3, "embeddings": 5e-5}
    assert isinstance(cli.model.hparams.learning_rate_mapping[r"encoder\.mlm\.cls\."], float)
    groups = {(g["name"], g.get("lr")) for g in cli.model.parameter_groups()}
    assert groups == {("backbone", None), ("encoder.mlm.cls", 1e-3), ("embeddings", 5e-5)}
    overlay.write_text(OVERLAY.replace("mlm", "mlmm"))
    with pytest.raises(ValueError, match=re.escape(r"pattern 'encoder\.mlmm\.cls\.' matches no parameter name")):
        SpladeCLI(args=base, run=False)  # a ConfigError, wrapped by jsonargparse (the CLI prints it as one line)
