"""``python -m splade_lightning export``: write a trained model (any ``load``-able source) in a layout other tools read.

Examples::

    python -m splade_lightning export --model runs/csr-quickstart/csv/version_0/checkpoints/last.ckpt \\
        --format sentence-transformers --output exported/csr
    python -m splade_lightning export --model runs/if/model --format opensearch --output exported/doc-only

Formats:

- ``sentence-transformers``: a ``SparseEncoder`` directory (``SparseEncoder(path)`` in sentence-transformers 5.x/6.x)
  for SPLADE and CSR models.
- ``opensearch``: OpenSearch's pretrained sparse-model layout (the MLM directory, plus ``idf.json`` for an
  inference-free model) for SPLADE and inference-free models.

Every argument is checked before the model is loaded; errors are raised as
:class:`~splade_lightning.errors.SpladeLightningError` for the caller to print.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .errors import ConfigError

#: format -> architectures it can hold
FORMATS = {"sentence-transformers": ("splade", "csr"), "opensearch": ("splade", "inference_free")}


def build_parser() -> argparse.ArgumentParser:
    """The ``export`` subcommand's argument parser."""
    parser = argparse.ArgumentParser(prog="python -m splade_lightning export",
                                     description="Export a trained model to a sentence-transformers or OpenSearch "
                                                 "model directory.")
    parser.add_argument("--model", required=True, metavar="NAME_OR_PATH",
                        help="alias, model directory, HF hub id, or a .ckpt written by fit")
    parser.add_argument("--format", required=True, choices=sorted(FORMATS), help="target layout")
    parser.add_argument("--output", required=True, metavar="DIR", help="directory to write (atomically)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing non-empty --output")
    return parser


def _check_output(output: Path, overwrite: bool) -> None:
    if output.exists() and not output.is_dir():
        raise ConfigError(f"--output {output} is a file; expected a directory to write the model into")
    if output.is_dir() and any(output.iterdir()) and not overwrite:
        raise ConfigError(f"--output {output} exists and is not empty; pass --overwrite to replace it")


def main(argv: list[str]) -> int:
    """Run the subcommand; returns the exit status."""
    args = build_parser().parse_args(argv)
    output = Path(args.output)
    _check_output(output, args.overwrite)
    from .api import load

    model = load(args.model)
    architecture = model.encoder.export_config().get("architecture")
    if architecture not in FORMATS[args.format]:
        supported = [f for f, archs in FORMATS.items() if architecture in archs]
        raise ConfigError(f"--format {args.format} cannot hold a {architecture!r} model ({args.model}); formats for "
                          f"{architecture!r} models: {supported}")
    model.save(output)
    print(f"Exported the {architecture} model {args.model} as {args.format} to {output}", flush=True)
    return 0
