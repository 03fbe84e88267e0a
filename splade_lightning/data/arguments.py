"""Checks of the data module's and the training sources' arguments: each returns the problems found, worded with the
flag a user writes (``--data.init_args.batch_size``, ``--data.init_args.train.init_args.files``), so that the data
module can raise them all at once before any file is read."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from splade_lightning.errors import ConfigError, DataError
from splade_lightning.formats.beir import BeirSet, find_beir_files
from splade_lightning.formats.beir_hub import hub_repo_id, is_hub_path
from splade_lightning.formats.records import missing_path_error, train_file_format
from splade_lightning.formats.suite import SuiteEntry, SuiteRef, read_suite
from splade_lightning.types import ROUTES

#: how the data module's own arguments are named in messages
DATA = "--data.init_args"
#: how the training source's arguments are named in messages
TRAIN = "--data.init_args.train.init_args"
_BEIR_KEYS = "path, split, name, min_relevance, max_queries"


def as_beir_sets(sets: list[BeirSet | SuiteRef | dict] | None, argument: str, problems: list[str],
                 prefix: str = DATA) -> list[BeirSet]:
    """``val_sets`` / ``test_sets`` entries as :class:`BeirSet` (dicts from YAML, or jsonargparse namespaces,
    accepted); a :class:`~splade_lightning.formats.suite.SuiteRef` (``{suite: FILE}``) stands for every set of that
    suite file. Unique names. Problems are named ``{prefix}.{argument}[i]`` (``prefix=""``: ``--{argument}[i]``)."""
    out = []
    for i, item in enumerate(sets or []):
        flag = f"{prefix}.{argument}[{i}]" if prefix else f"--{argument}[{i}]"
        if isinstance(item, argparse.Namespace):
            item = vars(item)  # jsonargparse parses a tool's list[BeirSet] option into namespaces
        if isinstance(item, dict) and set(item) == {"suite"}:
            item = SuiteRef(**item)
        if isinstance(item, SuiteRef):
            try:
                out += read_suite(item.suite).sets
            except ConfigError as e:
                problems.append(f"{flag}: {e}")
            continue
        if isinstance(item, dict):
            try:
                item = BeirSet(**item)
            except TypeError as e:
                problems.append(f"{flag}: {e}; expected keys {_BEIR_KEYS}")
                continue
        if not isinstance(item, BeirSet):
            problems.append(f"{flag}: expected a BeirSet / {{path: ..., split: ...}}, got {item!r}")
            continue
        if not _is_int(item.min_relevance) or item.min_relevance < 1:
            problems.append(f"{flag}.min_relevance: must be an int >= 1, got {item.min_relevance!r}")
        if item.max_queries is not None and (not _is_int(item.max_queries) or item.max_queries < 1):
            problems.append(f"{flag}.max_queries: must be an int >= 1 or null (all queries), got {item.max_queries!r}")
        out.append(item)
    names = [s.display_name for s in out]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        where = f"{prefix}.{argument}" if prefix else f"--{argument}"
        problems.append(f"{where}: set names must be unique, got duplicates {duplicates} (names default "
                        "to the directory's basename; give each set a distinct `name`)")
    return out


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_counts(positive: dict[str, object], non_negative: dict[str, object], flag: str = DATA) -> list[str]:
    """Ints that must be > 0 and ints that must be >= 0 (named ``{flag}.{name}``)."""
    problems = [f"{flag}.{name}: must be an int > 0, got {value!r}" for name, value in positive.items()
                if not _is_int(value) or value <= 0]
    return problems + [f"{flag}.{name}: must be an int >= 0, got {value!r}" for name, value in non_negative.items()
                       if not _is_int(value) or value < 0]


def check_choice(name: str, value: object, choices: tuple[str, ...], flag: str = TRAIN) -> list[str]:
    """``value`` must be one of ``choices``."""
    if value in choices:
        return []
    return [f"{flag}.{name}: must be {' or '.join(repr(c) for c in choices)}, got {value!r}"]


def check_negatives(negative_columns: list[str], num_negatives: object) -> list[str]:
    """``num_negatives`` and ``negative_columns`` must agree (both set, or pairs: 0 and none)."""
    if negative_columns and num_negatives == 0:
        return [f"{TRAIN}.num_negatives: is 0 but {TRAIN}.negative_columns={negative_columns} is set; "
                "set num_negatives >= 1 or drop negative_columns"]
    if not negative_columns and _is_int(num_negatives) and num_negatives > 0:
        return [f"{TRAIN}.num_negatives: is {num_negatives} but {TRAIN}.negative_columns is not set; "
                "name the negative column(s) or set num_negatives: 0 for (query, positive) pairs"]
    return []


def check_router_mapping(mapping: dict[str, str] | None, columns: list[str]) -> list[str]:
    """``router_mapping``: every training column mapped to a route name; positives and negatives on one route. Whether
    the model has the route is checked against the model before training (``models.router.route_problems``).

    Args:
        mapping: column -> route, or None (the default routes).
        columns: the query column first, then the document columns.
    """
    if mapping is None:
        return []
    flag = f"{TRAIN}.router_mapping"
    problems = [f"{flag}: column {c!r} is not a training column; the columns are {columns}"
                for c in mapping if c not in columns]
    problems += [f"{flag}.{c}: route {r!r}: expected a route name ({list(ROUTES)} or a Router's route)"
                 for c, r in mapping.items() if not isinstance(r, str) or not r.strip()]
    missing = [c for c in columns if c not in mapping]
    if missing:
        problems.append(f"{flag}: no route for column(s) {missing}; map every column of {columns}")
    doc_routes = {mapping[c] for c in columns[1:] if c in mapping}
    if len(doc_routes) > 1:
        problems.append(f"{flag}: the positive and negative columns {columns[1:]} go to different routes "
                        f"{sorted(map(str, doc_routes))}; they are ranked against each other, so they must share one "
                        "route")
    return problems


def check_train_files(files: object, name: str = "files") -> list[str]:
    """A non-empty list of training files, each existing with a known format (JSONL, TSV, parquet, HF dataset)."""
    if not isinstance(files, list) or not files:
        return [f"{TRAIN}.{name}: must be a non-empty list of training files, got {files!r}"]
    problems = []
    for path in files:
        try:
            train_file_format(path)
        except DataError as e:
            problems.append(f"{TRAIN}.{name}: {e}")
    return problems


def check_files_exist(files: list[tuple[str, str]]) -> list[str]:
    """``(argument name, path)`` pairs whose path must be an existing file."""
    return [f"{TRAIN}.{name}: {missing_path_error(path)}" for name, path in files if not Path(path).is_file()]


def check_score_range(score_range: list[float] | None, scored: bool, why_not: str) -> list[str]:
    """``[min, max]`` with finite ``min <= max``; ``scored``: whether the data has teacher scores (``why_not`` says
    what would supply them)."""
    if score_range is None:
        return []
    flag = f"{TRAIN}.score_range"
    problems = [] if scored else [f"{flag}: filters on teacher scores, but {why_not}"]
    numbers = isinstance(score_range, (list, tuple)) and len(score_range) == 2 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in score_range)
    if not numbers or score_range[0] > score_range[1]:
        problems.append(f"{flag}: must be [min, max] with finite min <= max, got {score_range}")
    return problems


def check_eval_paths(eval_sets: list[tuple[str, list[BeirSet]]], prefix: str = DATA) -> list[str]:
    """Every evaluation set has its BEIR files, or is a well-formed ``hf://<owner>/<name>`` (read when loaded).
    Problems are named as in :func:`as_beir_sets`, those of a suite file's set ``<file>:<line>: sets[i]``."""
    problems = []
    for argument, sets in eval_sets:
        i = -1  # the entry's index in the user's list, where a suite counts once
        for beir_set in sets:
            i += not isinstance(beir_set, SuiteEntry) or beir_set.index == 0
            flag = f"{prefix}.{argument}[{i}]" if prefix else f"--{argument}[{i}]"
            if isinstance(beir_set, SuiteEntry):
                flag = f"{beir_set.where} (in {flag[:flag.rindex('[')]})"
            if is_hub_path(beir_set.path):
                try:
                    hub_repo_id(beir_set.path)
                except ConfigError as e:
                    problems.append(f"{flag}: {e}")
                continue
            errors: list[DataError] = []
            find_beir_files(Path(beir_set.path), beir_set.split, errors)
            problems += [f"{flag}: {e}" for e in errors]
    return problems
