"""Save and load encoders as HF-style directories, and embed them in Lightning checkpoints.

A saved directory is a plain HF masked-LM directory (``config.json``, ``model.safetensors``, tokenizer files) plus
``splade_lightning.json`` (our encoder settings) and the sentence-transformers SparseEncoder files
(``modules.json``, ``1_SpladePooling/config.json``, ...; anchors.md §3.2, written in the ST5 layout that ST 5 and 6
both load). Directories are written atomically: to a temporary sibling, then renamed into place.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from ..errors import ConfigError
from .splade import SpladeEncoder

META_FILE = "splade_lightning.json"
FORMAT_VERSION = 1


def _tokenizer_files(tokenizer) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        return {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}


def load_tokenizer_files(files: dict[str, bytes]):
    """Rebuild a HF tokenizer from the ``{file name: bytes}`` map stored in a checkpoint."""
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory() as tmp:
        for name, data in files.items():
            Path(tmp, name).write_bytes(data)
        return AutoTokenizer.from_pretrained(tmp)


def checkpoint_payload(encoder: SpladeEncoder, prefix: str = "encoder.", tokenizer=None,
                       max_lengths: dict[str, int] | None = None) -> dict:
    """What a Lightning checkpoint carries so :func:`encoder_from_checkpoint` needs neither the original backbone
    directory nor the hub: encoder settings, the backbone's ``config.json`` and the tokenizer files."""
    if tokenizer is None:
        cached = getattr(encoder, "_tokenizer_files", None)
        if cached is None:
            from ..hub import load_tokenizer

            cached = _tokenizer_files(load_tokenizer(encoder.tokenizer_name_or_path))
            encoder._tokenizer_files = cached
        files = cached
    else:
        files = _tokenizer_files(tokenizer)
    return {"format_version": FORMAT_VERSION, "encoder": encoder.export_config(), "state_dict_prefix": prefix,
            "backbone": encoder.backbone, "backbone_config": encoder.mlm.config.to_dict(), "tokenizer_files": files,
            "max_lengths": dict(max_lengths or {})}


def encoder_from_checkpoint(checkpoint: dict) -> tuple[SpladeEncoder, object]:
    """Rebuild (encoder, tokenizer) from a loaded Lightning checkpoint dict written by our modules."""
    payload = checkpoint.get("splade_lightning")
    if payload is None:
        raise ConfigError("this Lightning checkpoint was not written by a splade_lightning module (no "
                          "'splade_lightning' entry); load it with the LightningModule class that wrote it")
    cfg = payload["encoder"]
    if cfg.get("architecture") != "splade":
        raise ConfigError(f"checkpoint holds a {cfg.get('architecture')!r} model; this version loads 'splade'")
    encoder = SpladeEncoder(payload["backbone"], pooling=cfg["pooling"], activation=cfg["activation"],
                            backbone_config=payload["backbone_config"])
    prefix = payload["state_dict_prefix"]
    state = {k[len(prefix):]: v for k, v in checkpoint["state_dict"].items() if k.startswith(prefix)}
    encoder.load_state_dict(state, strict=True)
    return encoder, load_tokenizer_files(payload["tokenizer_files"])


def _st_files(encoder: SpladeEncoder, max_seq_length: int) -> dict[str, dict | list]:
    pooling = {"pooling_strategy": encoder.pooling, "activation_function": encoder.activation,
               "word_embedding_dimension": encoder.vocab_size}
    return {
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.sparse_encoder.models.MLMTransformer"},
            {"idx": 1, "name": "1", "path": "1_SpladePooling",
             "type": "sentence_transformers.sparse_encoder.models.SpladePooling"},
        ],
        "sentence_bert_config.json": {"max_seq_length": max_seq_length, "do_lower_case": False},
        "1_SpladePooling/config.json": pooling,
        "config_sentence_transformers.json": {
            "model_type": "SparseEncoder", "prompts": {"query": "", "document": ""}, "default_prompt_name": None,
            "similarity_fn_name": "dot"},
    }


def inference_lengths(datamodule: object) -> dict[str, int]:
    """The query/document truncation lengths a model trained with ``datamodule`` should use at inference: its
    ``max_query_length`` and its evaluation document length (``eval_max_doc_length``, else ``max_doc_length``)."""
    lengths = {}
    if hasattr(datamodule, "max_query_length"):
        lengths["max_query_length"] = int(datamodule.max_query_length)
    doc_length = getattr(datamodule, "eval_max_doc_length", None) or getattr(datamodule, "max_doc_length", None)
    if doc_length:
        lengths["max_doc_length"] = int(doc_length)
    return lengths


def replace_dir_atomically(tmp: Path, target: Path) -> None:
    """Move the finished directory ``tmp`` to ``target``, replacing an existing one without a window in which
    ``target`` is half-written."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


def save_encoder(encoder: SpladeEncoder, tokenizer, path: str | os.PathLike, max_query_length: int = 512,
                 max_doc_length: int = 512) -> Path:
    """Write ``encoder`` + ``tokenizer`` as a HF-style directory at ``path`` (atomically).

    Returns:
        The directory path.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        encoder.mlm.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        meta = {"format_version": FORMAT_VERSION, **encoder.export_config(),
                "max_query_length": max_query_length, "max_doc_length": max_doc_length}
        files = {META_FILE: meta, **_st_files(encoder, max_doc_length)}
        for name, content in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(json.dumps(content, indent=2))
        replace_dir_atomically(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def read_dir_settings(path: Path) -> dict:
    """Encoder settings of a model directory: ours (``splade_lightning.json``), a sentence-transformers SparseEncoder
    (``1_SpladePooling/config.json``), or a bare HF MLM directory (SPLADE max/relu, as sentence-transformers
    assumes)."""
    if (path / META_FILE).is_file():
        return json.loads((path / META_FILE).read_text())
    settings: dict = {"architecture": "splade", "pooling": "max", "activation": "relu"}
    pooling_cfg = path / "1_SpladePooling" / "config.json"
    if pooling_cfg.is_file():
        cfg = json.loads(pooling_cfg.read_text())
        settings["pooling"] = cfg.get("pooling_strategy", "max")
        settings["activation"] = cfg.get("activation_function", "relu")
    st_cfg = path / "sentence_bert_config.json"
    if st_cfg.is_file():
        length = json.loads(st_cfg.read_text()).get("max_seq_length")
        if length:
            settings["max_query_length"] = settings["max_doc_length"] = int(length)
    return settings


def load_encoder_dir(name_or_path: str) -> tuple[SpladeEncoder, object, dict]:
    """Load (encoder, tokenizer, settings) from an alias, a model directory or a hub id."""
    from ..hub import load_tokenizer, resolve_model_path

    path = Path(resolve_model_path(name_or_path))
    default = {"architecture": "splade", "pooling": "max", "activation": "relu"}
    settings = read_dir_settings(path) if path.is_dir() else default
    if settings.get("architecture", "splade") != "splade":
        raise ConfigError(f"{name_or_path}: holds a {settings['architecture']!r} model; this version loads 'splade'")
    encoder = SpladeEncoder(str(name_or_path), pooling=settings["pooling"], activation=settings["activation"])
    return encoder, load_tokenizer(name_or_path), settings


def torch_load_checkpoint(path: str | os.PathLike) -> dict:
    """``torch.load`` a Lightning ``.ckpt`` on CPU (our checkpoints hold only tensors, dicts, strings, bytes)."""
    return torch.load(path, map_location="cpu", weights_only=False)
