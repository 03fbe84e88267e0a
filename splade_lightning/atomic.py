"""Atomic file writes: readers see the old file or the new one, never a partial file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import ConfigError


def _default_mode() -> int:
    """The permissions a plain ``open(path, "w")`` would give (0o666 minus the umask); mkstemp uses 0o600."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; when the block succeeds the file is fsynced, given the usual
    permissions and ``os.replace``d onto ``path``; when it fails the temporary file is removed and ``path`` is
    untouched. Missing parent directories are created.

    Example::

        with atomic_path("out.jsonl") as tmp:
            tmp.write_text(...)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, _default_mode())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def check_output_file(path: Path, flag: str, expected: str) -> None:
    """Raise a :class:`ConfigError` unless ``path`` can be written as a file: not a directory, and its nearest
    existing ancestor a writable directory (checked before any expensive work).

    Args:
        path: the file to write.
        flag: the command-line flag that named it (e.g. ``--out``), for the message.
        expected: what the file is, e.g. ``"the idf.json file to write"``.
    """
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a directory; expected the path of {expected}")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{flag} {path}: cannot create a directory under {parent}, which is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: directory {parent} is not writable")
