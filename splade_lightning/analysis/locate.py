"""Find the repository root and the newest exported model of a run directory (for notebook defaults)."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["find_repo_root", "latest_exported_model", "resolve_model_name"]


def find_repo_root(start: str | Path = ".") -> Path:
    """The nearest directory at or above ``start`` that holds ``pyproject.toml`` (``start`` itself when none does),
    so that notebooks resolve ``data/...`` and ``runs/...`` whether they run from the repo root or ``notebooks/``."""
    start = Path(start).resolve()
    for path in (start, *start.parents):
        if (path / "pyproject.toml").is_file():
            return path
    return start


def _version(path: Path) -> tuple[int, str]:
    match = re.search(r"version_(\d+)", str(path))
    return (int(match.group(1)) if match else -1, str(path))


def latest_exported_model(run_dir: str | Path) -> Path | None:
    """The ``model`` directory (holding ``config.json``) written by ``fit`` under ``run_dir`` with the highest
    ``version_N`` (e.g. ``runs/quickstart/csv/version_3/model``), or None when there is none."""
    root = Path(run_dir)
    if not root.is_dir():
        return None
    models = [p.parent for p in root.rglob("model/config.json")]
    return max(models, key=_version) if models else None


def resolve_model_name(name: str | Path, root: str | Path) -> str:
    """``root / name`` when that path exists (a model directory or ``.ckpt`` given relative to the repository), else
    ``name`` unchanged (an absolute path, an alias such as ``splade-tiny``, or a HF hub id)."""
    candidate = Path(root) / name
    return str(candidate) if not Path(name).is_absolute() and candidate.exists() else str(name)
