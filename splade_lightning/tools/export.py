"""``splade-lightning export``: write a trained model (any ``load``-able source) in a layout other tools read.

Examples::

    splade-lightning export --model runs/csr-quickstart/csv/version_0/checkpoints/last.ckpt \\
        --format sentence-transformers --output exported/csr
    splade-lightning export --model runs/if/model --format opensearch --output exported/doc-only
    splade-lightning export --model runs/if/model --format anserini --corpus beir/scifact \\
        --queries beir/scifact/queries.jsonl --quantization 100 --output exported/scifact-impacts

Formats:

- ``sentence-transformers``: a ``SparseEncoder`` directory (``SparseEncoder(path)`` in sentence-transformers 5.x/6.x)
  for SPLADE, CSR and inference-free models (the latter as a ``Router``:
  :mod:`splade_lightning.serialization.st_router`).
- ``opensearch``: OpenSearch's pretrained sparse-model layout (the MLM directory, plus ``idf.json`` for an
  inference-free model) for SPLADE and inference-free models.
- ``anserini``: the ``--corpus`` encoded into Anserini/pyserini ``JsonVectorCollection`` files of integer impacts
  (plus ``queries.tsv`` with ``--queries``), for every architecture (:mod:`splade_lightning.serialization.anserini`).

Every argument is checked before the model is loaded.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Literal

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.formats.beir_files import beir_file
from splade_lightning.formats.outputs import Input, check_dir_output, dir_output, model_input
from splade_lightning.serialization import registry

#: options that only the anserini format takes
ANSERINI_ONLY = ("corpus", "queries", "quantization", "batch_size")


def _inputs(args: argparse.Namespace) -> list[Input]:
    return [model_input(args.model, "--model"), Input(args.corpus, "--corpus", reads=("corpus.jsonl",)),
            Input(args.queries, "--queries", reads=("queries.jsonl",))]


def _check_anserini_args(args: argparse.Namespace) -> None:
    """Collect every problem with the format-specific options; raise one ConfigError naming them."""
    problems = []
    if args.format != "anserini":
        given = [f"--{name}" for name in ANSERINI_ONLY if getattr(args, name) is not None]
        if given:
            problems.append(f"{', '.join(given)} only apply to --format anserini (got --format {args.format})")
    else:
        if args.corpus is None:
            problems.append("--corpus is required with --format anserini: the BEIR directory or corpus JSONL to "
                            "encode")
        for flag, path, kind in (("--corpus", args.corpus, "doc"), ("--queries", args.queries, "query")):
            try:
                if path is not None:
                    beir_file(path, kind)
            except DataError as e:
                problems.append(f"{flag} {e}")
        if args.quantization is not None and not (args.quantization > 0 and math.isfinite(args.quantization)):
            problems.append(f"--quantization {args.quantization}: expected a finite number > 0 (e.g. 100)")
        if args.batch_size is not None and args.batch_size < 1:
            problems.append(f"--batch_size {args.batch_size}: expected an integer >= 1")
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


def export(model: str, format: Literal["sentence-transformers", "opensearch", "anserini"], output: str,
           corpus: str | None = None, queries: str | None = None, quantization: float | None = None,
           batch_size: int | None = None, overwrite: bool = False, progress: bool = True) -> int:
    """Export a trained model to a sentence-transformers or OpenSearch model directory, or encode a corpus into
    Anserini impact files.

    Args:
        model: the model: alias, model directory, HF hub id, or a .ckpt written by fit.
        format: the target layout (see Formats below).
        output: the directory to write (atomically).
        corpus: anserini only (required): the documents to encode with the document route: a BEIR directory (its
            corpus.jsonl) or a JSONL file of {"_id", "title", "text"} records.
        queries: anserini only: queries (a BEIR directory or a JSONL file of {"_id", "text"}) to write as queries.tsv
            in pyserini's impact format.
        quantization: anserini only: impact = round(weight x quantization); zero impacts are dropped (default 100).
        batch_size: anserini only: texts encoded per batch (default 32).
        overwrite: replace an earlier output of splade_lightning at --output (only its own files go; a directory
            holding other files is always refused).
        progress: anserini only: show a progress bar while the corpus is encoded.
    """
    args = argparse.Namespace(**locals())
    output = Path(args.output)
    _check_anserini_args(args)
    check_dir_output(output, "--output", args.overwrite, _inputs(args))
    from splade_lightning.api import load

    model = load(args.model)
    architecture = model.encoder.export_config().get("architecture")
    supported = registry.architecture(architecture, str(args.model)).export_formats
    if args.format not in supported:
        raise ConfigError(f"--format {args.format} cannot hold a {architecture!r} model ({args.model}); formats for "
                          f"{architecture!r} models: {list(supported)}")
    if args.format == "anserini":
        _export_anserini(model, args, output)
    else:
        from splade_lightning.serialization.model_dir import save_encoder

        st_router = args.format == "sentence-transformers" and architecture == "inference_free"
        save_encoder(model.encoder, model.tokenizer, output, model.max_query_length, model.max_doc_length,
                     st_router=st_router, overwrite=args.overwrite, flag="--output", tool="export",
                     inputs=_inputs(args))
    print(f"Exported the {architecture} model {args.model} as {args.format} to {output}", flush=True)
    return 0
