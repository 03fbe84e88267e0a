"""Save and load encoders as HF-style model directories.

A saved SPLADE directory is a plain HF masked-LM directory (``config.json``, ``model.safetensors``, tokenizer files)
plus ``splade_lightning.json`` (our encoder settings) and the sentence-transformers SparseEncoder files
(``modules.json``, ``1_SpladePooling/config.json``, ...; the layout of sentence-transformers 5's
``sentence_transformers/sparse_encoder/models/``, which 5.x and 6.x both load; 6.2.0 maps it in
``sentence_transformers/util/deprecated_import.py``). An inference-free model is saved in OpenSearch's layout
(the ``save_pretrained`` + ``idf.json`` export of opensearch-sparse-model-tuning-sample's
``scripts/train/trainer.py``): the document MLM directory plus ``idf.json``, the query weights keyed by token
string. A CSR model is saved as a sentence-transformers SparseEncoder directory
(``sentence_transformers/sparse_encoder/modules/sparse_auto_encoder.py``, 6.2.0; see
:mod:`splade_lightning.serialization.st_csr`) plus ``splade_lightning.json``. Directories are written atomically
and under the output policy (:mod:`splade_lightning.formats.outputs`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from torch import nn

from splade_lightning._version import __version__
from splade_lightning.errors import ConfigError
from splade_lightning.formats.outputs import Input, dir_output
from splade_lightning.models.csr_encoder import CSREncoder
from splade_lightning.models.onnx_encoder import runtime_of
from splade_lightning.models.router import QueryDocRouter, Router
from splade_lightning.models.splade import SpladeEncoder
from splade_lightning.models.static import StaticSparseEncoder
from splade_lightning.prompts import check_prompts, st_config_prompts
from splade_lightning.serialization.checkpoint import FORMAT_VERSION, hf_backbone
from splade_lightning.serialization.model_card import CardContext, CardFacts
from splade_lightning.serialization.model_card_text import write_card
from splade_lightning.serialization.st_csr import (
    ST_CONFIG_FILE,
    csr_settings,
    csr_st_files,
    hub_csr_snapshot,
    is_csr_modules,
    read_modules,
    st_max_seq_length,
    write_sae_weights,
)
from splade_lightning.serialization.st_router import write_st_router
from splade_lightning.serialization.st_routes import write_st_routes

META_FILE = "splade_lightning.json"
IDF_FILE = "idf.json"


def _st_files(encoder: SpladeEncoder, max_seq_length: int, prompts: dict[str, str]) -> dict[str, dict | list]:
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
            "model_type": "SparseEncoder", "prompts": dict(prompts), "default_prompt_name": None,
            "similarity_fn_name": "dot"},
    }


def save_encoder(encoder: nn.Module, tokenizer, path: str | os.PathLike, max_query_length: int = 512,
                 max_doc_length: int = 512, st_router: bool = False, overwrite: bool = False,
                 flag: str = "path", tool: str = "save", inputs: Sequence[Input] = (),
                 card: CardContext | None = None, prompts: Mapping[str, str] | None = None) -> Path:
    """Write ``encoder`` (a ``SpladeEncoder``, a ``QueryDocRouter`` with a static query side, or a ``CSREncoder``)
    + ``tokenizer`` as a model directory at ``path``, atomically and under the output policy
    (:func:`splade_lightning.formats.outputs.dir_output`: a new or empty directory, or one splade_lightning wrote when
    ``overwrite``; never one of ``inputs``).

    A ``Router`` (any route names, e.g. an asymmetric SPLADE) is always written in the sentence-transformers Router
    layout (:mod:`splade_lightning.serialization.st_routes`). ``st_router=True`` writes a ``QueryDocRouter`` in that
    layout (:mod:`splade_lightning.serialization.st_router`) instead of OpenSearch's.

    Args:
        flag: what named ``path``, for error messages (``--output``, ``--export_dir``).
        tool: the command recorded in the directory's manifest.
        inputs: paths the command read (the model's source), which the output may not destroy.
        card: what is known about the model beyond its weights (training run, evaluation, base model), for the
            model card (``README.md``, :mod:`splade_lightning.serialization.model_card`); None: nothing.
        prompts: the model's ``{route: text}`` prompts (:mod:`splade_lightning.prompts`), written to
            ``splade_lightning.json`` and to ``config_sentence_transformers.json`` (sentence-transformers layouts), so
            ``SparseEncoder.encode_query`` / ``encode_document`` prepend them too; None: none.

    Returns:
        The directory path.
    """
    target = Path(path)
    if runtime_of(encoder) == "onnx":
        raise ConfigError(f"{flag} {target}: this model runs on ONNX Runtime (it was loaded from an ONNX export) and "
                          "has no torch weights to save; save or export the model the ONNX export was made from")
    prompts = check_prompts(prompts, f"{flag} {target}: prompts")
    with dir_output(target, flag, tool, overwrite, inputs) as tmp:
        meta = {"format_version": FORMAT_VERSION, **encoder.export_config(),
                "max_query_length": max_query_length, "max_doc_length": max_doc_length, "prompts": prompts}
        card_facts = CardFacts(meta, int(encoder.vocab_size), max_query_length, max_doc_length,
                               backbone=hf_backbone(encoder)[0], context=card or CardContext(), version=__version__,
                               sentence_transformers=st_router or not isinstance(encoder, QueryDocRouter))
        write_card(tmp, card_facts)
        if isinstance(encoder, Router):  # a Router with any route names: always the sentence-transformers layout
            write_st_routes(encoder, tokenizer, tmp, max_query_length, max_doc_length, prompts)
            (tmp / META_FILE).write_text(json.dumps({**meta, "layout": "sentence-transformers-router"}, indent=2))
            return target
        if st_router and isinstance(encoder, QueryDocRouter):
            write_st_router(encoder, tokenizer, tmp, max_query_length, max_doc_length, prompts)
            (tmp / META_FILE).write_text(json.dumps({**meta, "layout": "sentence-transformers-router"}, indent=2))
            return target
        hf_backbone(encoder)[1].save_pretrained(tmp)  # the MLM (SPLADE, router document side) or CSR's encoder
        tokenizer.save_pretrained(tmp)
        if isinstance(encoder, QueryDocRouter):
            files = {META_FILE: meta}
            write_query_table(encoder, tokenizer, tmp / IDF_FILE)
        elif isinstance(encoder, CSREncoder):
            files = {META_FILE: meta, **csr_st_files(encoder, max_doc_length, prompts)}
            write_sae_weights(encoder, tmp)
        else:
            files = {META_FILE: meta, **_st_files(encoder, max_doc_length, prompts)}
        for name, content in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_text(json.dumps(content, indent=2))
    return target


def write_query_table(router: QueryDocRouter, tokenizer, path: Path) -> None:
    """``idf.json``: the effective query weight of every token (relu, IDF-aware factor included; specials 0)."""
    from splade_lightning.formats.idf_json import write_idf_json

    weights = router.query_term_weights()
    if weights is None:
        raise ConfigError(f"cannot export a {type(router.query_encoder).__name__} query side as idf.json; the "
                          "OpenSearch inference-free layout needs a StaticSparseEncoder")
    write_idf_json(weights.detach().float().cpu(), tokenizer, path)


def read_dir_settings(path: Path) -> dict:
    """Encoder settings of a model directory: ours (``splade_lightning.json``), OpenSearch's inference-free layout
    (an MLM directory with ``idf.json``), a sentence-transformers SparseEncoder (``1_SpladePooling/config.json``, or
    a CSR ``modules.json`` with a SparseAutoEncoder), or a bare HF MLM directory (SPLADE max/relu, as
    sentence-transformers assumes)."""
    meta = json.loads((path / META_FILE).read_text()) if (path / META_FILE).is_file() else None
    if (meta or {}).get("architecture") == "csr" or is_csr_modules(read_modules(path)):
        return csr_settings(path, meta)
    if meta is not None:
        return meta
    settings: dict = {"architecture": "splade", "pooling": "max", "activation": "relu"}
    pooling_cfg = path / "1_SpladePooling" / "config.json"
    if pooling_cfg.is_file():
        cfg = json.loads(pooling_cfg.read_text())
        settings["pooling"] = cfg.get("pooling_strategy", "max")
        settings["activation"] = cfg.get("activation_function", "relu")
    length = st_max_seq_length(path)
    if length:
        settings["max_query_length"] = settings["max_doc_length"] = length
    if (path / IDF_FILE).is_file():
        doc = {key: settings.pop(key) for key in ("architecture", "pooling", "activation")}
        settings.update(architecture="inference_free", doc=doc,
                        query={"architecture": "static", "missing_weight": 1.0})  # OpenSearch: unlisted tokens 1
    return settings


def read_prompts(path: Path) -> dict[str, str]:
    """The ``{route: text}`` prompts of a model directory (or, for a hub id, of its hub repository):
    ``prompts`` of our ``splade_lightning.json``, else those sentence-transformers' ``SparseEncoder.encode_query`` /
    ``encode_document`` take from ``config_sentence_transformers.json``
    (:func:`splade_lightning.prompts.st_config_prompts`), else none.

    Raises:
        ConfigError: bad prompts (naming the file), or prompts on a CSR model whose pooling leaves the prompt's tokens
            out (sentence-transformers' ``include_prompt: false``), which our dense pooling does not support.
    """
    meta_file, st_file = path / META_FILE, path / ST_CONFIG_FILE
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    if "prompts" in meta:
        return check_prompts(meta["prompts"], f"{meta_file}: prompts")
    if not path.exists() and (hub_file := _hub_file(str(path), ST_CONFIG_FILE)) is not None:
        st_file = hub_file
    prompts = st_config_prompts(json.loads(st_file.read_text()), str(st_file)) if st_file.is_file() else {}
    pooling = [path / str(m.get("path", "")) / "config.json" for m in read_modules(path) or []
               if str(m.get("type", "")).endswith(".Pooling")]
    if any(prompts.values()) and pooling and pooling[0].is_file() \
            and json.loads(pooling[0].read_text()).get("include_prompt", True) is False:
        raise ConfigError(f"{pooling[0]}: include_prompt is false with prompts {prompts} in {st_file}; this version "
                          "pools the prompt's tokens with the text (include_prompt: true) only")
    return check_prompts(prompts)


def _hub_file(name: str, filename: str) -> Path | None:
    """``filename`` of the hub repository ``name``, or None (no such file, no network, not a hub id)."""
    try:
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(name, filename))
    except Exception:  # an optional file: its absence is not an error
        return None


def _hub_idf_file(name: str) -> Path | None:
    """``idf.json`` of a hub model (OpenSearch inference-free models ship one), or None (no such file, no network, not
    a hub id: treated as a plain SPLADE model)."""
    return _hub_file(name, IDF_FILE)


def locate_dir(name_or_path: str) -> tuple[Path, dict, Path | None]:
    """Where a model lives and what it holds: ``(directory or hub id as a path, settings, idf.json or None)``.

    Settings come from :func:`read_dir_settings` for a directory; a hub id is a plain SPLADE model unless it ships an
    ``idf.json`` (OpenSearch's inference-free models) or is a sentence-transformers CSR model.
    """
    from splade_lightning.hub import resolve_model_path

    path = Path(resolve_model_path(name_or_path))
    if not path.is_dir() and (snapshot := hub_csr_snapshot(str(name_or_path))) is not None:
        path = snapshot
    plain = {"architecture": "splade", "pooling": "max", "activation": "relu"}
    if path.is_dir():
        return path, read_dir_settings(path), path / IDF_FILE
    if (idf_file := _hub_idf_file(str(name_or_path))) is not None:
        return path, {"architecture": "inference_free", "doc": plain,
                      "query": {"architecture": "static", "missing_weight": 1.0}}, idf_file
    return path, plain, None


def splade_from_dir(name_or_path: str, settings: dict, idf_file: Path | None = None) -> SpladeEncoder:
    """The SPLADE encoder of a model directory or hub id."""
    return SpladeEncoder(str(name_or_path), pooling=settings.get("pooling", "max"),
                         activation=settings.get("activation", "relu"))


def inference_free_from_dir(name_or_path: str, settings: dict, idf_file: Path | None) -> QueryDocRouter:
    """An inference-free model of OpenSearch's layout: the document MLM plus the ``idf.json`` query table."""
    doc = splade_from_dir(name_or_path, settings["doc"])
    query = StaticSparseEncoder(str(name_or_path), vocab_size=doc.vocab_size, idf_file=str(idf_file), frozen=True,
                                missing_weight=settings["query"].get("missing_weight", 1.0))
    return QueryDocRouter(doc, query)
