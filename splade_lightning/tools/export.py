"""``splade-lightning export``: write a trained model (any ``load``-able source) in a layout other tools read.

Examples::

    splade-lightning export --model runs/csr-quickstart/csv/version_0/checkpoints/last.ckpt \\
        --format sentence-transformers --output exported/csr
    splade-lightning export --model runs/if/model --format opensearch --output exported/doc-only
    splade-lightning export --model runs/if/model --format anserini --corpus beir/scifact \\
        --queries beir/scifact/queries.jsonl --quantization 100 --output exported/scifact-impacts
    splade-lightning export --model splade-tiny --format qdrant --corpus data/msmarco-trecdl-5k \\
        --queries data/msmarco-trecdl-5k --output exported/msmarco-qdrant

Formats:

- ``sentence-transformers``: a ``SparseEncoder`` directory (``SparseEncoder(path)`` in sentence-transformers 5.x/6.x)
  for SPLADE, CSR and inference-free models (the latter as a ``Router``:
  :mod:`splade_lightning.serialization.st_router`).
- ``opensearch``: OpenSearch's pretrained sparse-model layout (the MLM directory, plus ``idf.json`` for an
  inference-free model) for SPLADE and inference-free models.
- ``onnx``: the whole document encoder (MLM, masked pooling, activation) as ``model.onnx`` for ONNX Runtime, with
  the tokenizer, ``idf.json`` for an inference-free model's queries, and ``--quantize int8`` for a quantised copy
  (:mod:`splade_lightning.serialization.onnx_dir`), for SPLADE and inference-free models.
- ``anserini``: the ``--corpus`` encoded into Anserini/pyserini ``JsonVectorCollection`` files of integer impacts
  (plus ``queries.tsv`` with ``--queries``), for every architecture (:mod:`splade_lightning.serialization.anserini`).
- ``qdrant``: the ``--corpus`` encoded into the REST bodies that create a Qdrant collection with one sparse vector and
  upsert its points (plus ``queries.jsonl`` of query vectors with ``--queries``), loaded by a ``curl`` loop, for every
  architecture (:mod:`splade_lightning.serialization.qdrant`).

``--push_to_hub REPO`` (sentence-transformers only) then uploads ``--output``, its model card (``README.md``)
included, to a Hugging Face Hub model repository.

Every argument is checked before the model is loaded.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.formats.beir_files import beir_file
from splade_lightning.formats.outputs import Input, check_dir_output, dir_output, model_input
from splade_lightning.serialization import registry

if TYPE_CHECKING:
    from splade_lightning.api import SparseModel

#: formats that encode a --corpus (and --queries) instead of writing the model
CORPUS_FORMATS = ("anserini", "qdrant")
#: option -> the formats that take it
FORMAT_OPTIONS = {"corpus": CORPUS_FORMATS, "queries": CORPUS_FORMATS, "batch_size": CORPUS_FORMATS,
                  "quantization": ("anserini",)}


def _inputs(args: argparse.Namespace) -> list[Input]:
    return [model_input(args.model, "--model"), Input(args.corpus, "--corpus", reads=("corpus.jsonl",)),
            Input(args.queries, "--queries", reads=("queries.jsonl",))]


def _misplaced_options(args: argparse.Namespace) -> list[str]:
    """One problem per group of given options that ``--format`` does not take."""
    problems = []
    for formats in dict.fromkeys(FORMAT_OPTIONS.values()):
        given = [f"--{name}" for name, taken in FORMAT_OPTIONS.items()
                 if taken == formats and args.format not in formats and getattr(args, name) is not None]
        if given:
            verb = "applies" if len(given) == 1 else "apply"
            hint = "; qdrant stores the float32 weights" if args.format == "qdrant" else ""
            problems.append(f"{', '.join(given)} only {verb} to --format {' or '.join(formats)} (got --format "
                            f"{args.format}){hint}")
    return problems


def _check_format_args(args: argparse.Namespace) -> None:
    """Collect every problem with the format-specific options; raise one ConfigError naming them."""
    problems = _misplaced_options(args)
    if args.format in CORPUS_FORMATS:
        if args.corpus is None:
            problems.append(f"--corpus is required with --format {args.format}: the BEIR directory or corpus JSONL "
                            "to encode")
        for flag, path, kind in (("--corpus", args.corpus, "doc"), ("--queries", args.queries, "query")):
            try:
                if path is not None:
                    beir_file(path, kind)
            except DataError as e:
                problems.append(f"{flag} {e}")
        quantization = args.quantization if args.format == "anserini" else None
        if quantization is not None and not (quantization > 0 and math.isfinite(quantization)):
            problems.append(f"--quantization {quantization}: expected a finite number > 0 (e.g. 100)")
        if args.batch_size is not None and args.batch_size < 1:
            problems.append(f"--batch_size {args.batch_size}: expected an integer >= 1")
    if args.push_to_hub is not None and args.format != "sentence-transformers":
        problems.append(f"--push_to_hub only applies to --format sentence-transformers (got --format {args.format}): "
                        "the Hub repository is a sentence-transformers SparseEncoder")
    elif args.push_to_hub is not None:
        from huggingface_hub.errors import HFValidationError
        from huggingface_hub.utils import validate_repo_id

        try:
            validate_repo_id(args.push_to_hub)
        except HFValidationError as e:
            problems.append(f"--push_to_hub {args.push_to_hub!r}: expected a Hub repository id 'owner/name' ({e})")
    if args.private and args.push_to_hub is None:
        problems.append("--private only applies with --push_to_hub REPO (the repository to create)")
    if args.quantize is not None and args.format != "onnx":
        problems.append(f"--quantize only applies to --format onnx (got --format {args.format}); --quantization is "
                        "the anserini impact scale")
    if problems:
        raise ConfigError("; ".join(problems))


def _export_anserini(model, args: argparse.Namespace, output: Path) -> None:
    from splade_lightning.serialization.anserini import export_corpus, export_queries, write_info

    quantization = 100.0 if args.quantization is None else args.quantization
    batch_size = args.batch_size or 32
    with dir_output(output, "--output", "export", args.overwrite, _inputs(args)) as tmp:
        n_docs = export_corpus(model, args.corpus, tmp, quantization, batch_size, progress=args.progress)
        n_queries = None if args.queries is None else export_queries(model, args.queries, tmp, quantization,
                                                                     batch_size)
        write_info(tmp, output, str(args.model), quantization, n_docs, n_queries)


def _export_qdrant(model: SparseModel, args: argparse.Namespace, output: Path) -> None:
    from splade_lightning.serialization.qdrant import export_corpus, export_queries, write_info

    batch_size = args.batch_size or 32
    with dir_output(output, "--output", "export", args.overwrite, _inputs(args)) as tmp:
        n_docs, n_files = export_corpus(model, args.corpus, tmp, batch_size, progress=args.progress)
        n_queries = None if args.queries is None else export_queries(model, args.queries, tmp, batch_size)
        write_info(tmp, output, str(args.model), n_docs, n_files, n_queries)


def export(model: str, format: Literal["sentence-transformers", "opensearch", "anserini", "onnx", "qdrant"],
           output: str, corpus: str | None = None, queries: str | None = None, quantization: float | None = None,
           batch_size: int | None = None, quantize: Literal["int8"] | None = None, overwrite: bool = False,
           progress: bool = True, push_to_hub: str | None = None, private: bool = False) -> int:
    """Export a trained model to a sentence-transformers or OpenSearch model directory, or encode a corpus into
    Anserini impact files or Qdrant points.

    Args:
        model: the model: alias, model directory, HF hub id, or a .ckpt written by fit.
        format: the target layout (see Formats below).
        output: the directory to write (atomically).
        corpus: anserini and qdrant only (required): the documents to encode with the document route: a BEIR
            directory (its corpus.jsonl) or a JSONL file of {"_id", "title", "text"} records.
        queries: anserini and qdrant only: queries (a BEIR directory or a JSONL file of {"_id", "text"}) to encode
            with the query route: queries.tsv in pyserini's impact format (anserini) or queries.jsonl of
            {"_id", "indices", "values"} (qdrant).
        quantization: anserini only: impact = round(weight x quantization); zero impacts are dropped (default 100).
        batch_size: anserini and qdrant only: texts encoded per batch (default 32).
        quantize: onnx only: int8 also writes model_int8.onnx, the graph with dynamically int8-quantised weights
            (onnxruntime's quantize_dynamic).
        overwrite: replace an earlier output of splade_lightning at --output (only its own files go; a directory
            holding other files is always refused).
        progress: anserini and qdrant only: show a progress bar while the corpus is encoded.
        push_to_hub: sentence-transformers only: also upload --output, model card included, to this Hugging Face Hub
            model repository (owner/name; created if missing; token from HF_TOKEN or `hf auth login`; endpoint
            HF_ENDPOINT).
        private: with --push_to_hub: create the repository private (an existing one keeps its visibility).
    """
    args = argparse.Namespace(**locals())
    output = Path(args.output)
    _check_format_args(args)
    check_dir_output(output, "--output", args.overwrite, _inputs(args))
    from splade_lightning.api import load

    model = load(args.model)
    architecture = model.encoder.export_config().get("architecture")
    supported = registry.architecture(architecture, str(args.model)).export_formats
    if args.format not in supported:
        raise ConfigError(f"--format {args.format} cannot hold a {architecture!r} model ({args.model}); formats for "
                          f"{architecture!r} models: {list(supported)}")
    if args.format == "opensearch" and any(model.prompts.values()):
        raise ConfigError(f"--format opensearch: {args.model} has prompts {model.prompts}, which OpenSearch's sparse "
                          "model layout cannot hold (OpenSearch would encode without them); export as "
                          "sentence-transformers or onnx, which keep them")
    if args.format == "anserini":
        _export_anserini(model, args, output)
    elif args.format == "qdrant":
        _export_qdrant(model, args, output)
    elif args.format == "onnx":
        from splade_lightning.serialization.onnx_dir import write_onnx_dir

        write_onnx_dir(model.encoder, model.tokenizer, output, model.max_query_length, model.max_doc_length,
                       quantize=args.quantize, overwrite=args.overwrite, inputs=_inputs(args), prompts=model.prompts)
    else:
        from splade_lightning.serialization.model_card import CardContext
        from splade_lightning.serialization.model_dir import save_encoder

        st_router = args.format == "sentence-transformers" and architecture == "inference_free"
        card = CardContext.carried_from(model.source, name=args.push_to_hub or str(output))
        save_encoder(model.encoder, model.tokenizer, output, model.max_query_length, model.max_doc_length,
                     st_router=st_router, overwrite=args.overwrite, flag="--output", tool="export",
                     inputs=_inputs(args), card=card, prompts=model.prompts)
    print(f"Exported the {architecture} model {args.model} as {args.format} to {output}", flush=True)
    if args.push_to_hub is not None:
        from splade_lightning.hub import upload_dir

        url = upload_dir(output, args.push_to_hub, private=args.private or None)
        print(f"Uploaded {output} to the Hugging Face Hub: {url}", flush=True)
    return 0
