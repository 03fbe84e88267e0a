"""Choosing the best checkpoint for ``fit --final_weights best``: which ModelCheckpoint decides, which of its
checkpoints wins (mode, ties, a resumed run's earlier best), and how the report names the file."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from splade_lightning.errors import ConfigError
from splade_lightning.tools.final_weights import SelectedWeights, best_checkpoint, monitoring_checkpoint


def trainer_with(*callbacks):
    return SimpleNamespace(checkpoint_callbacks=list(callbacks))


def test_the_one_checkpoint_that_monitors_a_metric_decides():
    steps = ModelCheckpoint(monitor="step", mode="max", save_top_k=2)
    best = ModelCheckpoint(monitor="val/ndcg@10", mode="max")
    assert monitoring_checkpoint(trainer_with(steps, best)) is best
    for callbacks in ([steps], [ModelCheckpoint(monitor="val/ndcg@10", save_top_k=0)], [ModelCheckpoint()], []):
        with pytest.raises(ConfigError, match="--final_weights=best needs a ModelCheckpoint"):
            monitoring_checkpoint(trainer_with(*callbacks))
    with pytest.raises(ConfigError, match="2 ModelCheckpoint callbacks monitor a metric"):
        monitoring_checkpoint(trainer_with(best, ModelCheckpoint(monitor="val/mrr@10", mode="max")))


def test_best_follows_the_mode_and_keeps_the_earlier_on_a_tie():
    callback = ModelCheckpoint(monitor="val/loss", mode="min")
    callback.best_model_path, callback.best_model_score = "b.ckpt", torch.tensor(0.25)
    assert best_checkpoint(callback) == ("b.ckpt", 0.25)
    assert best_checkpoint(callback, ("a.ckpt", 0.5)) == ("b.ckpt", 0.25)
    assert best_checkpoint(callback, ("a.ckpt", 0.25)) == ("a.ckpt", 0.25)
    callback.mode = "max"
    assert best_checkpoint(callback, ("a.ckpt", 0.5)) == ("a.ckpt", 0.5)
    with pytest.raises(ConfigError, match="saved no checkpoint in this run"):
        best_checkpoint(ModelCheckpoint(monitor="val/ndcg@10", mode="max"))


def test_report_entry_names_the_checkpoint_relative_to_the_run(tmp_path):
    inside = SelectedWeights("best", 4, "val/ndcg@10", "max", 0.5, str(tmp_path / "run" / "checkpoints" / "a.ckpt"))
    assert inside.to_report(tmp_path / "run") == {"selected": "best", "step": 4, "monitor": "val/ndcg@10",
                                                  "mode": "max", "value": 0.5, "checkpoint": "checkpoints/a.ckpt"}
    outside = SelectedWeights("best", 4, "val/ndcg@10", "max", 0.5, str(tmp_path / "old" / "a.ckpt"))
    assert Path(outside.to_report(tmp_path / "run")["checkpoint"]).is_absolute()
    assert SelectedWeights("last", 36).to_report(tmp_path) == {"selected": "last", "step": 36}
