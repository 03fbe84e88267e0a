"""Arguments of ``python -m splade_lightning mine``: the parser, the checks run before anything is loaded, and
what the arguments resolve to (the mining rule, the system name, the settings a resumed run must share).

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
from splade_lightning.mining.retrievers import BM25_STOPWORDS

#: options that only apply to one kind of retriever -> that kind
_ONLY_FOR = {"bm25_stopwords": "bm25", "bm25_k1": "bm25", "bm25_b": "bm25", "batch_size": "model",
             "shard_size": "model", "device": "model"}


def build_parser() -> argparse.ArgumentParser:
    """The ``mine`` subcommand's argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m splade_lightning mine",
        description="Mine hard negatives for the queries of a BEIR directory with BM25 or a sparse model, filtered "
                    "as sentence-transformers' mine_hard_negatives does. Output: one JSON line per query, "
                    '{"qid", "pos": [doc ids], "neg": {"<system>": [doc ids]}}. Rerun the same command to resume.')
    data = parser.add_argument_group("data")
    data.add_argument("--data", required=True, metavar="DIR",
                      help="BEIR directory (corpus.jsonl, queries.jsonl, qrels/<split>.tsv); documents with identical "
                           "text count once (the first id is written), as in sentence-transformers")
    data.add_argument("--split", default="train", metavar="NAME", help="qrels split: qrels/<split>.tsv (default train)")
    data.add_argument("--min_relevance", metavar="N", type=int, default=1,
                      help="qrels grade from which a document is a positive (default 1); queries without a positive "
                           "are not mined")
    data.add_argument("--output", required=True, metavar="FILE",
                      help="JSONL file to write; <FILE>.cache/ keeps the run's settings and corpus encodings")
    retrieval = parser.add_argument_group("retriever")
    retrieval.add_argument("--retriever", default="bm25", metavar="bm25|MODEL",
                           help="bm25 (default), or a sparse model: alias (splade-tiny), model directory, HF hub id "
                                "or .ckpt written by fit")
    retrieval.add_argument("--system_name", metavar="NAME",
                           help='key of the negatives in "neg" (default: bm25, or the model\'s basename)')
    retrieval.add_argument("--bm25_stopwords", choices=BM25_STOPWORDS,
                           help="bm25: stopword list of bm25s' tokenizer (default en; none keeps every word)")
    retrieval.add_argument("--bm25_k1", metavar="X", type=float, help="bm25: k1 (default 1.5)")
    retrieval.add_argument("--bm25_b", metavar="X", type=float, help="bm25: b (default 0.75)")
    retrieval.add_argument("--batch_size", metavar="N", type=int, help="model: texts per forward pass (default 32)")
    retrieval.add_argument("--shard_size", metavar="N", type=int,
                           help="model: documents per cached encoding shard (default 10000)")
    retrieval.add_argument("--device", metavar="DEVICE",
                           help="model: cpu, cuda, cuda:N or auto (default auto: cuda when available)")
    select = parser.add_argument_group("negatives (sentence-transformers mine_hard_negatives options)")
    select.add_argument("--num_negatives", metavar="N", type=int, default=3, help="negatives per query (default 3)")
    select.add_argument("--range_min", metavar="N", type=int, default=0,
                        help="skip this many of the best surviving candidates (default 0)")
    select.add_argument("--range_max", metavar="N", type=int,
                        help="consider this many candidates (default: range_min + num_negatives + max positives per "
                             "query, or range_min + 10*num_negatives + max positives when a margin or --max_score is "
                             "set)")
    select.add_argument("--max_score", metavar="X", type=float, help="drop candidates scoring above this")
    select.add_argument("--min_score", metavar="X", type=float, help="drop candidates scoring below this")
    select.add_argument("--absolute_margin", metavar="X", type=float,
                        help="drop candidates with score + margin > p, p = the query's lowest positive score")
    select.add_argument("--relative_margin", metavar="X", type=float,
                        help="drop candidates with score > p - |p| * margin (e.g. 0.05: at least 5%% below)")
    select.add_argument("--sampling_strategy", choices=("top", "random"), default="top",
                        help="top: the best survivors (default); random: a sample of them, by --seed")
    select.add_argument("--seed", metavar="N", type=int, default=0,
                        help="seed of random sampling (per query; default 0)")
    output = parser.add_argument_group("output")
    output.add_argument("--output_scores", action="store_true",
                        help='also write "scores": {"pos": [...], "<system>": [...]}')
    output.add_argument("--keep_empty", action="store_true",
                        help="write queries left without negatives (with an empty list) instead of skipping them")
    output.add_argument("--chunk_size", metavar="N", type=int, default=1000,
                        help="queries retrieved and appended (flushed, fsynced) at a time (default 1000); keep it, "
                             "and --batch_size, when resuming to get bit-identical model scores")
    output.add_argument("--overwrite", action="store_true",
                        help="discard an existing --output and start again (valid corpus encodings are reused)")
    output.add_argument("--no_progress", action="store_true", help="no progress bars")
    return parser


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
    if args.device is not None:
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


