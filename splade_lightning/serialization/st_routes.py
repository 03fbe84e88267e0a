"""A :class:`~splade_lightning.models.Router` with any route names as a sentence-transformers ``Router`` directory
(sentence-transformers 6.2, ``base/modules/router.py``: ``save`` and ``load``), e.g. an asymmetric SPLADE with a query
MLM and a document MLM.

Layout written by :func:`write_st_routes` (ST5 type strings, which ST 5.x and 6.x both load; one folder per module,
named ``<route>_<index>_<type>`` as sentence-transformers names them)::

    modules.json                       [{"idx": 0, "name": "0", "path": "", "type": "...models.Router"}]
    router_config.json                 {"types": {...}, "structure": {route: [module folder, ...]}, "parameters":
                                        {"default_route", "allow_empty_key", "route_mappings"}}
    config_sentence_transformers.json  {"model_type": "SparseEncoder", "similarity_fn_name": "dot", "prompts", ...}
    <route>_0_MLMTransformer/          a SPLADE route: HF masked-LM directory + tokenizer + sentence_bert_config.json
    <route>_1_SpladePooling/           config.json {"pooling_strategy", "activation_function", ...}
    <route>_0_SparseStaticEmbedding/   a static route: model.safetensors {"weight": float32 (V,)}, config.json,
                                       tokenizer

``task_routes`` become ``route_mappings`` entries ``"('<task>', None)": route``. The route ``encode_query`` resolves
to is truncated at ``max_query_length`` tokens, every other route at ``max_doc_length``; a static route stores its
effective weights (relu, 0 for special tokens) and the length without the special tokens our collator adds, since
sentence-transformers tokenises its input without them (as :mod:`splade_lightning.serialization.st_router` does for
the inference-free query side).

:func:`load_st_routes` reads such a directory back, whether we or sentence-transformers wrote it: routes of
``[MLMTransformer | Transformer (fill-mask), SpladePooling]`` or ``[SparseStaticEmbedding]``.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import torch
from torch import nn

from splade_lightning.errors import ConfigError
from splade_lightning.models.router import Router
from splade_lightning.models.splade import SpladeEncoder
from splade_lightning.models.static import StaticSparseEncoder
from splade_lightning.serialization.st_csr import st_max_seq_length

ROUTER_CONFIG = "router_config.json"
_ST5 = "sentence_transformers.sparse_encoder.models"
MLM, POOLING, STATIC = "MLMTransformer", "SpladePooling", "SparseStaticEmbedding"
TYPES = {kind: f"{_ST5}.{kind}.{kind}" for kind in (MLM, POOLING, STATIC)}
MODULE = {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Router"}
ST_CONFIG = {"model_type": "SparseEncoder", "prompts": {"query": "", "document": ""}, "default_prompt_name": None,
             "similarity_fn_name": "dot"}


def _write_json(path: Path, content: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2))


def _write_splade(encoder: SpladeEncoder, tokenizer, root: Path, name: str, max_length: int) -> dict[str, str]:
    mlm_dir, pooling_dir = f"{name}_0_{MLM}", f"{name}_1_{POOLING}"
    encoder.mlm.save_pretrained(root / mlm_dir)
    tokenizer.save_pretrained(root / mlm_dir)
    _write_json(root / mlm_dir / "sentence_bert_config.json", {"max_seq_length": max_length, "do_lower_case": False})
    _write_json(root / pooling_dir / "config.json",
                {"pooling_strategy": encoder.pooling, "activation_function": encoder.activation,
                 "word_embedding_dimension": encoder.vocab_size})
    return {mlm_dir: TYPES[MLM], pooling_dir: TYPES[POOLING]}


def _write_static(encoder: StaticSparseEncoder, tokenizer, root: Path, name: str, max_length: int) -> dict[str, str]:
    from safetensors.torch import save_file

    folder = f"{name}_0_{STATIC}"
    tokenizer.save_pretrained(root / folder)
    config_file = root / folder / "tokenizer_config.json"
    config = json.loads(config_file.read_text()) if config_file.is_file() else {}
    config["model_max_length"] = max(int(max_length) - tokenizer.num_special_tokens_to_add(pair=False), 1)
    config_file.write_text(json.dumps(config, indent=2))
    weights = encoder.term_weights().detach().float().cpu().contiguous()
    save_file({"weight": weights}, str(root / folder / "model.safetensors"))
    _write_json(root / folder / "config.json", {"frozen": encoder.frozen})
    return {folder: TYPES[STATIC]}


def write_st_routes(router: Router, tokenizer, root: Path, max_query_length: int, max_doc_length: int,
                    prompts: dict[str, str] | None = None) -> None:
    """Write ``router`` + ``tokenizer`` into the empty directory ``root`` in the sentence-transformers Router layout
    (see the module docstring), with ``prompts`` in ``config_sentence_transformers.json``.

    Raises:
        ConfigError: a route that is neither a ``SpladeEncoder`` nor a ``StaticSparseEncoder``.
    """
    query_route = router.resolve("query")
    structure, types = {}, {}
    for name, encoder in router.routes.items():
        length = max_query_length if name == query_route and name != router.resolve("document") else max_doc_length
        if isinstance(encoder, SpladeEncoder):
            folders = _write_splade(encoder, tokenizer, root, name, length)
        elif isinstance(encoder, StaticSparseEncoder):
            folders = _write_static(encoder, tokenizer, root, name, length)
        else:
            raise ConfigError(f"cannot write route {name!r} ({type(encoder).__name__}) in the sentence-transformers "
                              "Router layout; routes must be SpladeEncoder or StaticSparseEncoder")
        structure[name] = list(folders)
        types.update(folders)
    parameters = {"default_route": router.default_route, "allow_empty_key": True,
                  "route_mappings": {str((task, None)): route for task, route in router.task_routes.items()}}
    _write_json(root / "modules.json", [MODULE])
    _write_json(root / ROUTER_CONFIG, {"types": types, "structure": structure, "parameters": parameters})
    _write_json(root / "config_sentence_transformers.json",
                {**ST_CONFIG, "prompts": {**ST_CONFIG["prompts"], **(prompts or {})}})


def route_kind(path: Path, folders: list[str], types: dict[str, str]) -> str:
    """``"splade"`` or ``"static"``: what one route of a Router directory holds.

    Raises:
        ConfigError: any other sequence of modules, naming ``router_config.json`` and the modules.
    """
    kinds = [types.get(folder, "").rsplit(".", 1)[-1] for folder in folders]
    if kinds == [STATIC]:
        return "static"
    if len(kinds) == 2 and kinds[1] == POOLING and kinds[0] in (MLM, "Transformer"):
        config_file = path / folders[0] / "sentence_bert_config.json"
        task = json.loads(config_file.read_text()).get("transformer_task", "fill-mask") \
            if config_file.is_file() else "fill-mask"
        if task == "fill-mask":
            return "splade"
    raise ConfigError(f"{path / ROUTER_CONFIG}: a route of modules {kinds}; this version loads routes of "
                      f"[{MLM} (or Transformer with transformer_task fill-mask), {POOLING}] or [{STATIC}]")


def _read_splade(path: Path, folders: list[str]) -> SpladeEncoder:
    pooling = json.loads((path / folders[1] / "config.json").read_text())
    return SpladeEncoder(str(path / folders[0]), pooling=pooling.get("pooling_strategy", "max"),
                         activation=pooling.get("activation_function", "relu"))


def _read_static(path: Path, folder: str, vocab_size: int | None) -> StaticSparseEncoder:
    from safetensors.torch import load_file

    weight = load_file(str(path / folder / "model.safetensors"))["weight"].float()
    if vocab_size is not None and weight.shape != (vocab_size,):
        raise ConfigError(f"{path / folder}: weight of shape {tuple(weight.shape)}; expected ({vocab_size},), the "
                          "output width of the other routes")
    config_file = path / folder / "config.json"
    frozen = json.loads(config_file.read_text()).get("frozen", True) if config_file.is_file() else True
    encoder = StaticSparseEncoder(str(path / folder), vocab_size=int(weight.shape[0]), frozen=bool(frozen),
                                  missing_weight=0.0)
    with torch.no_grad():
        encoder.weight.copy_(weight)
    return encoder


def _task_routes(path: Path, mappings: dict) -> dict[str, str]:
    """``route_mappings`` -> task_routes; only text entries ``(task, None)`` / ``(task, "text")`` are understood."""
    out = {}
    for key, route in (mappings or {}).items():
        try:
            task, modality = ast.literal_eval(key)
        except (ValueError, SyntaxError, TypeError):
            task, modality = None, key
        if not isinstance(task, str) or modality not in (None, "text"):
            raise ConfigError(f"{path / ROUTER_CONFIG}: route_mappings entry {key!r}; this version maps text tasks "
                              "only, \"('<task>', None)\"")
        out[task] = route
    return out


def load_st_routes(path: Path) -> tuple[nn.Module, str, dict]:
    """Load a sentence-transformers Router directory (any route names) as a :class:`Router`.

    Returns:
        (router, tokenizer directory: the default route's first module, settings with the max lengths).
    """
    path = Path(path)
    config = json.loads((path / ROUTER_CONFIG).read_text())
    types, structure = config.get("types", {}), config.get("structure", {})
    parameters = config.get("parameters", {})
    kinds = {name: route_kind(path, folders, types) for name, folders in structure.items()}
    routes: dict[str, nn.Module] = {n: _read_splade(path, structure[n]) for n, k in kinds.items() if k == "splade"}
    width = next(iter(routes.values())).vocab_size if routes else None
    for name in structure:
        if kinds[name] == "static":
            routes[name] = _read_static(path, structure[name][0], width)
    routes = {name: routes[name] for name in structure}  # the directory's route order
    try:
        router = Router(routes, parameters.get("default_route"), _task_routes(path, parameters.get("route_mappings")))
    except ConfigError as e:
        raise ConfigError(f"{path / ROUTER_CONFIG}: {e}") from None
    settings = {**router.export_config(), **_max_lengths(path, router, structure)}
    return router, str(path / structure[router.default_route][0]), settings


def _max_lengths(path: Path, router: Router, structure: dict[str, list[str]]) -> dict:
    """Ours from ``splade_lightning.json``; else the truncation length sentence-transformers uses for each task's
    SPLADE route (a static query route: the document length)."""
    meta_file = path / "splade_lightning.json"
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text())
        return {k: meta[k] for k in ("max_query_length", "max_doc_length") if k in meta}
    lengths = {}
    for task, key in (("document", "max_doc_length"), ("query", "max_query_length")):
        route = router.resolve(task)
        if isinstance(router.routes[route], SpladeEncoder) and \
                (length := st_max_seq_length(path / structure[route][0])):
            lengths[key] = length
    if "max_doc_length" in lengths:
        lengths.setdefault("max_query_length", lengths["max_doc_length"])
    return lengths


def is_query_document_layout(path: Path) -> bool:
    """Whether the Router directory ``path`` is an inference-free model that
    :func:`splade_lightning.serialization.st_router.load_st_router` loads as a ``QueryDocRouter``: routes
    ``query=[SparseStaticEmbedding]`` and ``document=[MLM, SpladePooling]`` only, no ``route_mappings``, and not
    saved by us from a :class:`Router`."""
    path = Path(path)
    meta_file = path / "splade_lightning.json"
    if meta_file.is_file() and json.loads(meta_file.read_text()).get("architecture") == "router":
        return False
    config = json.loads((path / ROUTER_CONFIG).read_text())
    types, structure = config.get("types", {}), config.get("structure", {})
    if set(structure) != {"query", "document"} or (config.get("parameters") or {}).get("route_mappings"):
        return False
    kinds = [[types.get(m, "").rsplit(".", 1)[-1] for m in structure[r]] for r in ("query", "document")]
    return kinds == [[STATIC], [MLM, POOLING]]
