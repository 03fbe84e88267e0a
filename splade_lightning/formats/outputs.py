"""The output policy of every tool, of :meth:`SparseModel.save` and of the ablation runner: what may be written where.

The rules (user-facing text: ``docs/your_files_are_safe.md``):

1. **No directory this program did not write is ever deleted, nor any file in it.** A directory output is written
   when it is new or empty. An existing one is replaced only when splade_lightning wrote it (it holds
   :data:`MANIFEST`, listing the files it wrote, with their sizes and sha256) *and* ``overwrite`` is given; then only
   the files the manifest lists go. A non-empty directory without a manifest, or one that also holds files the
   manifest does not list (or that were edited since), is refused, naming a few of those files.
2. **No output may destroy an input.** An output that is an input, lies in a part of an input directory that the
   command reads, or contains an input, is refused before any work; paths are compared after resolving symlinks.
3. An existing output *file* is replaced only with ``overwrite`` (resumable outputs resume instead, when their
   fingerprint matches: see :mod:`splade_lightning.formats.fingerprints`).
4. Files and directories get the permissions the user's umask gives, as ``open(..., "w")`` and ``mkdir`` do.

Everything here raises :class:`~splade_lightning.errors.ConfigError` (exit status 2 on the command line) and is
meant to be called before any expensive work. Pure Python: no torch, no Lightning.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from splade_lightning.errors import ConfigError
from splade_lightning.formats.atomic import default_mode
from splade_lightning.formats.manifest import (
    MANIFEST,
    edited,
    files_in,
    foreign_files,
    owned,
    read_manifest,
    write_manifest,
)

_SHOWN = 5  # foreign files named in a refusal

DirState = Literal["new", "empty", "ours"]


@dataclass(frozen=True)
class Input:
    """A path a command reads.

    Attributes:
        path: the file or directory, as given.
        flag: what named it (``--corpus``, ``config data.init_args.train_path``), for messages.
        reads: for a directory, the parts the command reads (relative paths, e.g. ``("corpus.jsonl", "qrels")``);
            ``None``: all of it (a model directory, an index).
    """

    path: str | os.PathLike
    flag: str
    reads: tuple[str, ...] | None = None


def _resolved(path: str | os.PathLike) -> Path:
    return Path(os.path.abspath(Path(path).expanduser())).resolve()


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def _same(a: Path, b: Path) -> bool:
    try:
        return a == b or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return a == b


def check_not_input(output: str | os.PathLike, flag: str, inputs: Sequence[Input]) -> None:
    """Refuse an output that is an input, lies in a read part of an input directory, or contains an input.

    A new file or directory beside the data (``idf.json`` in a BEIR folder) is allowed; inputs that do not exist on
    disk (hub ids) are skipped.

    Raises:
        ConfigError: naming both paths and the flags that gave them.
    """
    out = _resolved(output)
    problems = []
    for given in inputs:
        if given.path is None or not Path(given.path).exists():
            continue
        inp = _resolved(given.path)
        where = f"{given.flag} {given.path}"
        if _same(out, inp):
            problems.append(f"{flag} {output} is {where}, an input of this command")
        elif _within(inp, out):
            problems.append(f"{flag} {output} contains {where}, an input of this command")
        elif _within(out, inp) and inp.is_dir():
            read = [inp / part for part in given.reads] if given.reads is not None else None
            if read is None and out.exists():
                problems.append(f"{flag} {output} is inside {where}, an input directory this command reads")
            for part in read or ():
                if _within(out, part.resolve()) or _within(part.resolve(), out):
                    problems.append(f"{flag} {output} is {part}, which this command reads from {where}")
    if problems:
        raise ConfigError("; ".join(dict.fromkeys(problems)) + f". Nothing was written: choose a {flag} that is "
                          "neither an input, nor inside the part of an input that is read, nor around one.")


def _check_not_cwd(path: Path, flag: str) -> None:
    if _within(_resolved(Path.cwd()), _resolved(path)):
        raise ConfigError(f"{flag} {path} is the current directory or one of its parents; expected a directory "
                          "of its own for the output (e.g. a new sub-directory)")


def check_file_output(path: str | os.PathLike, flag: str, overwrite: bool, what: str = "the file to write",
                      inputs: Sequence[Input] = ()) -> bool:
    """Check a file output before any work: not an input (:func:`check_not_input`), not a directory, an existing
    file only with ``overwrite``, and a writable place.

    Args:
        path: the file to write.
        flag: the flag that named it.
        overwrite: whether an existing file may be replaced.
        what: what the file is, for messages.
        inputs: the command's inputs.

    Returns:
        Whether the file exists (and will be replaced).
    """
    path = Path(path)
    check_not_input(path, flag, inputs)
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a directory; expected the path of {what}")
    exists = path.exists() or path.is_symlink()
    if exists and not overwrite:
        raise ConfigError(f"{flag} {path} exists; pass --overwrite to replace it, or choose another path "
                          f"(expected the path of {what})")
    _check_writable_parent(path, flag)
    return exists


def _check_writable_parent(path: Path, flag: str) -> None:
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{flag} {path}: cannot create a directory under {parent}, which is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: directory {parent} is not writable")


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


# --- directory outputs -------------------------------------------------------------------------------------------

def dir_output_state(path: str | os.PathLike, flag: str) -> tuple[DirState, dict | None]:
    """What is at a directory output: ``new`` (nothing), ``empty``, or ``ours`` (a complete manifest, no foreign
    files), with the manifest.

    Raises:
        ConfigError: the path is a file, the current directory (or a parent of it), or a non-empty directory that
            splade_lightning did not write or that holds files it did not write.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{flag} {path} is a file; expected a directory to write into")
    if not path.exists():
        _check_writable_parent(path, flag)
        return "new", None
    _check_not_cwd(path, flag)
    if not any(path.iterdir()):
        return "empty", None
    manifest = read_manifest(path)
    if manifest is None:
        names = sorted(p.name + ("/" if p.is_dir() else "") for p in path.iterdir())  # its top level
        raise ConfigError(f"{flag} {path} is not empty and was not written by splade_lightning (it has no "
                          f"{MANIFEST}); it holds {_listing(names)}. Nothing was written or deleted: choose a new or "
                          "empty directory (--overwrite only replaces directories splade_lightning wrote)")
    foreign = foreign_files(path, manifest)
    if foreign:
        raise ConfigError(f"{flag} {path} was written by splade_lightning `{manifest.get('tool')}` but also holds "
                          f"files it did not write: {_listing(foreign)}. Nothing was written or deleted: move those "
                          "files away, or choose another directory")
    return "ours", manifest


