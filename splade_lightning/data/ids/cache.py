"""Cache directories of parsed input files: where they go, what they are keyed on, atomic publication, clean-up.

A cache of a source file is named ``<file name>.<kind>-<path digest>-<state digest>`` inside :func:`cache_root`. The
state digest covers the cache format, the absolute path, size and mtime of the source and anything else the cache
depends on, so an edited source gets a new cache and :func:`remove_stale` deletes the old one. Single-file caches
are written with :func:`~splade_lightning.formats.atomic.atomic_path`, directory caches with
:func:`~splade_lightning.formats.atomic.atomic_dir`, so an interrupted build never leaves a half cache and concurrent
builders (DDP ranks) cannot clash.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

from splade_lightning.errors import DataError

CACHE_FORMAT = 1
CACHE_DIR_NAME = ".splade_lightning_cache"


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/splade_lightning`` (default ``~/.cache/splade_lightning``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "splade_lightning"


def cache_root(source: Path, cache_dir: str | Path | None) -> Path:
    """The directory caches of ``source`` go to: ``cache_dir``, else ``.splade_lightning_cache/`` beside the source,
    else (not writable) :func:`user_cache_dir`."""
    candidates = [Path(cache_dir)] if cache_dir is not None else [source.parent / CACHE_DIR_NAME, user_cache_dir()]
    for root in candidates:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(root, os.W_OK | os.X_OK):
            return root
    raise DataError(f"no writable cache directory (tried {[str(c) for c in candidates]}); set cache_dir",
                    path=source)


def cache_name(source: Path, kind: str, depends_on: Sequence[str] = ()) -> tuple[str, str]:
    """``(prefix, name)`` of the cache of ``source``: the prefix is shared by every version of this source and kind,
    the name adds a digest of (format, absolute path, size, mtime, ``depends_on``)."""
    absolute = str(source.resolve())
    stat = source.stat()
    state = json.dumps([CACHE_FORMAT, kind, absolute, stat.st_size, stat.st_mtime_ns, *depends_on])
    prefix = f"{source.name}.{kind}-{hashlib.sha256(absolute.encode()).hexdigest()[:8]}-"
    return prefix, prefix + hashlib.sha256(state.encode()).hexdigest()[:16]


def remove_stale(root: Path, prefix: str, keep: str, abandoned_after_s: float = 86_400) -> None:
    """Delete older caches of the same source and kind, and temporary build directories of killed builds older than
    ``abandoned_after_s`` (best effort; files still mapped by a reader stay valid for it)."""
    for entry in root.iterdir():
        abandoned = entry.name.startswith(f".{prefix}") and entry.name.endswith(".tmp") and \
            time.time() - entry.stat().st_mtime > abandoned_after_s
        if (entry.name.startswith(prefix) and entry.name != keep) or abandoned:
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
