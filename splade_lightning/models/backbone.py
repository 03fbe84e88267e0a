"""Load a HF masked-language-model backbone from an alias, a local directory, a hub id or a bare config."""

from __future__ import annotations

import os

import torch

from splade_lightning.errors import ConfigError
from splade_lightning.hub import ALIASES, resolve_model_path


def load_mlm(name_or_path: str | os.PathLike, config: dict | None = None) -> torch.nn.Module:
    """Load ``AutoModelForMaskedLM``.

    Args:
        name_or_path: an offline alias (``splade-tiny``), a local HF model directory, or a hub id.
        config: if given, a ``config.json`` dict: the model is built from it with fresh weights (the caller loads a
            state dict afterwards, e.g. from a Lightning checkpoint), and ``name_or_path`` is not read.

    Returns:
        A ``PreTrainedModel`` whose forward returns ``logits`` of shape (B, L, V).

    Raises:
        ConfigError: the model cannot be found, is not a masked-LM architecture, or has no trained MLM head (a dense
            encoder such as all-MiniLM-L6-v2 would get a randomly initialised one).
    """
    from transformers import AutoModelForMaskedLM

    model, missing = load_hf_model(AutoModelForMaskedLM, name_or_path, config, "a masked-LM model",
                                   "config.json + weights of a *ForMaskedLM model", loading_info=True)
    prefix = f"{getattr(model, 'base_model_prefix', '')}."
    head = sorted(key for key in missing if not key.startswith(prefix))
    if head:
        shown = ", ".join(head[:4]) + (f" and {len(head) - 4} more" if len(head) > 4 else "")
        raise ConfigError(
            f"backbone {str(name_or_path)!r} has no masked-language-model head (its checkpoint lacks {shown}; it was "
            f"saved as {getattr(model.config, 'architectures', None) or 'an unknown architecture'}), so it cannot be "
            "a SPLADE model or the document side of an inference-free one: their term weights come from that head. "
            "A dense encoder like this one can be loaded as the backbone of a CSR model (DenseEncoder + "
            "SparseAutoEncoder, configs/csr/) or as a dense teacher of `score` (dense:NAME)")
    return model


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
                  expected_files: str, loading_info: bool = False):
    """``auto_class.from_pretrained`` on an alias / directory / hub id, or ``from_config`` on a config dict; load
    failures become a ConfigError naming the backbone.

    Returns:
        The model; with ``loading_info``, ``(model, missing state-dict keys)`` (none for ``config``).
    """
    from transformers import AutoConfig
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-tensor "Loading weights" bars drown Lightning's progress output
    if config is not None:
        model = auto_class.from_config(AutoConfig.for_model(**config))
        return (model, set()) if loading_info else model
    path = resolve_model_path(name_or_path)
    try:
        if not loading_info:
            return auto_class.from_pretrained(path)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the missing-key report is ours to give, as an error
        try:
            model, info = auto_class.from_pretrained(path, output_loading_info=True)
        finally:
            hf_logging.set_verbosity(verbosity)
        return model, set(info.get("missing_keys", ()))
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
