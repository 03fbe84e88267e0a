"""``python -m splade_lightning search``: encode queries and retrieve from an index written by ``index``.

Examples::

    python -m splade_lightning search --index runs/idx --queries data/msmarco-trecdl-5k --model splade-tiny \\
        --output runs/dl.trec
    python -m splade_lightning search --index runs/idx --queries queries.jsonl --model splade-tiny \\
        --output runs/dl-seismic.trec --method seismic --k 100

``--method exact`` scores every document (:func:`~splade_lightning.index.exact_search`, on ``--device``);
``--method seismic`` builds a Seismic index from the stored vectors on first use, caches it in ``<index>/seismic/``
and searches it approximately. Every argument is checked before the index and the model are loaded; errors are raised
as :class:`~splade_lightning.errors.SpladeLightningError` for the caller to print.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from splade_lightning.devices import resolve_device
from splade_lightning.errors import ConfigError
from splade_lightning.formats.beir import read_queries
from splade_lightning.formats.fingerprints import model_fingerprint
from splade_lightning.formats.index_store import INDEX_FILE, read_index_json
from splade_lightning.formats.outputs import MANIFEST, Input, check_file_output, model_input, read_manifest
from splade_lightning.retrieval.seismic import SeismicParams


def build_parser() -> argparse.ArgumentParser:
    """The ``search`` subcommand's argument parser."""
    defaults = SeismicParams()
    parser = argparse.ArgumentParser(prog="python -m splade_lightning search",
                                     description="Encode queries and retrieve the top-k documents of each from an "
                                                 "index written by `index`; write a TREC run.")
    parser.add_argument("--index", required=True, metavar="DIR", help="index directory written by `index`")
    parser.add_argument("--queries", required=True, metavar="PATH",
                        help="BEIR directory (queries.jsonl; only queries judged in qrels/<split>.tsv) or a JSONL "
                             'file of {"_id", "text"} records')
    parser.add_argument("--split", default="test", help="qrels split selecting a BEIR directory's queries")
    parser.add_argument("--model", metavar="NAME_OR_PATH",
                        help="the model the index was built with (its query encoder is used; default: the one the "
                             "index records). Its weights must be the index's: a model with other weights is refused")
    parser.add_argument("--output", required=True, metavar="FILE", help="TREC run file to write (atomically)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    parser.add_argument("--k", type=int, default=1000, help="documents per query (default 1000)")
    parser.add_argument("--method", choices=("exact", "seismic"), default="exact", help="retrieval (default exact)")
    parser.add_argument("--batch_size", type=int, default=32, help="queries per forward pass (default 32)")
    parser.add_argument("--max_length", type=int, default=None,
                        help="query length in tokens (default: the model's max_query_length)")
    parser.add_argument("--device", default="cpu", help="where to encode and score: cpu, cuda, cuda:N or auto "
                        "(default cpu)")
    parser.add_argument("--tag", default=None, help="run name in the last column (default: splade_<method>)")
    for name in ("n_postings", "query_cut", "heap_factor"):
        default = getattr(defaults, name)
        parser.add_argument(f"--seismic_{name}", type=type(default), default=default,
                            help=f"seismic {name} (default {default})")
    parser.add_argument("--no_progress", action="store_true", help="no progress bar")
    return parser


def _check_args(args: argparse.Namespace) -> None:
    for name in ("k", "batch_size", "max_length", "seismic_n_postings", "seismic_query_cut"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ConfigError(f"--{name} must be >= 1, got {value}")
    if not 0 < args.seismic_heap_factor <= 1:
        raise ConfigError(f"--seismic_heap_factor must be in (0, 1], got {args.seismic_heap_factor}")
    if not (Path(args.index) / INDEX_FILE).is_file():
        raise ConfigError(f"--index {args.index} has no {INDEX_FILE}; expected a directory written by `index`")
    if not Path(args.queries).exists():
        raise ConfigError(f"--queries {args.queries} does not exist; expected a BEIR directory or a queries JSONL")
    if args.tag is not None and (not args.tag or any(c.isspace() for c in args.tag)):
        raise ConfigError(f"--tag must be non-empty without whitespace, got {args.tag!r}")
    args.device = resolve_device(args.device)
    if args.method == "seismic":
        from splade_lightning.retrieval.seismic import import_seismic

        import_seismic()
    manifest = read_manifest(args.index)
    if manifest is None or manifest.get("tool") != "index" or not (manifest.get("fingerprint") or {}).get("model"):
        raise ConfigError(f"--index {args.index} records no model fingerprint ({MANIFEST}); expected a directory "
                          "written by `index` of this version (re-run `index` to rebuild it)")
    args.index_fingerprint = manifest["fingerprint"]["model"]
    if args.model is None:
        args.model = read_index_json(args.index)["model"]
    inputs = [Input(args.index, "--index"), Input(args.queries, "--queries", reads=("queries.jsonl", "qrels")),
              model_input(args.model, "--model")]
    check_file_output(args.output, "--output", args.overwrite, "the TREC run file to write", inputs)


def main(argv: list[str] | None = None) -> int:
    """Run the ``search`` subcommand; return 0 on success.

    Raises:
        SystemExit: bad command-line syntax (argparse prints the usage).
        ConfigError, DataError: a bad argument value, a malformed index or queries file, a model that does not
            match the index.
    """
    args = build_parser().parse_args(argv)
    _check_args(args)
    queries = read_queries(args.queries, args.split)
    from splade_lightning.api import load
    from splade_lightning.formats.index_store import load_index
    from splade_lightning.formats.trec import write_trec_run
    from splade_lightning.retrieval.exact import to_run

    index = load_index(args.index)
    model = load(args.model, device=args.device)
    if model_fingerprint(model) != args.index_fingerprint:
        raise ConfigError(f"--model {args.model} is not the model --index {args.index} was built with "
                          f"({index.manifest['model']!r}): its weights, settings or tokenizer differ, so its query "
                          "vectors would not match the stored document vectors. Search with that model (leave "
                          "--model out to use it), or re-run `index` with this one")
    if args.max_length is not None:
        model.max_query_length = args.max_length
    query_ids = list(queries)
    query_reps = model.encode_query(list(queries.values()), batch_size=args.batch_size,
                                    show_progress_bar=not args.no_progress)
    if args.method == "exact":
        import torch

        from splade_lightning.retrieval.exact import exact_search

        with torch.inference_mode():  # the query reps are inference tensors
            scores, indices = exact_search(query_reps.to(args.device), index.to_torch(), args.k)
        run = to_run(query_ids, index.ids, scores, indices)
    else:
        from splade_lightning.retrieval.seismic import load_or_build, seismic_search

        params = SeismicParams(n_postings=args.seismic_n_postings, query_cut=args.seismic_query_cut,
                               heap_factor=args.seismic_heap_factor)
        engine = load_or_build(args.index, index, params, progress=not args.no_progress)
        run = seismic_search(engine, query_ids, query_reps, args.k, params)
    out = write_trec_run(run, args.output, args.tag or f"splade_{args.method}")
    print(f"searched {len(query_ids)} queries over {len(index.ids)} documents ({args.method}); wrote {out}",
          flush=True)
    return 0
