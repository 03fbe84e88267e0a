"""AtomicCheckpointIO: a crash while saving leaves the previous checkpoint intact and no temporary file behind."""

import pytest
import torch

import splade_lightning.callbacks.checkpoint_io as checkpoint_io
from splade_lightning.callbacks import AtomicCheckpointIO


def test_save_then_load(tmp_path):
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1, "w": torch.ones(3)}, tmp_path / "last.ckpt")
    assert io.load_checkpoint(tmp_path / "last.ckpt")["step"] == 1


def test_crash_mid_save_keeps_old_checkpoint(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    target = tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1}, target)

    def crash(checkpoint, path):
        with open(path, "wb") as f:
            f.write(b"half a checkpoint")
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(checkpoint_io, "_atomic_save", crash)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": 2}, target)
    assert io.load_checkpoint(target)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_cli_installs_it_by_default(tmp_path):
    from splade_lightning.cli import SpladeCLI

    cli = SpladeCLI(run=False, args=["--model=splade_lightning.systems.SpladeModule",
                                     "--model.encoder=splade_lightning.models.SpladeEncoder",
                                     "--data=splade_lightning.data.RetrievalDataModule",
                                     f"--trainer.default_root_dir={tmp_path}"])
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)
