"""Arguments of ``splade-lightning mine``: the checks run before anything is loaded, and what the arguments resolve
to (the mining rule, the system name, the settings a resumed run must share).

Every problem is reported as a :class:`~splade_lightning.errors.ConfigError` that names the argument, its value and
what was expected.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict
from pathlib import Path

from splade_lightning.devices import resolve_device
from splade_lightning.errors import ConfigError
from splade_lightning.formats.outputs import Input, check_not_input, dir_output_state, model_input
from splade_lightning.mining.data import cache_dir
from splade_lightning.mining.filters import MiningRule, default_range_max, widens_range

#: options that only apply to one kind of retriever -> that kind
_ONLY_FOR = {"bm25_stopwords": "bm25", "bm25_k1": "bm25", "bm25_b": "bm25", "batch_size": "model",
             "shard_size": "model"}


def is_model(args: argparse.Namespace) -> bool:
    """Whether ``--retriever`` names a model (anything but ``bm25``)."""
    return args.retriever != "bm25"


def _check_numbers(args: argparse.Namespace) -> list[str]:
    """Problems with the numeric arguments."""
    problems = []
    for name, low in (("num_negatives", 1), ("range_min", 0), ("min_relevance", 1), ("chunk_size", 1),
                      ("seed", 0), ("batch_size", 1), ("shard_size", 1), ("range_max", 1)):
        value = getattr(args, name)
        if value is not None and value < low:
            problems.append(f"--{name} {value}: expected an integer >= {low}")
    for name in ("max_score", "min_score", "absolute_margin", "relative_margin", "bm25_k1", "bm25_b"):
        value = getattr(args, name)
        if value is not None and not math.isfinite(value):
            problems.append(f"--{name} {value}: expected a finite number")
        elif value is not None and name in ("absolute_margin", "relative_margin", "bm25_k1") and value < 0:
            problems.append(f"--{name} {value}: expected a number >= 0")
    if args.bm25_b is not None and math.isfinite(args.bm25_b) and not 0 <= args.bm25_b <= 1:
        problems.append(f"--bm25_b {args.bm25_b}: expected a number in [0, 1]")
    if args.range_max is not None and args.range_max >= 1 and args.range_min >= 0:
        if args.range_min >= args.range_max:
            problems.append(f"--range_min {args.range_min}: expected less than --range_max {args.range_max}")
        elif args.num_negatives > args.range_max - args.range_min:
            problems.append(f"--num_negatives {args.num_negatives}: expected at most --range_max - --range_min = "
                            f"{args.range_max - args.range_min} (the candidates left after skipping range_min)")
    if args.min_score is not None and args.max_score is not None and args.min_score > args.max_score:
        problems.append(f"--min_score {args.min_score}: expected at most --max_score {args.max_score}")
    return problems


def _check_retriever(args: argparse.Namespace) -> list[str]:
    """Problems with ``--retriever``, the retriever-specific options, ``--system_name`` and ``--device``."""
    from splade_lightning.hub import ALIASES

    kind = "model" if is_model(args) else "bm25"
    problems = [f"--{name} {getattr(args, name)}: only applies to --retriever {'bm25' if only == 'bm25' else 'MODEL'}"
                for name, only in _ONLY_FOR.items() if getattr(args, name) is not None and only != kind]
    name = args.retriever
    if kind == "model":
        path = Path(name)
        if name.endswith(".ckpt") and not path.is_file():
            problems.append(f"--retriever {name}: checkpoint file not found")
        elif not name.endswith(".ckpt") and not path.exists() and name.lower() not in ALIASES and (
                "/" not in name or name.startswith((".", "/"))):
            problems.append(f"--retriever {name}: expected bm25, an existing model directory or .ckpt, a known alias "
                            f"{sorted(ALIASES)}, or a HF hub id owner/name")
    if args.system_name is not None and (not args.system_name.strip() or args.system_name == "pos"):
        problems.append(f"--system_name {args.system_name!r}: expected a non-empty name other than 'pos'")
    if args.device != "auto":
        try:
            resolve_device(args.device)
        except ConfigError as e:
            problems.append(str(e))
    return problems


def _check_paths(args: argparse.Namespace) -> list[str]:
    """Problems with ``--data``/``--split`` and ``--output``."""
    problems = []
    data = Path(args.data)
    if not data.is_dir():
        problems.append(f"--data {data}: expected an existing BEIR directory (corpus.jsonl, queries.jsonl, qrels/)")
    else:
        problems += [f"--data {data}: {name} not found" for name in ("corpus.jsonl", "queries.jsonl")
                     if not (data / name).is_file()]
        if not (data / "qrels" / f"{args.split}.tsv").is_file():
            splits = sorted(p.stem for p in (data / "qrels").glob("*.tsv"))
            problems.append(f"--split {args.split}: {data / 'qrels' / (args.split + '.tsv')} not found; splits "
                            f"present: {splits}")
    output = Path(args.output)
    inputs = [Input(args.data, "--data", reads=("corpus.jsonl", "queries.jsonl", "qrels")),
              model_input(args.retriever if is_model(args) else None, "--retriever")]
    for path, flag in ((output, "--output"), (cache_dir(output), "--output's cache directory")):
        try:
            check_not_input(path, flag, inputs)
            if path == output:
                if output.is_dir():
                    raise ConfigError(f"--output {output}: is a directory; expected the JSONL file to write")
            else:
                dir_output_state(path, flag)  # new, empty or ours: anything else is refused
        except ConfigError as e:
            problems.append(str(e))
    return problems


def check_args(args: argparse.Namespace) -> None:
    """Check every argument before anything is loaded.

    Raises:
        ConfigError: listing every problem, each naming the argument, its value and what was expected.
    """
    problems = _check_numbers(args) + _check_retriever(args) + _check_paths(args)
    if len(problems) == 1:
        raise ConfigError(problems[0])
    if problems:
        raise ConfigError(f"{len(problems)} problems with the arguments:\n  " + "\n  ".join(problems))


def resolve_rule(args: argparse.Namespace, max_positives: int) -> MiningRule:
    """The :class:`MiningRule` of the arguments, with ST's default ``range_max``."""
    widened = widens_range(args.absolute_margin, args.relative_margin, args.max_score)
    range_max = args.range_max
    if range_max is None:
        range_max = default_range_max(args.range_min, args.num_negatives, max_positives, widened)
    return MiningRule(args.num_negatives, args.range_min, range_max, args.absolute_margin, args.relative_margin,
                      args.max_score, args.min_score, args.sampling_strategy)


