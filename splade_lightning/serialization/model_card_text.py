"""Render and write a model card: the front matter of :mod:`splade_lightning.serialization.model_card`, then the human
part (Markdown): what the model is, how to use it, and, when known, how it was trained and how it scored. Pure Python:
no torch, no Lightning."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import yaml

from splade_lightning.formats.report import format_table
from splade_lightning.serialization.model_card import (
    CARD_FILE,
    CONTEXT_FILE,
    TITLES,
    CardFacts,
    front_matter,
    own_results,
)

__all__ = ["SPARSITY", "body_lines", "objective", "render_card", "write_card"]

#: the sparsity columns of a report, with their card headings
SPARSITY = {"active_dims_query": "active dims (query)", "active_dims_doc": "active dims (document)", "flops": "FLOPS"}


def objective(config_text: str | None) -> list[tuple[str, str]]:
    """``(setting, value)`` rows of the training objective in a resolved ``fit`` config: the loss, the regularizers
    and their weights λ (``*_reg_weight``), CSR's ``beta``/``gamma``, and the regularizer warm-up callback."""
    try:
        config = yaml.safe_load(config_text or "") or {}
    except yaml.YAMLError:
        return []
    model = (config.get("model") or {}) if isinstance(config, dict) else {}
    args = model.get("init_args") or {} if isinstance(model, dict) else {}
    rows = [(key, _component(value)) for key, value in args.items()
            if value is not None and (key == "loss" or key.endswith(("_regularizer", "_reg_weight"))
                                      or key in ("beta", "gamma"))]
    trainer = config.get("trainer") if isinstance(config, dict) else None
    callbacks = (trainer.get("callbacks") or []) if isinstance(trainer, dict) else []
    callbacks = [callbacks] if isinstance(callbacks, dict) else callbacks
    rows += [("callback", _component(c)) for c in callbacks if isinstance(c, dict)
             and str(c.get("class_path", "")).rsplit(".", 1)[-1] in ("RegularizerWarmup", "SparsityController")]
    return rows


def _component(value) -> str:
    """``Class(arg=value, ...)`` for a ``class_path``/``init_args`` entry; the value itself otherwise."""
    if isinstance(value, dict) and "class_path" in value:
        args = ", ".join(f"{k}={v}" for k, v in (value.get("init_args") or {}).items())
        return f"{str(value['class_path']).rsplit('.', 1)[-1]}({args})"
    return str(value)


_ACTIVATIONS = {"relu": "log(1 + relu(x))", "log1p_relu": "log(1 + log(1 + relu(x)))"}


def _splade_lines(settings: Mapping, side: str = "") -> list[str]:
    pooling, activation = settings.get("pooling", "max"), settings.get("activation", "relu")
    return [f"- **{side}Encoder:** masked-LM logits of every token, activation `{activation}` "
            f"(`{_ACTIVATIONS.get(activation, activation)}`), pooled over the tokens by `{pooling}`"]


def _route_lines(enc: Mapping) -> list[str]:
    """One line per route of a Router, then which route queries, documents and unnamed texts take."""
    routes, task_routes = enc.get("routes") or {}, enc.get("task_routes") or {}
    lines = []
    for name, settings in routes.items():
        if settings.get("architecture") == "splade":
            lines += _splade_lines(settings, f"Route `{name}`: ")
        else:
            lines.append(f"- **Route `{name}`: Encoder:** `{settings.get('architecture')}`: one learned weight per "
                         "vocabulary token, no transformer")
    query, doc = task_routes.get("query", "query"), task_routes.get("document", "document")
    lines.append(f"- **Routing:** queries -> `{query}`, documents -> `{doc}`, texts without a task -> "
                 f"`{enc.get('default_route')}` (sentence-transformers `Router`)")
    return lines


def _architecture_lines(facts: CardFacts) -> list[str]:
    enc, arch = facts.encoder, facts.architecture
    lines = [f"- **Architecture:** {TITLES.get(arch, arch)}"]
    if arch == "splade":
        lines += _splade_lines(enc)
    elif arch == "inference_free":
        query = enc.get("query") or {}
        lines += [f"- **Query encoder:** `{query.get('architecture', 'static')}`: one learned weight per vocabulary "
                  "token, no transformer at query time"]
        lines += _splade_lines(enc.get("doc") or {}, "Document ")
    elif arch == "router":
        lines += _route_lines(enc)
    elif arch == "csr":
        dense, sae = enc.get("dense") or {}, enc.get("autoencoder") or {}
        lines += [f"- **Dense backbone:** `{dense.get('pooling', '?')}` pooling, normalize={dense.get('normalize')}",
                  f"- **Sparse autoencoder:** {sae.get('input_dim')} -> {sae.get('hidden_dim')} latents, TopK "
                  f"k={sae.get('k')}, max_active_dims={sae.get('max_active_dims')}"]
    what = "latents" if arch == "csr" else "the vocabulary"
    lines += [f"- **Output dimensionality:** {facts.dimensions} ({what})", "- **Similarity:** dot product",
              f"- **Maximum query length:** {facts.max_query_length} tokens",
              f"- **Maximum document length:** {facts.max_doc_length} tokens"]
    if facts.backbone:
        lines.append(f"- **Backbone:** `{facts.backbone}`")
    if facts.base_model:
        lines.append(f"- **Base model:** [{facts.base_model}](https://huggingface.co/{facts.base_model})")
    if facts.context.license:
        lines.append(f"- **License:** {facts.context.license}")
    return lines


