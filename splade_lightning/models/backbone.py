"""Load a HF masked-language-model backbone from an alias, a local directory, a hub id or a bare config."""

from __future__ import annotations

import os

import torch

from ..errors import ConfigError
from ..hub import ALIASES, resolve_model_path


def load_mlm(name_or_path: str | os.PathLike, config: dict | None = None) -> torch.nn.Module:
    """Load ``AutoModelForMaskedLM``.

    Args:
        name_or_path: an offline alias (``splade-tiny``), a local HF model directory, or a hub id.
        config: if given, a ``config.json`` dict: the model is built from it with fresh weights (the caller loads a
            state dict afterwards, e.g. from a Lightning checkpoint), and ``name_or_path`` is not read.

    Returns:
        A ``PreTrainedModel`` whose forward returns ``logits`` of shape (B, L, V).

    Raises:
        ConfigError: the model cannot be found or is not a masked-LM architecture.
    """
    from transformers import AutoModelForMaskedLM

    return load_hf_model(AutoModelForMaskedLM, name_or_path, config,
                         "a masked-LM model", "config.json + weights of a *ForMaskedLM model")


def load_encoder(name_or_path: str | os.PathLike, config: dict | None = None) -> torch.nn.Module:
    """Load a HF encoder body with ``transformers.AutoModel`` (no task head).

    Args:
        name_or_path: an offline alias (``all-minilm-l6-v2``), a local HF model directory, or a hub id. A
            sentence-transformers directory works too: its root holds the HF weights.
        config: if given, a ``config.json`` dict (with ``model_type``): the model is built from it with fresh
            weights (the caller loads a state dict afterwards), and ``name_or_path`` is not read.

    Returns:
        A ``PreTrainedModel`` whose forward returns ``last_hidden_state`` of shape (B, L, H).

    Raises:
        ConfigError: the model cannot be found or loaded.
    """
    from transformers import AutoModel

    return load_hf_model(AutoModel, name_or_path, config, "an encoder model", "config.json + weights of a HF encoder")


def load_hf_model(auto_class, name_or_path: str | os.PathLike, config: dict | None, what: str,
                  expected_files: str) -> torch.nn.Module:
    """``auto_class.from_pretrained`` on an alias / directory / hub id, or ``from_config`` on a config dict; load
    failures become a ConfigError naming the backbone."""
    from transformers import AutoConfig
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-tensor "Loading weights" bars drown Lightning's progress output
    if config is not None:
        return auto_class.from_config(AutoConfig.for_model(**config))
    path = resolve_model_path(name_or_path)
    try:
        return auto_class.from_pretrained(path)
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(
            f"backbone {str(name_or_path)!r}: cannot load {what} from it; expected an alias {sorted(ALIASES)}, a "
            f"local directory with {expected_files}, or a reachable HF hub id ({type(e).__name__}: {e})"
        ) from e


def vocab_size_of(mlm: torch.nn.Module) -> int:
    """Output width V of the MLM head (rows of the output embedding; may exceed ``len(tokenizer)``)."""
    out = mlm.get_output_embeddings()
    if out is None:
        return int(mlm.config.vocab_size)
    return int(out.weight.shape[0])
