"""Checks of ``RetrievalDataModule``'s arguments: each returns the problems found, worded with the ``--data.X`` flag,
so the module can raise them all at once before any file is read."""

from __future__ import annotations

from pathlib import Path

from splade_lightning.errors import DataError
from splade_lightning.formats.beir import BeirSet, find_beir_files
from splade_lightning.formats.records import train_file_format
from splade_lightning.types import ROUTES


def as_beir_sets(sets: list[BeirSet | dict] | None, argument: str, problems: list[str]) -> list[BeirSet]:
    """``val_sets`` / ``test_sets`` entries as :class:`BeirSet` (dicts from YAML accepted); unique names."""
    out = []
    for i, item in enumerate(sets or []):
        if isinstance(item, dict):
            try:
                item = BeirSet(**item)
            except TypeError as e:
                problems.append(f"--data.{argument}[{i}]: {e}; expected keys path, split, name, min_relevance")
                continue
        if not isinstance(item, BeirSet):
            problems.append(f"--data.{argument}[{i}]: expected a BeirSet / {{path: ..., split: ...}}, got {item!r}")
            continue
        if not isinstance(item.min_relevance, int) or item.min_relevance < 1:
            problems.append(f"--data.{argument}[{i}].min_relevance: must be an int >= 1, got {item.min_relevance!r}")
        out.append(item)
    names = [s.display_name for s in out]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"--data.{argument}: set names must be unique, got duplicates {duplicates} (names default "
                        "to the directory's basename; give each set a distinct `name`)")
    return out


def check_counts(positive: dict[str, object], non_negative: dict[str, object]) -> list[str]:
    """Ints that must be > 0 and ints that must be >= 0."""
    problems = []
    for name, value in positive.items():
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            problems.append(f"--data.{name}: must be an int > 0, got {value!r}")
    for name, value in non_negative.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            problems.append(f"--data.{name}: must be an int >= 0, got {value!r}")
    return problems


def check_negatives(negative_columns: list[str], num_negatives: object) -> list[str]:
    """``num_negatives`` and ``negative_columns`` must agree (both set, or pairs: 0 and none)."""
    if negative_columns and num_negatives == 0:
        return [f"--data.num_negatives: is 0 but --data.negative_columns={negative_columns} is set; "
                "set num_negatives >= 1 or drop negative_columns"]
    if not negative_columns and isinstance(num_negatives, int) and num_negatives > 0:
        return [f"--data.num_negatives: is {num_negatives} but --data.negative_columns is not set; "
                "name the negative column(s) or set num_negatives: 0 for (query, positive) pairs"]
    return []


def check_router_mapping(mapping: dict[str, str] | None, columns: list[str]) -> list[str]:
    """``router_mapping``: every training column mapped to a known route; positives and negatives on one route.

    Args:
        mapping: column -> route, or None (the default routes).
        columns: ``[query_column, positive_column, *negative_columns]``.
    """
    if mapping is None:
        return []
    problems = [f"--data.router_mapping: column {c!r} is not a training column; the columns are {columns}"
                for c in mapping if c not in columns]
    problems += [f"--data.router_mapping.{c}: route {r!r} is not one of {list(ROUTES)}"
                 for c, r in mapping.items() if r not in ROUTES]
    missing = [c for c in columns if c not in mapping]
    if missing:
        problems.append(f"--data.router_mapping: no route for column(s) {missing}; map every column of {columns}")
    doc_routes = {mapping[c] for c in columns[1:] if c in mapping}
    if len(doc_routes) > 1:
        problems.append(f"--data.router_mapping: the positive and negative columns {columns[1:]} go to different "
                        f"routes {sorted(map(str, doc_routes))}; they are ranked against each other, so they must "
                        "share one route")
    return problems


def check_paths(train_files: list[str], eval_sets: list[tuple[str, list[BeirSet]]]) -> list[str]:
    """Training files exist with a known format; every evaluation set has its BEIR files."""
    problems = []
    for path in train_files:
        try:
            train_file_format(path)
        except DataError as e:
            problems.append(f"--data.train_files: {e}")
    for argument, sets in eval_sets:
        for i, beir_set in enumerate(sets):
            errors: list[DataError] = []
            find_beir_files(Path(beir_set.path), beir_set.split, errors)
            problems += [f"--data.{argument}[{i}]: {e}" for e in errors]
    return problems
