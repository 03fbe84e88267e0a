"""``python -m splade_lightning export``: write a trained model (any ``load``-able source) in a layout other tools read.

Examples::

    python -m splade_lightning export --model runs/csr-quickstart/csv/version_0/checkpoints/last.ckpt \\
        --format sentence-transformers --output exported/csr
    python -m splade_lightning export --model runs/if/model --format opensearch --output exported/doc-only
    python -m splade_lightning export --model runs/if/model --format anserini --corpus beir/scifact \\
        --queries beir/scifact/queries.jsonl --quantization 100 --output exported/scifact-impacts

Formats:

- ``sentence-transformers``: a ``SparseEncoder`` directory (``SparseEncoder(path)`` in sentence-transformers 5.x/6.x)
  for SPLADE, CSR and inference-free models (the latter as a ``Router``: ``models/router_serialization.py``).
- ``opensearch``: OpenSearch's pretrained sparse-model layout (the MLM directory, plus ``idf.json`` for an
  inference-free model) for SPLADE and inference-free models.
- ``anserini``: the ``--corpus`` encoded into Anserini/pyserini ``JsonVectorCollection`` files of integer impacts
  (plus ``queries.tsv`` with ``--queries``), for every architecture (``export_anserini.py``).

Every argument is checked before the model is loaded; errors are raised as
:class:`~splade_lightning.errors.SpladeLightningError` for the caller to print.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.formats.beir import beir_file
from splade_lightning.formats.outputs import Input, check_dir_output, dir_output, model_input

#: format -> architectures it can hold
FORMATS = {"sentence-transformers": ("splade", "csr", "inference_free"), "opensearch": ("splade", "inference_free"),
           "anserini": ("splade", "csr", "inference_free")}
#: options that only the anserini format takes
ANSERINI_ONLY = ("corpus", "queries", "quantization", "batch_size")


def build_parser() -> argparse.ArgumentParser:
    """The ``export`` subcommand's argument parser."""
    parser = argparse.ArgumentParser(prog="python -m splade_lightning export",
                                     description="Export a trained model to a sentence-transformers or OpenSearch "
                                                 "model directory, or encode a corpus into Anserini impact files.")
    parser.add_argument("--model", required=True, metavar="NAME_OR_PATH",
                        help="alias, model directory, HF hub id, or a .ckpt written by fit")
    parser.add_argument("--format", required=True, choices=sorted(FORMATS), help="target layout")
    parser.add_argument("--output", required=True, metavar="DIR", help="directory to write (atomically)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier output of splade_lightning at --output (only its own files go; a "
                             "directory holding other files is always refused)")
    anserini = parser.add_argument_group("anserini", "options of --format anserini only")
    anserini.add_argument("--corpus", metavar="PATH", help="BEIR directory (its corpus.jsonl) or a JSONL file of "
                          '{"_id", "title"?, "text"} records to encode with the document route (required)')
    anserini.add_argument("--queries", metavar="PATH", help="BEIR directory (its queries.jsonl) or a JSONL file of "
                          '{"_id", "text"} queries to write as queries.tsv in pyserini\'s impact format')
    anserini.add_argument("--quantization", type=float, metavar="Q",
                          help="impact = round(weight x Q); zero impacts are dropped (default 100)")
    anserini.add_argument("--batch_size", type=int, metavar="N", help="texts encoded per batch (default 32)")
    return parser


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
        n_docs = export_corpus(model, args.corpus, tmp, quantization, batch_size)
        n_queries = None if args.queries is None else export_queries(model, args.queries, tmp, quantization,
                                                                     batch_size)
        write_info(tmp, output, str(args.model), quantization, n_docs, n_queries)


def main(argv: list[str]) -> int:
    """Run the subcommand; returns the exit status."""
    args = build_parser().parse_args(argv)
    output = Path(args.output)
    _check_anserini_args(args)
    check_dir_output(output, "--output", args.overwrite, _inputs(args))
    from splade_lightning.api import load

    model = load(args.model)
    architecture = model.encoder.export_config().get("architecture")
    if architecture not in FORMATS[args.format]:
        supported = [f for f, archs in FORMATS.items() if architecture in archs]
        raise ConfigError(f"--format {args.format} cannot hold a {architecture!r} model ({args.model}); formats for "
                          f"{architecture!r} models: {supported}")
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
