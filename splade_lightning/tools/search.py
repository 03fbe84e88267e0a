"""``splade-lightning search``: encode queries and retrieve from an index written by ``index``.

Examples::

    splade-lightning search --index runs/idx --queries data/msmarco-trecdl-5k --output runs/dl.trec
    splade-lightning search --index runs/idx --queries queries.jsonl --output runs/dl-seismic.trec \\
        --method seismic --k 100

``--method exact`` scores every document (:func:`~splade_lightning.retrieval.exact_search`, on ``--device``);
``--method seismic`` builds a Seismic index from the stored vectors on first use, caches it in ``<index>/seismic/``
and searches it approximately. Every argument is checked before the index and the model are loaded.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Literal

from splade_lightning.devices import resolve_device
from splade_lightning.errors import ConfigError
from splade_lightning.formats.beir_files import read_queries
from splade_lightning.formats.fingerprints import model_fingerprint
from splade_lightning.formats.index_store import INDEX_FILE, read_index_json
from splade_lightning.formats.manifest import MANIFEST, read_manifest
from splade_lightning.formats.outputs import Input, check_file_output, model_input
from splade_lightning.retrieval.seismic import SeismicParams


def _check_args(args: argparse.Namespace) -> None:
    for name in ("k", "batch_size", "max_query_length", "seismic_n_postings", "seismic_query_cut"):
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


def search(index: str, queries: str, output: str, model: str | None = None, split: str = "test", k: int = 1000,
           method: Literal["exact", "seismic"] = "exact", batch_size: int = 32, max_query_length: int | None = None,
           device: str = "auto", tag: str | None = None, seismic_n_postings: int = SeismicParams.n_postings,
           seismic_query_cut: int = SeismicParams.query_cut, seismic_heap_factor: float = SeismicParams.heap_factor,
           overwrite: bool = False, progress: bool = True) -> int:
    """Encode queries and retrieve the top-k documents of each from an index written by `index`; write a TREC run.

    Args:
        index: the index directory written by `index`.
        queries: the queries: a BEIR directory (its queries.jsonl; only the queries judged in qrels/<split>.tsv) or a
            JSONL file of {"_id", "text"} records.
        output: the TREC run file to write (atomically).
        model: the model the index was built with (its query encoder is used; default: the one the index records).
            A model with other weights, settings or tokenizer is refused.
        split: the qrels split that selects a BEIR directory's queries.
        k: documents retrieved per query.
        method: exact (score every document) or seismic (approximate, pyseismic-lsr).
        batch_size: queries per forward pass.
        max_query_length: query truncation in tokens (default: the model's).
        device: where to encode and score: auto (CUDA when available), cpu, cuda or cuda:N.
        tag: run name in the last column (default: splade_<method>).
        seismic_n_postings: seismic: postings kept per term.
        seismic_query_cut: seismic: query terms used.
        seismic_heap_factor: seismic: heap factor in (0, 1].
        overwrite: replace an existing --output file.
        progress: show a progress bar.
    """
    args = argparse.Namespace(**locals())
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
    if args.max_query_length is not None:
        model.max_query_length = args.max_query_length
    query_ids = list(queries)
    query_reps = model.encode_query(list(queries.values()), batch_size=args.batch_size,
                                    show_progress_bar=args.progress)
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
        engine = load_or_build(args.index, index, params, progress=args.progress)
        run = seismic_search(engine, query_ids, query_reps, args.k, params)
    out = write_trec_run(run, args.output, args.tag or f"splade_{args.method}")
    print(f"searched {len(query_ids)} queries over {len(index.ids)} documents ({args.method}); wrote {out}",
          flush=True)
    return 0
