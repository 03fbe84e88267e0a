"""Self-contained Lightning checkpoints: embed what rebuilding the encoder needs (settings, backbone config, tokenizer
files), so ``splade_lightning.load("x.ckpt")`` needs neither the original backbone directory nor the hub."""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

import torch
from torch import nn

from splade_lightning.errors import ConfigError
from splade_lightning.models.csr import SparseAutoEncoder
from splade_lightning.models.csr_encoder import CSREncoder
from splade_lightning.models.dense import DenseEncoder
from splade_lightning.models.router import QueryDocRouter, Router
from splade_lightning.models.splade import SpladeEncoder
from splade_lightning.models.static import StaticSparseEncoder

FORMAT_VERSION = 1


def tokenizer_files(tokenizer) -> dict[str, bytes]:
    """``{file name: bytes}`` of a HF tokenizer's ``save_pretrained`` output."""
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


def splade_part(encoder: nn.Module) -> SpladeEncoder:
    """The SPLADE (MLM) encoder inside ``encoder``: itself, a query/document router's document encoder, or a
    ``Router``'s first SPLADE route (its default route when that is one)."""
    if isinstance(encoder, Router):
        names = [encoder.default_route, *(n for n in encoder.routes if n != encoder.default_route)]
        found = [encoder.routes[n] for n in names if isinstance(encoder.routes[n], SpladeEncoder)]
        if not found:
            raise ConfigError(f"cannot save a Router without a SpladeEncoder route (routes: "
                              f"{ {n: type(e).__name__ for n, e in encoder.routes.items()} })")
        return found[0]
    inner = getattr(encoder, "doc_encoder", encoder)
    if not isinstance(inner, SpladeEncoder):
        raise ConfigError(f"cannot save a {type(inner).__name__} document encoder; expected a SpladeEncoder")
    return inner


def hf_backbone(encoder: nn.Module) -> tuple[str, nn.Module]:
    """(name or directory, HF model) of the transformer inside ``encoder``: a SPLADE encoder's MLM (a router's
    document side) or a CSR encoder's dense backbone."""
    if isinstance(encoder, CSREncoder):
        return encoder.dense.backbone, encoder.dense.encoder
    splade = splade_part(encoder)
    return splade.backbone, splade.mlm


def checkpoint_payload(encoder: nn.Module, prefix: str = "encoder.", tokenizer=None,
                       max_lengths: dict[str, int] | None = None) -> dict:
    """What a Lightning checkpoint carries so
    :func:`~splade_lightning.serialization.registry.encoder_from_checkpoint` can rebuild ``encoder`` (a
    ``SpladeEncoder``, a ``QueryDocRouter`` over one, a ``Router`` (each SPLADE route's backbone config in
    ``route_backbones``), or a ``CSREncoder``): encoder settings, the backbone's ``config.json`` and the tokenizer
    files."""
    backbone, hf_model = hf_backbone(encoder)
    if tokenizer is None:
        cached = getattr(encoder, "_tokenizer_files", None)
        if cached is None:
            from splade_lightning.hub import load_tokenizer

            cached = tokenizer_files(load_tokenizer(encoder.tokenizer_name_or_path))
            encoder._tokenizer_files = cached
        files = cached
    else:
        files = tokenizer_files(tokenizer)
    payload = {"format_version": FORMAT_VERSION, "encoder": encoder.export_config(), "state_dict_prefix": prefix,
               "backbone": backbone, "backbone_config": hf_model.config.to_dict(), "tokenizer_files": files,
               "max_lengths": dict(max_lengths or {})}
    if isinstance(encoder, Router):  # every SPLADE route's own backbone (an asymmetric SPLADE has two MLMs)
        payload["route_backbones"] = {name: {"backbone": route.backbone, "backbone_config": route.mlm.config.to_dict()}
                                      for name, route in encoder.routes.items() if isinstance(route, SpladeEncoder)}
    return payload


def splade_from_checkpoint(cfg: dict, payload: dict) -> SpladeEncoder:
    """Rebuild a SPLADE encoder (fresh weights) from its settings and a checkpoint payload."""
    return SpladeEncoder(payload["backbone"], pooling=cfg["pooling"], activation=cfg["activation"],
                         backbone_config=payload["backbone_config"])