def check_dir_output(path: str | os.PathLike, flag: str, overwrite: bool, inputs: Sequence[Input] = ()) -> DirState:
    """Check a directory output before any work: :func:`check_not_input`, :func:`dir_output_state`, and an earlier
    output of ours only with ``overwrite``.

    Returns:
        The directory's state.
    """
    check_not_input(path, flag, inputs)
    state, manifest = dir_output_state(path, flag)
    if state == "ours" and not overwrite:
        raise ConfigError(f"{flag} {path} holds an earlier output of splade_lightning `{manifest.get('tool')}`; pass "
                          "--overwrite to replace it (only the files it lists in "
                          f"{MANIFEST} are removed), or choose another directory")
    return state


def remove_owned(directory: str | os.PathLike, manifest: dict | None = None) -> None:
    """Delete what a manifest owns (the files it lists, what is inside its owned sub-directories, leftovers of
    interrupted atomic writes, the manifest), then the directories left empty, ``directory`` included. Anything else
    stays, with a warning."""
    directory = Path(directory)
    manifest = manifest if manifest is not None else read_manifest(directory) or {}
    for rel, path in files_in(directory).items():
        if owned(rel, manifest) and rel != MANIFEST and not edited(path, manifest.get("files", {}).get(rel)):
            path.unlink()
    (directory / MANIFEST).unlink(missing_ok=True)  # last: an interrupted clean-up stays recognisable
    for sub in sorted((p for p in directory.rglob("*") if p.is_dir() and not p.is_symlink()), reverse=True):
        if not any(sub.iterdir()):
            sub.rmdir()
    if any(directory.iterdir()):
        warnings.warn(f"{directory}: kept files splade_lightning did not write: "
                      f"{_listing(sorted(files_in(directory)))}", stacklevel=2)
    else:
        directory.rmdir()


def apply_umask(directory: Path) -> None:
    """Give ``directory`` and everything in it the permissions ``mkdir`` / ``open(..., "w")`` give under the umask
    (``tempfile`` creates 0700 directories and 0600 files)."""
    file_mode = default_mode()
    dir_mode = file_mode | ((file_mode & 0o444) >> 2)  # x wherever r: 0o644 -> 0o755
    for path in [directory, *directory.rglob("*")]:
        if path.is_symlink():
            continue
        os.chmod(path, dir_mode if path.is_dir() else file_mode)


def _fsync_tree(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file() and not path.is_symlink():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


@contextmanager
def dir_output(path: str | os.PathLike, flag: str, tool: str, overwrite: bool, inputs: Sequence[Input] = (),
               fingerprint: Mapping | None = None) -> Iterator[Path]:
    """Write a directory output atomically under the policy.

    Yields a temporary directory beside ``path``. When the block succeeds, the manifest is written, permissions
    follow the umask, the files are fsynced, and the directory is renamed into place; an earlier output of ours is
    moved aside and only its own files are deleted. When the block fails, the temporary directory is removed and
    ``path`` is untouched.

    Raises:
        ConfigError: see :func:`check_dir_output` (checked again just before the rename).
    """
    target = Path(path)
    check_dir_output(target, flag, overwrite, inputs)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        yield tmp
        write_manifest(tmp, tool, fingerprint)
        apply_umask(tmp)
        _fsync_tree(tmp)
        state = check_dir_output(target, flag, overwrite, inputs)
        if state == "ours":
            old = tmp.with_name(tmp.name.replace(".tmp-", ".old-", 1))
            os.rename(target, old)
            os.rename(tmp, target)
            remove_owned(old, manifest=read_manifest(old))
        else:
            os.replace(tmp, target)  # rename() replaces an empty directory
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def model_input(name_or_path: str | os.PathLike | None, flag: str) -> Input:
    """The :class:`Input` of a model argument: its local directory or file (an alias resolves to the directory of
    the package that ships it; a hub id has none, and is skipped by the checks)."""
    from splade_lightning.hub import ALIASES, alias_dir

    if name_or_path is not None and str(name_or_path).lower() in ALIASES:
        try:
            return Input(alias_dir(str(name_or_path)), flag)
        except ConfigError:
            pass
    return Input(name_or_path, flag)


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
        if str(key).rsplit(".", 1)[-1] in OUTPUT_KEYS:  # jsonargparse namespaces yield dotted keys
            continue
        if key == "config" and not prefix:
            found += [Input(str(path), "--config") for path in value or () if path is not None]
        elif isinstance(value, str | Path) and value and Path(value).exists():
            found.append(Input(str(value), f"config {name}"))
        elif hasattr(value, "items") or isinstance(value, list | tuple):
            found += config_inputs(value, name)
    return found
