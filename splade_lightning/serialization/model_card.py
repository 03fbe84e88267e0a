"""Model cards: the ``README.md`` written into every model directory (``fit``'s export, :meth:`SparseModel.save`,
``splade-lightning export``, :meth:`SparseModel.push_to_hub`).

The card has Hugging Face YAML front matter (the keys sentence-transformers 6.2 writes for a ``SparseEncoder``,
``sentence_transformers/sparse_encoder/model_card.py``: ``library_name``, ``pipeline_tag``, ``tags``, ``base_model``,
``datasets``, ``license``, ``model-index``) and a human part: architecture, usage, and, when the model comes from a
``fit`` run, the command, the resolved config, the losses and λ, the evaluation table and the sparsity statistics.
Only what is known is written: a model saved outside ``fit`` gets no training or evaluation section.

What is known beyond the weights (:class:`CardContext`) is also stored as ``model_card.json``, so that saving or
exporting a loaded model again carries it over. This module holds the facts and the front matter;
:mod:`splade_lightning.serialization.model_card_text` renders and writes the card. Pure Python: no torch, no
Lightning.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

__all__ = ["CARD_FILE", "CONTEXT_FILE", "TITLES", "CardContext", "CardFacts", "front_matter", "hub_id",
           "model_index", "own_results", "read_front_matter"]

TITLES = {"splade": "SPLADE", "inference_free": "Inference-free SPLADE", "router": "Router (asymmetric) SPLADE",
          "csr": "CSR"}
CARD_FILE = "README.md"
CONTEXT_FILE = "model_card.json"
TAGS = {"splade": ("splade",), "inference_free": ("asymmetric", "inference-free", "splade"),
        "router": ("asymmetric", "splade"), "csr": ("csr",)}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[A-Za-z0-9][\w.\-]*$")


@dataclass(frozen=True)
class CardContext:
    """What is known about a model beyond its weights and settings.

    Attributes:
        name: how the usage examples name the model (a hub repo id or a directory); None: ``PATH``.
        base_model: the hub id of the model it was fine-tuned from (or of the model itself, unmodified).
        license: the license of the weights, when a card of the same weights stated one.
        datasets: hub ids of the training datasets.
        command: the training command line.
        config: the resolved training config (YAML text, as ``fit`` saves it).
        results: the last evaluation: ``{label: {dataset: {metric: value}}}`` (the shape of ``report.json``, e.g.
            ``zero-shot`` and ``fine-tuned``); the last label is the model's own.
        weights: which weights of the run were saved: ``report.json``'s ``weights`` entry (``{"selected": "best",
            "step", "monitor", "mode", "value", "checkpoint"}`` or ``{"selected": "last", "step"}``).
    """

    name: str | None = None
    base_model: str | None = None
    license: str | None = None
    datasets: tuple[str, ...] = ()
    command: str | None = None
    config: str | None = None
    results: Mapping | None = None
    weights: Mapping | None = None

    def to_json(self) -> str:
        """The context as ``model_card.json`` holds it (without ``name``, which belongs to one card)."""
        return json.dumps({k: v for k, v in asdict(self).items() if k != "name"}, indent=2)

    @classmethod
    def carried_from(cls, source: str | Path | None, name: str | None = None) -> CardContext:
        """The context stored in model directory ``source`` (``model_card.json``), else what the front matter of
        its ``README.md`` states about the same weights (``license``); empty for anything else (a hub id, a
        ``.ckpt``, an alias without a card)."""
        directory = Path(source) if source is not None else None
        if directory is None or not directory.is_dir():
            return cls(name=name)
        stored = directory / CONTEXT_FILE
        if stored.is_file():
            data = json.loads(stored.read_text(encoding="utf-8"))
            keys = ("base_model", "license", "command", "config", "results", "weights")
            known = {k: data[k] for k in keys if k in data}
            return cls(name=name, datasets=tuple(data.get("datasets") or ()), **known)
        meta = read_front_matter(directory / CARD_FILE)
        license_ = meta.get("license")
        return cls(name=name, license=license_ if isinstance(license_, str) else None)


@dataclass(frozen=True)
class CardFacts:
    """Everything a card shows.

    Attributes:
        encoder: the encoder's ``export_config()`` (``architecture``, pooling, ...).
        dimensions: the output width V (the vocabulary; CSR: the number of latents).
        max_query_length: query truncation in tokens.
        max_doc_length: document truncation in tokens.
        backbone: the backbone's name or directory, as the encoder records it.
        sentence_transformers: whether ``SparseEncoder(dir)`` loads the directory (False for OpenSearch's
            inference-free layout).
        context: what is known beyond the weights.
        version: the splade_lightning version that wrote the card.
    """

    encoder: Mapping
    dimensions: int
    max_query_length: int
    max_doc_length: int
    backbone: str | None = None
    sentence_transformers: bool = True
    context: CardContext = field(default_factory=CardContext)
    version: str | None = None

    @property
    def architecture(self) -> str:
        return str(self.encoder.get("architecture", "splade"))

    @property
    def base_model(self) -> str | None:
        return self.context.base_model or hub_id(self.backbone)

    @property
    def title(self) -> str:
        base = f" based on {self.base_model}" if self.base_model else ""
        return f"{TITLES.get(self.architecture, self.architecture)} sparse encoder{base}"


def hub_id(name: str | None) -> str | None:
    """``name`` when it reads as a hub id (``owner/name``) and is not a local path; else None."""
    if not name or not _HUB_ID.match(name) or Path(name).exists():
        return None
    return name


def read_front_matter(path: Path) -> dict:
    """The YAML front matter of a card (``{}`` when there is none or it does not parse)."""
    if not path.is_file():
        return {}
    text = path.read_text(encoding="utf-8", errors="replace")
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", text, flags=re.DOTALL)
    try:
        meta = yaml.safe_load(match.group(1)) if match else None
    except yaml.YAMLError:
        return {}
    return meta if isinstance(meta, dict) else {}


def own_results(results: Mapping | None) -> Mapping:
    """``{dataset: {metric: value}}`` of the model itself: the last non-empty label of a report."""
    runs = [r for r in (results or {}).values() if r]
    return runs[-1] if runs else {}


def model_index(name: str, results: Mapping | None) -> list[dict]:
    """The ``model-index`` entry of a report: one result per evaluation set (not the ``mean`` over sets), with every
    numeric metric, in the shape of ``huggingface_hub``'s ``eval_results_to_model_index``."""
    entries = []
    for dataset, metrics in own_results(results).items():
        if dataset == "mean":
            continue
        values = [{"type": key, "value": float(value), "name": key.replace("_", " ")}
                  for key, value in metrics.items() if isinstance(value, int | float) and not isinstance(value, bool)]
        if values:
            entries.append({"task": {"type": "sparse-information-retrieval", "name": "Sparse Information Retrieval"},
                            "dataset": {"name": dataset, "type": dataset}, "metrics": values})
    return [{"name": name, "results": entries}] if entries else []


def front_matter(facts: CardFacts) -> dict:
    """The card's YAML metadata (keys in sentence-transformers' order; unknown ones left out)."""
    ctx = facts.context
    meta: dict = {}
    if ctx.license:
        meta["license"] = ctx.license
    if facts.sentence_transformers:
        meta["library_name"] = "sentence-transformers"
    tags = ["sentence-transformers"] if facts.sentence_transformers else []
    meta["tags"] = [*tags, "sparse-encoder", "sparse", *TAGS.get(facts.architecture, ()), "splade-lightning"]
    if ctx.datasets:
        meta["datasets"] = list(ctx.datasets)
    meta["pipeline_tag"] = "feature-extraction"
    if facts.base_model:
        meta["base_model"] = facts.base_model
    index = model_index(facts.title, ctx.results)
    if index:
        meta["model-index"] = index
    return meta
