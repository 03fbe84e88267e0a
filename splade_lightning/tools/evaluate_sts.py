"""``splade-lightning evaluate --model M --data pairs.jsonl``: score a model on an STS file (sentence pairs with gold
scores) instead of a BEIR directory.

Both columns are encoded with ``SparseModel.encode_document`` (the ``document`` route, as sentence-transformers'
``SparseEncoder.encode`` through a Router's default route) and scored with
:func:`splade_lightning.metrics.sts.sts_metrics`: Spearman and Pearson of the dot product against the gold scores,
equal to sentence-transformers 6.2's ``SparseEmbeddingSimilarityEvaluator`` (``spearman_dot``, ``pearson_dot``).
Every argument is checked before the data or the model is loaded.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from splade_lightning.errors import ConfigError
from splade_lightning.formats.atomic import write_text_atomic
from splade_lightning.formats.outputs import Input, check_file_output, model_input
from splade_lightning.formats.tables import markdown_table

#: evaluate options that only apply to BEIR data or run files: name -> default
NOT_STS = {"suite": None, "split": None, "run": None, "qrels": None, "k": None, "max_query_length": None,
           "permutations": None, "seed": None, "alpha": None, "run_output": None, "min_relevance": 1}


def is_sts_file(data: str | None) -> bool:
    """Whether ``--data`` names an STS file (a path ending in ``.jsonl`` that is not a directory)."""
    return data is not None and Path(data).suffix.lower() == ".jsonl" and not Path(data).is_dir()


def _check(args: argparse.Namespace, default_measures: tuple[str, ...]) -> None:
    from splade_lightning.devices import resolve_device

    problems = [f"--{name} does not apply to an STS file (--data {args.data})" for name, default in NOT_STS.items()
                if getattr(args, name) != default]
    if list(args.measures) != list(default_measures):
        problems.append(f"--measures does not apply to an STS file (--data {args.data}): it reports spearman, "
                        "pearson, active_dims and sparsity_ratio")
    for name in ("batch_size", "max_doc_length"):
        value = getattr(args, name)
        if value is not None and value < 1:
            problems.append(f"--{name} must be >= 1, got {value}")
    if problems:
        raise ConfigError("; ".join(problems))
    if not Path(args.data).is_file():
        raise ConfigError(f"--data {args.data}: STS file not found; expected a JSONL file of {{sentence1, sentence2, "
                          "score}} records (or a BEIR directory)")
    args.device = resolve_device(args.device)
    args.batch_size = 64 if args.batch_size is None else args.batch_size
    if args.output is not None:
        inputs = [model_input(args.model, "--model"), Input(args.data, "--data")]
        check_file_output(args.output, "--output", args.overwrite, "the JSON file to write", inputs)


def _cell(key: str, value: float) -> str:
    return f"{value:.1f}" if key == "active_dims" else f"{value:.4f}"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def evaluate_sts_file(args: argparse.Namespace, default_measures: tuple[str, ...]) -> int:
    """Run ``evaluate`` on an STS file: print a one-row table and write ``--output`` (NaN correlations, from
    constant similarities, are written as ``null``).

    Args:
        args: the ``evaluate`` arguments (``data`` is the STS file).
        default_measures: ``evaluate``'s default ``--measures`` (anything else is an error here).

    Returns:
        0.

    Raises:
        ConfigError: an option that does not apply, a bad value, a missing file, an output that exists (the model
            name is checked by the caller, ``evaluate``).
        DataErrors: bad records in the file, each with its file:line.
    """
    from splade_lightning.api import load
    from splade_lightning.formats.sts import load_sts
    from splade_lightning.metrics.sts import STS_KEYS, evaluate_sts

    _check(args, default_measures)
    start = time.perf_counter()
    data = load_sts(args.data)
    loaded_data = time.perf_counter()
    model = load(args.model, device=args.device)
    if args.max_doc_length is not None:
        model.max_doc_length = args.max_doc_length
    metrics, timings = evaluate_sts(model, data, args.batch_size, args.progress)
    total = time.perf_counter() - start
    print(markdown_table(["dataset", *STS_KEYS], [[data.name, *(_cell(k, metrics[k]) for k in STS_KEYS)]]),
          flush=True)
    print(f"({total:.1f} s)", flush=True)
    payload = {"model": args.model, "dataset": data.name, "path": data.path, "pairs": len(data.scores),
               "similarity": data.similarity, "max_doc_length": model.max_doc_length,
               **{key: _finite(value) for key, value in metrics.items()},
               "timings": {**timings, "load_data": loaded_data - start, "total": total}}
    if args.output is not None:
        write_text_atomic(args.output, json.dumps(payload, indent=2, allow_nan=False) + "\n")
        print(f"wrote {args.output}", flush=True)
    return 0
