"""The manifest every directory output carries (:data:`MANIFEST`): who wrote it, what it was built from
(a fingerprint, for resumable outputs), and the files it wrote with their sizes and sha256. It is what lets
:mod:`splade_lightning.formats.outputs` replace or remove an earlier output's own files and nothing else.
Pure Python: no torch, no Lightning.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from splade_lightning.formats.atomic import write_text_atomic
from splade_lightning.formats.fingerprints import file_digest

__all__ = ["MANIFEST", "MANIFEST_FORMAT", "edited", "files_in", "foreign_files", "owned", "read_manifest",
           "write_manifest"]

#: the file every directory output carries: who wrote it, what it was built from, and the files it wrote
MANIFEST = "splade_lightning.manifest.json"
MANIFEST_FORMAT = 1


def read_manifest(directory: str | os.PathLike) -> dict | None:
    """The manifest of a directory, or None when it has none (or one that is not ours)."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("written_by") != "splade_lightning":
        return None
    return manifest


def write_manifest(directory: str | os.PathLike, tool: str, fingerprint: Mapping | None = None,
                   complete: bool = True, files: Mapping[str, dict | None] | None = None,
                   owned_dirs: Sequence[str] = ()) -> Path:
    """Write :data:`MANIFEST` into ``directory`` (atomically).

    Args:
        directory: the output directory.
        tool: the command that wrote it (``export``, ``index``, ``save``, ...).
        fingerprint: what the output was built from (resumable outputs; :mod:`splade_lightning.formats.fingerprints`).
        complete: False while a resumable output is being built.
        files: relative path -> ``{"size", "sha256"}`` (or None: written later, not checked); default: every
            file now in ``directory``, hashed.
        owned_dirs: sub-directories whose whole content belongs to the output (caches); ``"."``: all of
            ``directory`` (a run directory whose every file the tool's own subprocess wrote).
    """
    from splade_lightning._version import __version__

    directory = Path(directory)
    if files is None:
        files = {rel: {"size": p.stat().st_size, "sha256": file_digest(p)} for rel, p in files_in(directory).items()
                 if rel != MANIFEST}
    manifest = {"written_by": "splade_lightning", "format": MANIFEST_FORMAT, "version": __version__, "tool": tool,
                "complete": complete, "fingerprint": dict(fingerprint) if fingerprint is not None else None,
                "files": dict(sorted(files.items())), "owned_dirs": sorted(owned_dirs)}
    return write_text_atomic(directory / MANIFEST, json.dumps(manifest, indent=1) + "\n")


def files_in(directory: Path) -> dict[str, Path]:
    """Every file (and symlink) below ``directory``, by its relative POSIX path, in path order."""
    return {p.relative_to(directory).as_posix(): p for p in sorted(directory.rglob("*"))
            if p.is_file() or p.is_symlink()}


def owned(rel: str, manifest: dict) -> bool:
    """Whether ``rel`` is the manifest, a file it lists, inside a directory it owns, or the temporary file an
    interrupted atomic write of one of those left (``.<name>.<random>.tmp``, see :func:`atomic_path`)."""
    path = Path(rel)
    if path.name.startswith(".") and path.name.endswith(".tmp") and "." in path.name[1:-4]:
        rel = (path.parent / path.name[1:-4].rsplit(".", 1)[0]).as_posix()
    return rel == MANIFEST or rel in manifest.get("files", {}) or any(
        d == "." or rel.startswith(d.rstrip("/") + "/") for d in manifest.get("owned_dirs", ()))


def edited(path: Path, record: dict | None) -> bool:
    """Whether a listed file differs from what was written (size, then sha256); unrecorded files are not checked."""
    return bool(record) and not path.is_symlink() and (path.stat().st_size != record.get("size")
                                                       or file_digest(path) != record.get("sha256"))


def foreign_files(directory: str | os.PathLike, manifest: dict) -> list[str]:
    """Files in ``directory`` the manifest does not list, or that changed since they were written (size or
    sha256), in path order."""
    foreign = []
    for rel, path in files_in(Path(directory)).items():
        if not owned(rel, manifest):
            foreign.append(rel)
        elif edited(path, manifest.get("files", {}).get(rel)):
            foreign.append(f"{rel} (edited since it was written)")
    return foreign
