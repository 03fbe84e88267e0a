"""Inference-free models as a sentence-transformers ``Router`` directory
(``sentence_transformers/base/modules/router.py`` of sentence-transformers 6.2.0).

Layout written by :func:`write_st_router` (ST5 type strings, which ST 5.x and 6.x both load)::

    modules.json                       [{"idx": 0, "name": "0", "path": "", "type": "...models.Router"}]
    router_config.json                 {"types": {...}, "structure": {"query": [...], "document": [...]}, "parameters"}
    config_sentence_transformers.json  {"model_type": "SparseEncoder", "similarity_fn_name": "dot", ...}
    query_0_SparseStaticEmbedding/     config.json {"frozen"}, model.safetensors {"weight": float32 (V,)}, tokenizer
    document_0_MLMTransformer/         the HF masked-LM directory + tokenizer + sentence_bert_config.json
    document_1_SpladePooling/          config.json {"pooling_strategy", "activation_function", ...}

The query weights are the *effective* weights our router applies (``QueryDocRouter.query_term_weights``: relu, 0 for
every special token, IDF-aware factor folded in), one per vocabulary id, so sentence-transformers' plain lookup
(``presence × weight``, which would score ``[UNK]`` and other specials with their stored weight) gives our vectors.
sentence-transformers tokenises queries without special tokens and truncates them at the query tokenizer's
``model_max_length``; that value is written as ``max_query_length`` minus the specials our collator adds, so both
keep the same query tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from splade_lightning.errors import ConfigError
from splade_lightning.serialization.checkpoint import hf_backbone

ROUTER_CONFIG = "router_config.json"
QUERY_DIR = "query_0_SparseStaticEmbedding"
DOC_DIR = "document_0_MLMTransformer"
POOLING_DIR = "document_1_SpladePooling"
_ST5 = "sentence_transformers.sparse_encoder.models"
TYPES = {QUERY_DIR: f"{_ST5}.SparseStaticEmbedding.SparseStaticEmbedding",
         DOC_DIR: f"{_ST5}.MLMTransformer.MLMTransformer",
         POOLING_DIR: f"{_ST5}.SpladePooling.SpladePooling"}
MODULE = {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Router"}
ST_CONFIG = {"model_type": "SparseEncoder", "prompts": {"query": "", "document": ""}, "default_prompt_name": None,
             "similarity_fn_name": "dot"}


def is_st_router_dir(path: Path) -> bool:
    """Whether ``path`` is a sentence-transformers Router directory (``router_config.json`` at its root)."""
    return (Path(path) / ROUTER_CONFIG).is_file()


def _write_json(path: Path, content: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2))


def write_st_router(router: nn.Module, tokenizer, root: Path, max_query_length: int, max_doc_length: int,
                    prompts: dict[str, str] | None = None) -> None:
    """Write ``router`` (a ``QueryDocRouter`` with a static query side) + ``tokenizer`` into the empty directory
    ``root`` in the sentence-transformers Router layout (see the module docstring), with the model's ``{route:
    text}`` ``prompts`` in ``config_sentence_transformers.json`` (the Router hands the query prompt to the static
    query side, which prepends it like our collator)."""
    from safetensors.torch import save_file

    weights = router.query_term_weights()
    if weights is None:
        raise ConfigError(f"cannot export a {type(router.query_encoder).__name__} query side as a "
                          "sentence-transformers SparseStaticEmbedding; the Router layout needs a StaticSparseEncoder")
    doc = router.doc_encoder
    hf_backbone(doc)[1].save_pretrained(root / DOC_DIR)
    tokenizer.save_pretrained(root / DOC_DIR)
    _write_json(root / DOC_DIR / "sentence_bert_config.json",
                {"max_seq_length": max_doc_length, "do_lower_case": False})
    _write_json(root / POOLING_DIR / "config.json",
                {"pooling_strategy": doc.pooling, "activation_function": doc.activation,
                 "word_embedding_dimension": doc.vocab_size})
    query_dir = root / QUERY_DIR
    tokenizer.save_pretrained(query_dir)
    _set_model_max_length(query_dir, max_query_length - tokenizer.num_special_tokens_to_add(pair=False))
    save_file({"weight": weights.detach().float().cpu().contiguous()}, str(query_dir / "model.safetensors"))
    _write_json(query_dir / "config.json", {"frozen": bool(getattr(router.query_encoder, "frozen", True))})
    _write_json(root / "modules.json", [MODULE])
    _write_json(root / ROUTER_CONFIG, {
        "types": TYPES,
        "structure": {"query": [QUERY_DIR], "document": [DOC_DIR, POOLING_DIR]},
        "parameters": {"default_route": "document", "allow_empty_key": True},
    })
    _write_json(root / "config_sentence_transformers.json", {**ST_CONFIG, "prompts": {**ST_CONFIG["prompts"],
                                                                                       **(prompts or {})}})


def _set_model_max_length(tokenizer_dir: Path, length: int) -> None:
    config_file = tokenizer_dir / "tokenizer_config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    config["model_max_length"] = max(int(length), 1)
    config_file.write_text(json.dumps(config, indent=2))


def _route_modules(path: Path) -> tuple[Path, Path, Path]:
    """(query SparseStaticEmbedding dir, document MLMTransformer dir, document SpladePooling dir) of a Router dir."""
    config = json.loads((path / ROUTER_CONFIG).read_text())
    types, structure = config.get("types", {}), config.get("structure", {})
    query, document = structure.get("query", []), structure.get("document", [])
    kinds = [[types.get(m, "").rsplit(".", 1)[-1] for m in route] for route in (query, document)]
    if kinds != [["SparseStaticEmbedding"], ["MLMTransformer", "SpladePooling"]]:
        raise ConfigError(f"{path}: a sentence-transformers Router with routes query={kinds[0]}, "
                          f"document={kinds[1]}; this version loads query=['SparseStaticEmbedding'] with "
                          "document=['MLMTransformer', 'SpladePooling']")
    return path / query[0], path / document[0], path / document[1]


def load_st_router(path: Path) -> tuple[nn.Module, str, dict]:
    """Load a sentence-transformers Router directory (inference-free SPLADE) as a ``QueryDocRouter``.

    The stored query weights become the static weights (our lookup also zeroes special tokens and applies relu,
    which leaves weights exported by :func:`write_st_router` unchanged).

    Returns:
        (router, tokenizer directory, settings with the max lengths).
    """
    from safetensors.torch import load_file

    from splade_lightning.models.router import QueryDocRouter
    from splade_lightning.models.splade import SpladeEncoder
    from splade_lightning.models.static import StaticSparseEncoder

    path = Path(path)
    query_dir, doc_dir, pooling_dir = _route_modules(path)
    pooling = json.loads((pooling_dir / "config.json").read_text())
    doc = SpladeEncoder(str(doc_dir), pooling=pooling.get("pooling_strategy", "max"),
                        activation=pooling.get("activation_function", "relu"))
    weight = load_file(str(query_dir / "model.safetensors"))["weight"].float()
    if weight.shape != (doc.vocab_size,):
        raise ConfigError(f"{query_dir}: query weight of shape {tuple(weight.shape)}; expected ({doc.vocab_size},), "
                          "the document model's output width")
    frozen = json.loads((query_dir / "config.json").read_text()).get("frozen", True) \
        if (query_dir / "config.json").is_file() else True
    query = StaticSparseEncoder(str(doc_dir), vocab_size=doc.vocab_size, frozen=bool(frozen), missing_weight=0.0)
    with torch.no_grad():
        query.weight.copy_(weight)
    settings = {"architecture": "inference_free", "doc": doc.export_config(), "query": query.export_config()}
    settings.update(_max_lengths(path, doc_dir))
    return QueryDocRouter(doc, query), str(doc_dir), settings


def _max_lengths(path: Path, doc_dir: Path) -> dict:
    meta_file = path / "splade_lightning.json"
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        return {k: meta[k] for k in ("max_query_length", "max_doc_length") if k in meta}
    st_file = doc_dir / "sentence_bert_config.json"
    length = json.loads(st_file.read_text()).get("max_seq_length") if st_file.is_file() else None
    return {"max_query_length": length, "max_doc_length": length} if length else {}