def _usage(facts: CardFacts) -> list[str]:
    name = json.dumps(facts.context.name or "PATH")
    ours = ["```python", "import splade_lightning", "", f"model = splade_lightning.load({name})",
            'queries = model.encode_query(["what does splade do"])        # sparse COO (N, V)',
            'docs = model.encode_document(["SPLADE expands documents with related terms."])',
            "scores = queries @ docs.to_dense().T", "model.decode(docs[0], top_k=5)  # [(token, weight), ...]", "```"]
    if not facts.sentence_transformers:
        return ["This directory is in OpenSearch's inference-free layout (the document masked LM plus `idf.json`, the "
                "query weights); `splade-lightning export --format sentence-transformers` writes it as a "
                "sentence-transformers `SparseEncoder` directory.", "", "With splade_lightning:", "", *ours]
    return ["With sentence-transformers (5.x or 6.x):", "", "```python", "from sentence_transformers import "
            "SparseEncoder", "", f"model = SparseEncoder({name})",
            'queries = model.encode_query(["what does splade do"])',
            'docs = model.encode_document(["SPLADE expands documents with related terms."])',
            "scores = model.similarity(queries, docs)", "```", "", "With splade_lightning:", "", *ours]


def _training(facts: CardFacts) -> list[str]:
    ctx = facts.context
    if not (ctx.command or ctx.config):
        return []
    lines = ["## Training", ""]
    if ctx.command:
        lines += ["Trained with splade_lightning:", "", "```bash", ctx.command, "```", ""]
    rows = objective(ctx.config)
    if rows:
        lines += ["Losses and regularization, from the resolved config (λ: the `*_reg_weight` settings):", "",
                  "| setting | value |", "|---|---|", *[f"| `{key}` | `{value}` |" for key, value in rows], ""]
    if ctx.config:
        lines += ["<details><summary>Resolved config</summary>", "", "```yaml", ctx.config.rstrip(), "```", "",
                  "</details>", ""]
    return lines


def _saved(weights: Mapping | None) -> str:
    """What the saved weights of a run are, for the evaluation paragraph."""
    if not weights:
        return "the saved weights"
    if weights.get("selected") == "best":
        return (f"the saved weights, the run's best checkpoint by `{weights['monitor']}` ({weights['mode']}, "
                f"{weights['value']:.4f} at step {weights['step']})")
    return f"the saved weights, the last (step {weights['step']})"


def _evaluation(facts: CardFacts) -> list[str]:
    results = facts.context.results
    own = own_results(results)
    if not own:
        return []
    saved = _saved(facts.context.weights)
    labels = f"; `zero-shot`: before training, `fine-tuned`: {saved}" if "fine-tuned" in results else ""
    lines = ["## Evaluation", "", "Retrieval results of the training run's evaluation (exact dot-product search"
             f"{labels}):", "", format_table(results), ""]
    rows = [f"| {name} | " + " | ".join("-" if m.get(k) is None else f"{m[k]:.1f}" for k in SPARSITY) + " |"
            for name, m in own.items() if any(k in m for k in SPARSITY) and (name != "mean" or len(own) > 2)]
    if rows:
        lines += ["### Sparsity", "", "Mean number of non-zero dimensions per encoded text, and FLOPS (the expected "
                  "number of multiply-adds per query-document score in an inverted index), of the saved weights:", "",
                  "| dataset | " + " | ".join(SPARSITY.values()) + " |", "|---" * (len(SPARSITY) + 1) + "|", *rows, ""]
    return lines



def body_lines(facts: CardFacts) -> list[str]:
    """The lines of the card after its front matter."""
    saved = f"splade_lightning {facts.version}" if facts.version else "splade_lightning"
    known = facts.context.command or facts.context.config or own_results(facts.context.results)
    body = [f"# {facts.title}", "",
            f"A learned sparse retrieval model: it maps a text to a {facts.dimensions}-dimensional sparse vector; "
            f"queries and documents are scored by the dot product of their vectors. Saved by {saved}.", "",
            "## Model details", "", *_architecture_lines(facts), "", "## Usage", "", *_usage(facts), "",
            *_training(facts), *_evaluation(facts)]
    return body if known else [*body, "No training run or evaluation is recorded with this model.", ""]


def render_card(facts: CardFacts) -> str:
    """The whole ``README.md``: YAML front matter, then the human part (:func:`body_lines`)."""
    meta = yaml.safe_dump(front_matter(facts), sort_keys=False, allow_unicode=True).rstrip()
    return f"---\n{meta}\n---\n\n" + "\n".join(body_lines(facts)).rstrip() + "\n"


def write_card(directory: Path, facts: CardFacts) -> None:
    """Write ``README.md`` and ``model_card.json`` into ``directory``, a directory being written by this program
    (the temporary directory of :func:`~splade_lightning.formats.outputs.dir_output`).

    Raises:
        FileExistsError: ``directory`` already holds a ``README.md`` (never replaced).
    """
    card = Path(directory) / CARD_FILE
    if card.exists():
        raise FileExistsError(f"{card} exists; a model card never replaces a README.md it did not write")
    card.write_text(render_card(facts), encoding="utf-8")
    (Path(directory) / CONTEXT_FILE).write_text(facts.context.to_json() + "\n", encoding="utf-8")
