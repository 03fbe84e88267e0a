"""The architecture registry: the one place that maps an architecture name (``splade``, ``inference_free``,
``router``, ``csr``, as recorded by ``encoder.export_config()``) to how it is rebuilt from a checkpoint, loaded from a
model directory, and which export formats can hold it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from splade_lightning.errors import ConfigError
from splade_lightning.serialization import checkpoint as ckpt
from splade_lightning.serialization import model_dir
from splade_lightning.serialization.onnx_dir import is_onnx_source, load_onnx
from splade_lightning.serialization.st_csr import load_csr_encoder
from splade_lightning.serialization.st_router import is_st_router_dir, load_st_router
from splade_lightning.serialization.st_routes import is_query_document_layout, load_st_routes

__all__ = ["ARCHITECTURES", "EXPORT_FORMATS", "Architecture", "architecture", "encoder_from_checkpoint",
           "load_encoder_dir"]

#: every export format of ``splade-lightning export``
EXPORT_FORMATS = ("sentence-transformers", "opensearch", "anserini", "onnx", "qdrant")


@dataclass(frozen=True)
class Architecture:
    """How one architecture is persisted.

    Attributes:
        name: the ``architecture`` value of ``export_config()``.
        from_checkpoint: ``(encoder settings, checkpoint payload) -> encoder`` with fresh weights.
        from_dir: ``(name or path, settings, idf.json or None) -> encoder`` with the directory's weights.
        export_formats: the ``export --format`` values that can hold it.
    """

    name: str
    from_checkpoint: Callable[[dict, dict], nn.Module]
    from_dir: Callable[[str, dict, Path | None], nn.Module]
    export_formats: tuple[str, ...]


ARCHITECTURES = {a.name: a for a in (
    Architecture("splade", ckpt.splade_from_checkpoint, model_dir.splade_from_dir, EXPORT_FORMATS),
    Architecture("inference_free", ckpt.inference_free_from_checkpoint, model_dir.inference_free_from_dir,
                 EXPORT_FORMATS),
    Architecture("router", ckpt.router_from_checkpoint, lambda name, settings, idf: load_st_routes(Path(name))[0],
                 ("sentence-transformers", "anserini", "qdrant")),
    Architecture("csr", ckpt.csr_from_checkpoint, lambda name, settings, idf: load_csr_encoder(Path(name)),
                 tuple(f for f in EXPORT_FORMATS if f not in ("opensearch", "onnx"))),
)}


def architecture(name: object, source: str) -> Architecture:
    """The registry entry of ``name``.

    Raises:
        ConfigError: an architecture this version does not know, naming ``source`` and the known ones.
    """
    if name not in ARCHITECTURES:
        raise ConfigError(f"{source}: holds a {name!r} model; this version loads {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def encoder_from_checkpoint(checkpoint: dict) -> tuple[nn.Module, object]:
    """Rebuild (encoder, tokenizer) from a loaded Lightning checkpoint dict written by our modules."""
    payload = checkpoint.get("splade_lightning")
    if payload is None:
        raise ConfigError("this Lightning checkpoint was not written by a splade_lightning module (no "
                          "'splade_lightning' entry); load it with the LightningModule class that wrote it")
    settings = payload["encoder"]
    encoder = architecture(settings.get("architecture"), "the checkpoint").from_checkpoint(settings, payload)
    prefix = payload["state_dict_prefix"]
    state = {k[len(prefix):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    encoder.load_state_dict(state, strict=True)
    return encoder, ckpt.load_tokenizer_files(payload["tokenizer_files"])


def load_encoder_dir(name_or_path: str) -> tuple[nn.Module, object, dict]:
    """Load (encoder, tokenizer, settings) from an alias, a model directory or a hub id: ours (an ONNX export
    included, or one of its ``.onnx`` files), OpenSearch's (an MLM with ``idf.json``: an inference-free model), or
    sentence-transformers' (SPLADE, Router, CSR). ``settings["prompts"]`` holds the model's prompts
    (:func:`~splade_lightning.serialization.model_dir.read_prompts`)."""
    from splade_lightning.hub import load_tokenizer, resolve_model_path

    local = Path(resolve_model_path(name_or_path))
    if is_onnx_source(local):
        prompts = model_dir.read_prompts(local if local.is_dir() else local.parent)  # bad prompts: before loading
        encoder, tokenizer_dir, settings = load_onnx(local)
        return encoder, load_tokenizer(tokenizer_dir), {**settings, "prompts": prompts}
    if local.is_dir() and is_st_router_dir(local):
        prompts = model_dir.read_prompts(local)
        loader = load_st_router if is_query_document_layout(local) else load_st_routes  # any route names
        encoder, tokenizer_dir, settings = loader(local)
        return encoder, load_tokenizer(tokenizer_dir), {**settings, "prompts": prompts}
    path, settings, idf_file = model_dir.locate_dir(name_or_path)
    settings = {**settings, "prompts": model_dir.read_prompts(path)}
    entry = architecture(settings.get("architecture", "splade"), str(name_or_path))
    encoder = entry.from_dir(str(path) if entry.name == "csr" else str(name_or_path), settings, idf_file)
    return encoder, load_tokenizer(encoder.tokenizer_name_or_path if entry.name == "csr" else name_or_path), settings
