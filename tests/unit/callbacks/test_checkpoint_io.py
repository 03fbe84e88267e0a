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

    monkeypatch.setattr(checkpoint_io, "write_checkpoint", crash)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": 2}, target)
    assert io.load_checkpoint(target)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]


def test_save_streams_to_the_file_without_an_in_memory_copy(tmp_path):
    """Lightning's writer buffers the serialised checkpoint in a BytesIO (Python memory, seen by tracemalloc); ours
    streams the 32 MiB tensor to the file, so the Python heap barely grows."""
    import tracemalloc

    checkpoint = {"step": 3, "w": torch.arange(8 * 2**20, dtype=torch.float32)}
    io = AtomicCheckpointIO()
    tracemalloc.start()
    try:
        io.save_checkpoint(checkpoint, tmp_path / "last.ckpt")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, f"saving held {peak / 2**20:.1f} MiB of Python memory for a 32 MiB checkpoint"
    loaded = io.load_checkpoint(tmp_path / "last.ckpt")
    assert loaded["step"] == 3 and torch.equal(loaded["w"], checkpoint["w"])


def test_file_url_is_written_to_its_local_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ckpts").mkdir()
    AtomicCheckpointIO().save_checkpoint({"step": 4}, f"file://{tmp_path}/ckpts/last.ckpt")
    assert torch.load(tmp_path / "ckpts" / "last.ckpt")["step"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpts"]  # no relative "file:" folder
    assert [p.name for p in (tmp_path / "ckpts").iterdir()] == ["last.ckpt"]


def test_storage_options_are_rejected_as_by_lightnings_writer(tmp_path):
    with pytest.raises(TypeError, match="storage_options"):
        AtomicCheckpointIO().save_checkpoint({"step": 1}, tmp_path / "x.ckpt", storage_options={"a": 1})
    assert list(tmp_path.iterdir()) == []


def test_cli_installs_it_by_default(tmp_path):
    from splade_lightning.tools.lightning_cli import SpladeCLI

    cli = SpladeCLI(run=False, args=["--model=splade_lightning.systems.SpladeModule",
                                     "--model.encoder=splade_lightning.models.SpladeEncoder",
                                     "--data=splade_lightning.data.RetrievalDataModule",
                                     f"--trainer.default_root_dir={tmp_path}"])
    assert isinstance(cli.trainer.strategy.checkpoint_io, AtomicCheckpointIO)


def test_checkpoint_problem_finds_truncated_and_flipped_files(tmp_path):
    from splade_lightning.tools.ckpt_path import checkpoint_problem

    good = tmp_path / "good.ckpt"
    torch.save({"w": torch.arange(1000.0)}, good)
    assert checkpoint_problem(good) is None
    truncated = tmp_path / "truncated.ckpt"
    truncated.write_bytes(good.read_bytes()[:2000])
    assert "central directory" in checkpoint_problem(truncated)
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped = tmp_path / "flipped.ckpt"
    flipped.write_bytes(bytes(data))
    assert "CRC" in checkpoint_problem(flipped)
    (tmp_path / "empty.ckpt").write_bytes(b"")
    assert checkpoint_problem(tmp_path / "empty.ckpt") is not None


def test_resolve_falls_back_past_a_link_to_the_bad_file(tmp_path):
    import os
    import time

    from splade_lightning.errors import ConfigError
    from splade_lightning.tools.ckpt_path import resolve_ckpt_path

    torch.save({"step": 1}, tmp_path / "step=1.ckpt")
    time.sleep(0.01)
    (tmp_path / "step=2.ckpt").write_bytes(b"PK\x03\x04 half")
    os.symlink("step=2.ckpt", tmp_path / "last.ckpt")
    with pytest.warns(UserWarning, match="resuming from .*step=1.ckpt"):
        assert resolve_ckpt_path(str(tmp_path / "last.ckpt"), None) == str(tmp_path / "step=1.ckpt")
    with pytest.raises(ConfigError, match="cannot be loaded"):
        resolve_ckpt_path(str(tmp_path / "step=2.ckpt"), None, fallback=False)
    with pytest.raises(ConfigError, match="no such checkpoint file"):
        resolve_ckpt_path(str(tmp_path / "nope.ckpt"), None)
    assert resolve_ckpt_path("best", None) == "best" and resolve_ckpt_path(None, None) is None
