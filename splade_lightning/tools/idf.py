"""``python -m splade_lightning idf``: compute a corpus's IDF table (OpenSearch ``idf.json``) and compare tables.

Examples::

    python -m splade_lightning idf --corpus data/scifact --out runs/scifact_idf.json
    python -m splade_lightning idf --corpus data/scifact --out idf.json --compare opensearch/idf.json --min_df 2
    python -m splade_lightning idf --compare opensearch/idf.json runs/scifact_idf.json

Every argument is checked before the corpus is read; errors are raised as
:class:`~splade_lightning.errors.SpladeLightningError` for the caller to print.
"""

from __future__ import annotations

import argparse

import numpy as np

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.formats.beir import beir_file
from splade_lightning.formats.idf_json import read_idf_json, write_idf_json
from splade_lightning.formats.outputs import Input, check_file_output, model_input
from splade_lightning.hub import load_tokenizer
from splade_lightning.idf.compare import compare_idf, format_comparison
from splade_lightning.idf.corpus import corpus_idf


def build_parser() -> argparse.ArgumentParser:
    """The ``idf`` subcommand's argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m splade_lightning idf",
        description="Compute the smoothed IDF log((N+1)/(df+1))+1 of every token over a corpus and write it as an "
                    "OpenSearch idf.json, and/or compare IDF tables.",
    )
    parser.add_argument("--corpus", metavar="PATH", help="BEIR directory (reads corpus.jsonl) or JSONL file of "
                        '{"_id", "title", "text"} records')
    parser.add_argument("--out", metavar="FILE", help="idf.json to write (required with --corpus)")
    parser.add_argument("--model", metavar="NAME_OR_PATH", default="splade-tiny",
                        help="tokenizer: alias, model directory or HF hub id (default: splade-tiny, BERT-uncased)")
    parser.add_argument("--batch_size", type=int, default=1024, help="documents per tokenizer call (default 1024)")
    parser.add_argument("--compare", nargs="+", metavar="TABLE",
                        help="with --corpus: one reference table to compare the new table against; without: two "
                             "tables A B, B is compared against A")
    parser.add_argument("--top", type=int, default=20, help="tokens listed per direction in the comparison")
    parser.add_argument("--min_df", type=int, default=1,
                        help="with --corpus --compare: only tokens in at least this many documents are compared")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    return parser


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> list[dict[str, float]]:
    """Check every argument; return the ``--compare`` tables, read and validated."""
    compare = args.compare or []
    if len(compare) > 2:
        parser.error(f"--compare takes one or two tables, got {len(compare)}")
    if args.corpus is not None:
        if args.out is None:
            parser.error("--corpus needs --out FILE, the idf.json to write")
        if len(compare) > 1:
            parser.error("with --corpus, --compare takes one reference table (the new table is compared against it)")
    elif len(compare) != 2:
        parser.error("expected --corpus PATH --out FILE [--compare REF], or --compare A B")
    elif args.out is not None:
        parser.error("--out needs --corpus; --compare A B only prints the comparison")
    for name, low in (("batch_size", 1), ("top", 1), ("min_df", 0)):
        if getattr(args, name) < low:
            raise ConfigError(f"--{name} must be >= {low}, got {getattr(args, name)}")
    if args.corpus is not None:
        beir_file(args.corpus, "doc")
        inputs = [Input(args.corpus, "--corpus", reads=("corpus.jsonl",)), model_input(args.model, "--model"),
                  *(Input(path, "--compare") for path in compare)]
        check_file_output(args.out, "--out", args.overwrite, "the idf.json file to write", inputs)
    return [read_idf_json(path) for path in compare]


def main(argv: list[str] | None = None) -> int:
    """Run the ``idf`` subcommand; return 0 on success.

    Raises:
        SystemExit: bad command-line syntax (argparse prints the usage).
        DataError, ConfigError: a missing or malformed corpus / table, a bad argument value.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    tables = _check_args(parser, args)
    if args.corpus is None:
        a, b = tables
        print(format_comparison(compare_idf(a, b, top=args.top), name_a=args.compare[0], name_b=args.compare[1]))
        return 0
    tokenizer = load_tokenizer(args.model)
    table, df, n_docs = corpus_idf(args.corpus, tokenizer, batch_size=args.batch_size, progress=not args.no_progress)
    out = write_idf_json(table, None, args.out)
    print(f"wrote {len(table)} tokens from {n_docs} documents to {out}")
    if tables:
        ids = np.nonzero(df >= args.min_df)[0].tolist()
        tokens = {t for t in tokenizer.convert_ids_to_tokens(ids) if t is not None}
        if not tokens:
            raise DataError(f"no token occurs in at least --min_df {args.min_df} of the {n_docs} documents; "
                            "nothing to compare", path=args.corpus)
        cmp = compare_idf(tables[0], table, top=args.top, tokens=tokens)
        print(f"\ncomparing tokens with df >= {args.min_df} ({len(tokens)} tokens)")
        print(format_comparison(cmp, name_a=args.compare[0], name_b=f"{args.corpus} (new table)"))
    return 0
