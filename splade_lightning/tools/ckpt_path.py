"""Resolve ``--ckpt_path`` before a run: ``last`` across the logger's version directories, and a fallback past
damaged checkpoint files.

Lightning 2.6 (``trainer/connectors/checkpoint_connector.py: _parse_ckpt_path``) resolves ``last`` to the newest
``last*.ckpt`` in the ModelCheckpoint directory of the *current* run; with a versioned logger (CSV, TensorBoard) a
new process writes to ``version_<N+1>/checkpoints``, which is empty, so ``--ckpt_path last`` would silently start
from scratch. And a truncated or corrupt file fails deep inside ``torch.load`` with an unpickling error. Here
``last`` looks in every version directory of the logger, and a damaged ``last`` file is replaced by the newest
loadable checkpoint of the same directory, with a warning naming both, or a
:class:`~splade_lightning.errors.ConfigError` listing every file and its problem when none loads. An explicit file
that cannot be loaded is an error: resuming from another file than the one named would report another model's
results.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import lightning.pytorch as pl
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.utilities.model_registry import _is_registry

from splade_lightning.errors import ConfigError
from splade_lightning.serialization.checkpoint import checkpoint_problem

SUFFIX = ".ckpt"


def newest_first(paths: Iterable[Path]) -> list[Path]:
    """Existing files, newest modification time first (the order Lightning uses for ``last``)."""
    found = {path for path in paths if path.is_file()}
    return sorted(found, key=lambda p: (p.stat().st_mtime_ns, p.name), reverse=True)


def checkpoint_dirs(trainer: pl.Trainer) -> list[Path]:
    """Directories the trainer's ModelCheckpoint callbacks write to, in this run or an earlier one: each explicit
    ``dirpath``; for callbacks without one, ``<save_dir>/<name>/*/checkpoints`` of the first logger (every version)
    or ``<default_root_dir>/checkpoints`` without a logger (``ModelCheckpoint.__resolve_ckpt_dir``)."""
    callbacks = [cb for cb in trainer.checkpoint_callbacks if isinstance(cb, ModelCheckpoint)]
    dirs = [Path(cb.dirpath) for cb in callbacks if cb.dirpath and _is_local_file_protocol(str(cb.dirpath))]
    if any(not cb.dirpath for cb in callbacks):
        if trainer.loggers:
            logger = trainer.loggers[0]
            save_dir = logger.save_dir or trainer.default_root_dir
            if _is_local_file_protocol(str(save_dir)):
                dirs += sorted(Path(save_dir, str(logger.name or "")).glob("*/checkpoints"))
        else:
            dirs.append(Path(trainer.default_root_dir, "checkpoints"))
    return list(dict.fromkeys(dirs))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:
        return False


def _first_loadable(wanted: Path, problem: str, requested: str) -> Path:
    """The newest loadable checkpoint in ``wanted``'s directory other than ``wanted`` (or a link to it)."""
    bad = {wanted: problem}
    for candidate in newest_first(wanted.parent.glob(f"*{SUFFIX}")):
        if candidate == wanted or _same_file(candidate, wanted):
            continue
        reason = checkpoint_problem(candidate)
        if reason is None:
            skipped = "; ".join(f"{path} ({why})" for path, why in bad.items())
            rank_zero_warn(f"--ckpt_path {requested}: cannot load {skipped}; resuming from {candidate} instead, the "
                           f"newest loadable checkpoint in {wanted.parent}")
            return candidate
        bad[candidate] = reason
    listing = "\n  ".join(f"{path.name}: {why}" for path, why in bad.items())
    raise ConfigError(f"--ckpt_path {requested}: no loadable checkpoint in {wanted.parent}; expected at least one "
                      f"complete .ckpt file, found:\n  {listing}")


def _newest_last(trainer: pl.Trainer) -> Path | None:
    dirs = checkpoint_dirs(trainer)
    lasts = newest_first(p for d in dirs for p in d.glob(f"last*{SUFFIX}"))
    if lasts:
        return lasts[0]
    others = newest_first(p for d in dirs for p in d.glob(f"*{SUFFIX}"))
    if others:  # e.g. killed between removing the old last.ckpt link and creating the new one
        rank_zero_warn(f"--ckpt_path last: no last*.ckpt under {', '.join(map(str, dirs))}; using the newest "
                       f"checkpoint, {others[0]}")
        return others[0]
    rank_zero_warn(f"--ckpt_path last: no checkpoint under {', '.join(map(str, dirs)) or '(no checkpoint directory)'}"
                   "; starting from scratch")
    return None


def resolve_ckpt_path(requested: str | None, trainer: pl.Trainer | None, fallback: bool = True) -> str | None:
    """The checkpoint file a run should load for ``--ckpt_path requested``.

    Args:
        requested: ``None``, ``"last"``, a file path, or another Lightning value (``"best"``, ``"hpc"``, a remote
            URL, a registry name), which is returned unchanged.
        trainer: the run's trainer (its ModelCheckpoint callbacks and logger say where checkpoints are); needed
            only for ``"last"``.
        fallback: replace a damaged file by the newest loadable one in its directory (with a warning); ``"last"``
            always falls back, and the CLI passes False for an explicit file.

    Returns:
        A local file path, ``requested`` unchanged, or ``None`` for ``"last"`` when no checkpoint exists yet (so
        ``--ckpt_path last`` can be set from the first run on).

    Raises:
        ConfigError: the file does not exist, or it (and, with fallback, every checkpoint beside it) cannot be loaded.
    """
    if requested is None or requested in ("best", "hpc") or _is_registry(str(requested)):
        return requested
    if not _is_local_file_protocol(str(requested)):
        return requested
    if requested == "last":
        if trainer is None:
            raise ValueError("resolving --ckpt_path last needs the trainer")
        wanted = _newest_last(trainer)
        if wanted is None:
            return None
    else:
        wanted = Path(requested)
        if not wanted.is_file():
            raise ConfigError(f"--ckpt_path {requested}: no such checkpoint file")
    problem = checkpoint_problem(wanted)
    if problem is None:
        return str(wanted)
    if not fallback and requested != "last":
        raise ConfigError(f"--ckpt_path {requested}: the checkpoint cannot be loaded ({problem}); expected a complete "
                          "checkpoint file written by Lightning")
    return str(_first_loadable(wanted, problem, requested))
