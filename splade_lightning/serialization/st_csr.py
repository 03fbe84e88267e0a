"""CSR model directories in the sentence-transformers SparseEncoder layout (``sentence_transformers/base/model.py``
and ``sentence_transformers/sparse_encoder/modules/sparse_auto_encoder.py`` of sentence-transformers 6.2.0).

A saved :class:`~splade_lightning.models.CSREncoder` is a sentence-transformers directory: the HF encoder and its
tokenizer in the root (module 0, ``Transformer``), ``1_Pooling/config.json``, ``2_Normalize/`` when the dense
embedding is L2-normalised, then ``{n}_SparseAutoEncoder/`` (``config.json`` with the six ST keys +
``model.safetensors``). Type strings and config keys are the ST5 ones, which ST 6.x maps to its own modules
(``util/deprecated_import.py``) and config keys (``Pooling.config_key_renames``, legacy ``pooling_mode_*`` flags), so
the directory loads in both. Any sentence-transformers CSR directory (Transformer -> Pooling [-> Normalize] ->
SparseAutoEncoder, ST5 or ST6 layout) loads back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from splade_lightning.errors import ConfigError
from splade_lightning.models.csr import SparseAutoEncoder
from splade_lightning.models.csr_encoder import CSREncoder
from splade_lightning.models.dense import DenseEncoder

MODULES_FILE = "modules.json"
ST_CONFIG_FILE = "config_sentence_transformers.json"
SAE_WEIGHTS = "model.safetensors"
SAE_KEYS = ("input_dim", "hidden_dim", "k", "k_aux", "normalize", "dead_threshold")
#: ST5 module paths; ST 6.x resolves them through its deprecated-import map
ST_TYPES = {
    "Transformer": "sentence_transformers.models.Transformer",
    "Pooling": "sentence_transformers.models.Pooling",
    "Normalize": "sentence_transformers.models.Normalize",
    "SparseAutoEncoder": "sentence_transformers.sparse_encoder.models.SparseAutoEncoder",
}
#: ST5 pooling flags (ST 6.x converts them to ``pooling_mode``), in ST's order
POOLING_FLAGS = {"pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max", "pooling_mode_mean_tokens": "mean",
                 "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
                 "pooling_mode_weightedmean_tokens": "weightedmean", "pooling_mode_lasttoken": "lasttoken"}


def _st_modules(encoder: CSREncoder) -> list[dict]:
    """``modules.json``: the Transformer in the root, then ``{idx}_{ClassName}`` folders."""
    names = ["Pooling", *(["Normalize"] if encoder.dense.normalize else []), "SparseAutoEncoder"]
    modules = [{"idx": 0, "name": "0", "path": "", "type": ST_TYPES["Transformer"]}]
    return modules + [{"idx": i, "name": str(i), "path": f"{i}_{name}", "type": ST_TYPES[name]}
                      for i, name in enumerate(names, start=1)]


def csr_st_files(encoder: CSREncoder, max_seq_length: int,
                 prompts: dict[str, str] | None = None) -> dict[str, dict | list]:
    """The sentence-transformers JSON files of a CSR directory, ``{relative path: content}`` (weights aside), with
    the model's ``{route: text}`` ``prompts`` (pooled with the text: ``include_prompt: true``, as our dense pooling)."""
    dense, sae = encoder.dense, encoder.autoencoder
    modules = _st_modules(encoder)
    pooling = {"word_embedding_dimension": dense.embedding_dim,
               **{flag: mode == dense.pooling for flag, mode in POOLING_FLAGS.items()}, "include_prompt": True}
    st_config = {"model_type": "SparseEncoder", "prompts": {"query": "", "document": "", **(prompts or {})},
                 "default_prompt_name": None, "similarity_fn_name": "dot"}
    if sae.max_active_dims is not None:
        st_config["max_active_dims"] = sae.max_active_dims
    sae_config = sae.export_config()
    files = {
        MODULES_FILE: modules,
        "sentence_bert_config.json": {"max_seq_length": max_seq_length, "do_lower_case": False},
        "1_Pooling/config.json": pooling,
        f"{modules[-1]['path']}/config.json": {key: sae_config[key] for key in SAE_KEYS},
        ST_CONFIG_FILE: st_config,
    }
    if dense.normalize:
        files["2_Normalize/config.json"] = {}
    return files