def inference_free_from_checkpoint(cfg: dict, payload: dict) -> QueryDocRouter:
    """Rebuild an inference-free model (fresh weights) from its settings and a checkpoint payload."""
    doc = splade_from_checkpoint(cfg["doc"], payload)
    query_cfg = cfg["query"]
    if query_cfg.get("architecture") != "static":
        raise ConfigError(f"checkpoint holds a {query_cfg.get('architecture')!r} query encoder; this version loads "
                          "'static' (StaticSparseEncoder) query sides")
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in payload["tokenizer_files"].items():
            Path(tmp, name).write_bytes(data)
        query = StaticSparseEncoder(tmp, vocab_size=query_cfg["vocab_size"], frozen=query_cfg["frozen"],
                                    missing_weight=query_cfg["missing_weight"])
    query.tokenizer_name_or_path = doc.tokenizer_name_or_path  # the same tokenizer, whose files were unpacked above
    return QueryDocRouter(doc, query)


def router_from_checkpoint(cfg: dict, payload: dict) -> Router:
    """Rebuild a ``Router`` (fresh weights) from its settings and a checkpoint payload: a SPLADE route from its own
    backbone config, a static route over the checkpoint's tokenizer files."""
    routes: dict[str, nn.Module] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, data in payload["tokenizer_files"].items():
            Path(tmp, name).write_bytes(data)
        for name, settings in cfg["routes"].items():
            kind = settings.get("architecture")
            if kind == "splade":
                routes[name] = splade_from_checkpoint(settings, {**payload, **payload["route_backbones"][name]})
            elif kind == "static":
                routes[name] = StaticSparseEncoder(tmp, vocab_size=settings["vocab_size"], frozen=settings["frozen"],
                                                   missing_weight=settings["missing_weight"])
            else:
                raise ConfigError(f"checkpoint holds a {kind!r} encoder on route {name!r}; this version loads "
                                  "'splade' (SpladeEncoder) and 'static' (StaticSparseEncoder) routes")
    shared = next((r.tokenizer_name_or_path for r in routes.values() if isinstance(r, SpladeEncoder)), None)
    for route in routes.values():
        if isinstance(route, StaticSparseEncoder) and shared is not None:
            route.tokenizer_name_or_path = shared  # the same tokenizer, whose files were unpacked above
    return Router.restore(routes, cfg["default_route"], cfg.get("task_routes"))


def csr_from_checkpoint(cfg: dict, payload: dict) -> CSREncoder:
    """Rebuild a CSR encoder (fresh weights) from its settings and a checkpoint payload."""
    dense_cfg = cfg["dense"]
    dense = DenseEncoder(payload["backbone"], pooling=dense_cfg["pooling"], normalize=dense_cfg["normalize"],
                         frozen=dense_cfg["frozen"], backbone_config=payload["backbone_config"])
    return CSREncoder(dense, SparseAutoEncoder(**cfg["autoencoder"]))


def inference_lengths(datamodule: object) -> dict[str, int]:
    """The query/document truncation lengths a model trained with ``datamodule`` should use at inference: its
    evaluation query length (``eval_max_query_length``, else ``max_query_length``) and its evaluation document length
    (``eval_max_doc_length``, else ``max_doc_length``)."""
    lengths = {}
    query_length = getattr(datamodule, "eval_max_query_length", None) or getattr(datamodule, "max_query_length", None)
    if query_length:
        lengths["max_query_length"] = int(query_length)
    doc_length = getattr(datamodule, "eval_max_doc_length", None) or getattr(datamodule, "max_doc_length", None)
    if doc_length:
        lengths["max_doc_length"] = int(doc_length)
    return lengths


def checkpoint_problem(path: str | Path) -> str | None:
    """Why the checkpoint file ``path`` cannot be loaded, or ``None`` when it can.

    ``torch.save`` files are zip archives: a truncated file has no central directory and a corrupted one fails a
    member's CRC (both checked without unpickling). Other files (the legacy format) are test-loaded on the CPU.
    """
    path = Path(path)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
            return None if bad is None else f"member {bad!r} fails its CRC check"
        torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # any failure to read means "not loadable"; the message says which
        message = str(e).split(". ")[0]  # torch appends a paragraph of advice
        return f"{type(e).__name__}: {message}"[:300]
    return None


def torch_load_checkpoint(path: str | os.PathLike) -> dict:
    """``torch.load`` a Lightning ``.ckpt`` on CPU (our checkpoints hold only tensors, dicts, strings, bytes)."""
    return torch.load(path, map_location="cpu", weights_only=False)
