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
    from transformers import AutoConfig, AutoModelForMaskedLM
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-tensor "Loading weights" bars drown Lightning's progress output
    if config is not None:
        cfg = AutoConfig.for_model(**config)
        return AutoModelForMaskedLM.from_config(cfg)
    path = resolve_model_path(name_or_path)
    try:
        return AutoModelForMaskedLM.from_pretrained(path)
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(
            f"backbone {str(name_or_path)!r}: cannot load a masked-LM model from it; expected an alias "
            f"{sorted(ALIASES)}, a local directory with config.json + weights of a *ForMaskedLM model, or a "
            f"reachable HF hub id ({type(e).__name__}: {e})"
        ) from e


def vocab_size_of(mlm: torch.nn.Module) -> int:
    """Output width V of the MLM head (rows of the output embedding; may exceed ``len(tokenizer)``)."""
    out = mlm.get_output_embeddings()
    if out is None:
        return int(mlm.config.vocab_size)
    return int(out.weight.shape[0])