def write_sae_weights(encoder: CSREncoder, path: Path) -> None:
    """Write the autoencoder's ``{n}_SparseAutoEncoder/model.safetensors`` into the model directory ``path``.

    ``safetensors.torch.save_model``, as sentence-transformers uses: the tied matrix is stored once, as
    ``decoder.linear.weight``; ``stats_last_nonzero`` stays int64.
    """
    from safetensors.torch import save_model

    sae_dir = path / _st_modules(encoder)[-1]["path"]
    sae_dir.mkdir(parents=True, exist_ok=True)
    save_model(encoder.autoencoder, str(sae_dir / SAE_WEIGHTS))


def read_modules(path: Path) -> list[dict] | None:
    """Entries of ``path/modules.json``, or None without one."""
    file = path / MODULES_FILE
    if not file.is_file():
        return None
    try:
        modules = json.loads(file.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{file}: not valid JSON ({e})") from e
    if not isinstance(modules, list) or not all(isinstance(m, dict) and "type" in m for m in modules):
        raise ConfigError(f"{file}: expected a list of {{'idx', 'name', 'path', 'type'}} entries")
    return modules


def _class_name(module: dict) -> str:
    return str(module["type"]).rsplit(".", 1)[-1]


def is_csr_modules(modules: list[dict] | None) -> bool:
    """Whether a ``modules.json`` list holds a SparseAutoEncoder (a CSR model)."""
    return bool(modules) and any(_class_name(m) == "SparseAutoEncoder" for m in modules)


@dataclass
class CSRLayout:
    """Where the parts of a CSR directory are and how they are configured."""

    backbone_dir: Path
    pooling: str
    normalize: bool
    sae_dir: Path
    sae_config: dict
    max_seq_length: int | None


def read_csr_layout(path: Path) -> CSRLayout:
    """Parse a CSR directory (ours or sentence-transformers'): Transformer -> Pooling [-> Normalize] -> SAE.

    Raises:
        ConfigError: naming the file and the problem (no modules.json, other modules, bad pooling or SAE config).
    """
    modules = read_modules(path)
    if modules is None:
        raise ConfigError(f"{path / MODULES_FILE}: missing; a CSR directory lists Transformer, Pooling, [Normalize,] "
                          "SparseAutoEncoder there")
    modules = sorted(modules, key=lambda m: int(m.get("idx", 0)))
    names = [_class_name(m) for m in modules]
    if names not in (["Transformer", "Pooling", "SparseAutoEncoder"],
                     ["Transformer", "Pooling", "Normalize", "SparseAutoEncoder"]):
        raise ConfigError(f"{path / MODULES_FILE}: modules {names}; a CSR model loads as Transformer, Pooling, "
                          "[Normalize,] SparseAutoEncoder")
    dirs = [path / str(m.get("path", "")) for m in modules]
    st_config = _read_json(path / ST_CONFIG_FILE) if (path / ST_CONFIG_FILE).is_file() else {}
    sae_config = _sae_config(dirs[-1] / "config.json", st_config.get("max_active_dims"))
    return CSRLayout(backbone_dir=dirs[0], pooling=read_pooling_mode(dirs[1] / "config.json"),
                     normalize="Normalize" in names, sae_dir=dirs[-1], sae_config=sae_config,
                     max_seq_length=st_max_seq_length(dirs[0]))


def _read_json(file: Path) -> dict:
    if not file.is_file():
        raise ConfigError(f"{file}: missing")
    try:
        content = json.loads(file.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{file}: not valid JSON ({e})") from e
    if not isinstance(content, dict):
        raise ConfigError(f"{file}: expected a JSON object")
    return content


def read_pooling_mode(file: Path, reader: str = "CSR loading") -> str:
    """``mean`` or ``cls`` from a sentence-transformers Pooling config in the ST6 (``pooling_mode``) or ST5 (boolean
    flags) form; ``reader`` names who needs it in the error for other modes."""
    cfg = _read_json(file)
    mode = cfg.get("pooling_mode")
    if mode is None:
        mode = [m for flag, m in POOLING_FLAGS.items() if cfg.get(flag)] or ["mean"]  # ST: no flag set -> mean
    if isinstance(mode, list):
        mode = mode[0] if len(mode) == 1 else mode
    if mode not in ("mean", "cls"):
        raise ConfigError(f"{file}: pooling mode {mode!r}; {reader} supports 'mean' and 'cls'")
    return mode


def _sae_config(file: Path, max_active_dims: int | None) -> dict:
    cfg = _read_json(file)
    unknown = sorted(set(cfg) - set(SAE_KEYS))
    if unknown or "input_dim" not in cfg:
        raise ConfigError(f"{file}: keys {sorted(cfg)}; expected input_dim and optionally {list(SAE_KEYS[1:])}")
    return {**cfg, "max_active_dims": max_active_dims}


def st_max_seq_length(backbone_dir: Path) -> int | None:
    """The truncation length sentence-transformers uses: ``max_seq_length`` of ``sentence_bert_config.json`` (ST5
    form), else (ST6 form) the tokenizer's ``model_max_length`` capped at the model's ``max_position_embeddings``."""
    st_cfg = backbone_dir / "sentence_bert_config.json"
    if not st_cfg.is_file():
        return None
    length = json.loads(st_cfg.read_text()).get("max_seq_length")
    if length:
        return int(length)
    tok_cfg, model_cfg = backbone_dir / "tokenizer_config.json", backbone_dir / "config.json"
    limits = [json.loads(f.read_text()).get(key) for f, key in ((tok_cfg, "model_max_length"),
                                                                 (model_cfg, "max_position_embeddings")) if f.is_file()]
    limits = [int(v) for v in limits if isinstance(v, (int, float)) and 0 < v < 1e9]
    return min(limits) if limits else None


def csr_settings(path: Path, meta: dict | None = None) -> dict:
    """Settings of a CSR directory: the model parts from the sentence-transformers files (what ST loads too), the
    query/document lengths from our ``meta`` (``splade_lightning.json``) when present, else ST's ``max_seq_length``."""
    layout = read_csr_layout(path)
    settings = dict(meta or {})
    settings.update(architecture="csr", autoencoder=dict(layout.sae_config),
                    dense={"architecture": "dense", "pooling": layout.pooling, "normalize": layout.normalize,
                           "frozen": False})
    if layout.max_seq_length and "max_doc_length" not in settings:
        settings["max_query_length"] = settings["max_doc_length"] = layout.max_seq_length
    return settings


def load_csr_encoder(path: Path) -> CSREncoder:
    """Rebuild a :class:`CSREncoder` from a CSR directory, loading the autoencoder weights strictly.

    Raises:
        ConfigError: a bad layout, an SAE whose ``input_dim`` differs from the backbone's hidden size, missing or
            mismatching SAE weights; the message names the file.
    """
    layout = read_csr_layout(path)
    config_file = layout.sae_dir / "config.json"
    try:
        sae = SparseAutoEncoder(**layout.sae_config)
    except ConfigError as e:
        raise ConfigError(f"{config_file} (+ max_active_dims of {path / ST_CONFIG_FILE}): {e}") from e
    dense = DenseEncoder(str(layout.backbone_dir), pooling=layout.pooling, normalize=layout.normalize, frozen=False)
    if sae.input_dim != dense.embedding_dim:
        raise ConfigError(f"{config_file}: input_dim={sae.input_dim} but the backbone in {layout.backbone_dir} has "
                          f"hidden size {dense.embedding_dim}")
    _load_sae_weights(sae, layout.sae_dir)
    return CSREncoder(dense, sae)


def _load_sae_weights(sae: SparseAutoEncoder, sae_dir: Path) -> None:
    file, legacy = sae_dir / SAE_WEIGHTS, sae_dir / "pytorch_model.bin"
    if file.is_file():
        from safetensors.torch import load_file

        state = load_file(str(file))
    elif legacy.is_file():
        file, state = legacy, torch.load(legacy, map_location="cpu", weights_only=True)
    else:
        raise ConfigError(f"{file}: missing; expected the SparseAutoEncoder weights (pre_bias, encoder.weight or "
                          "decoder.linear.weight, latent_bias, stats_last_nonzero)")
    try:
        sae.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ConfigError(f"{file}: does not match {sae_dir / 'config.json'}: {e}") from e


def hub_csr_snapshot(name: str) -> Path | None:
    """Local snapshot of a hub CSR model (its ``modules.json`` lists a SparseAutoEncoder), else None."""
    try:
        from huggingface_hub import hf_hub_download, snapshot_download

        modules = json.loads(Path(hf_hub_download(name, MODULES_FILE)).read_text())
        if not isinstance(modules, list) or not is_csr_modules(modules):
            return None
        return Path(snapshot_download(name, allow_patterns=["*.json", "*.txt", "*.model", "*.safetensors"]))
    except Exception:  # no such file, no network, not a hub id: not a hub CSR model
        return None
