"""Atomic checkpoint writes: a crash mid-save never leaves a truncated ``.ckpt`` behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from lightning.fabric.utilities.cloud_io import _atomic_save, get_filesystem
from lightning.pytorch.plugins.io import TorchCheckpointIO


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` that writes to a temporary file in the target directory, fsyncs it and ``os.replace``s
    it over the target, so ``last.ckpt`` is always either the old or the new complete checkpoint.

    Remote (fsspec) paths fall back to Lightning's default writer.
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        protocol = get_filesystem(path).protocol
        if "file" not in (protocol if isinstance(protocol, tuple) else (protocol,)):
            return super().save_checkpoint(checkpoint, path, storage_options)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        os.close(fd)
        try:
            _atomic_save(checkpoint, tmp)
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