def system_name(args: argparse.Namespace) -> str:
    """The key of the negatives: ``--system_name``, ``bm25``, or the model's basename (``.ckpt`` stripped)."""
    if args.system_name:
        return args.system_name
    if not is_model(args):
        return "bm25"
    path = Path(args.retriever.rstrip("/") or "/")
    path = path.resolve() if path.exists() else path
    name = path.stem if path.suffix == ".ckpt" else path.name
    return name or "model"


def bm25_settings(args: argparse.Namespace) -> dict:
    """The BM25 parameters in use (their defaults filled in); empty for a model retriever."""
    if is_model(args):
        return {}
    return {"bm25_stopwords": args.bm25_stopwords or "en", "bm25_k1": 1.5 if args.bm25_k1 is None else args.bm25_k1,
            "bm25_b": 0.75 if args.bm25_b is None else args.bm25_b}


def run_settings(args: argparse.Namespace, rule: MiningRule, system: str) -> dict:
    """The settings that decide the output; a resumed run must have the same. (A model retriever is identified by
    its weights, in the fingerprint's ``model``, not by its path.)"""
    settings = {"split": args.split, "min_relevance": args.min_relevance,
                "retriever": "model" if is_model(args) else "bm25", "system_name": system, **bm25_settings(args),
                **asdict(rule), "seed": args.seed if rule.sampling_strategy == "random" else None,
                "output_scores": args.output_scores, "keep_empty": args.keep_empty}
    return json.loads(json.dumps(settings))


