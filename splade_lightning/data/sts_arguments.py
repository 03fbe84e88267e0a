"""Checks of the data module's STS sets (``val_sts_sets`` / ``test_sts_sets``,
:class:`~splade_lightning.formats.sts.StsSet`), worded with the flag a user writes, so that the data module can raise
them with its other problems before any file is read."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path
from typing import get_args

from splade_lightning.formats.records import missing_path_error
from splade_lightning.formats.sts import StsSet, StsSimilarity

STS_KEYS = ", ".join(f.name for f in fields(StsSet))


def _as_sts_set(item: object, flag: str, problems: list[str]) -> StsSet | None:
    if isinstance(item, argparse.Namespace):
        item = vars(item)
    if isinstance(item, dict):
        try:
            item = StsSet(**item)
        except TypeError as e:
            problems.append(f"{flag}: {e}; expected keys {STS_KEYS}")
            return None
    if not isinstance(item, StsSet):
        problems.append(f"{flag}: expected an StsSet / {{path: pairs.jsonl}}, got {item!r}")
        return None
    return item


def sts_set_problems(item: StsSet, flag: str) -> list[str]:
    """What is wrong with one :class:`StsSet` (named ``flag``): empty fields, a name with ``/``, an unknown similarity,
    columns that coincide, a path that is not an existing file."""
    problems = [f"{flag}.{name}: must be a non-empty string, got {getattr(item, name)!r}"
                for name in ("path", "sentence1_column", "sentence2_column", "score_column")
                if not isinstance(getattr(item, name), str) or not getattr(item, name)]
    if item.name is not None and (not isinstance(item.name, str) or not item.name or "/" in item.name):
        problems.append(f"{flag}.name: must be a non-empty string without '/' (it is part of metric keys) or null, "
                        f"got {item.name!r}")
    if item.similarity not in get_args(StsSimilarity):
        problems.append(f"{flag}.similarity: must be one of {list(get_args(StsSimilarity))}, got {item.similarity!r}")
    columns = [item.sentence1_column, item.sentence2_column, item.score_column]
    if len(set(map(str, columns))) < 3:
        problems.append(f"{flag}: sentence1_column, sentence2_column and score_column must differ, got {columns}")
    if problems:
        return problems
    path = Path(item.path)
    if path.is_dir():
        return [f"{flag}.path: {path} is a directory; an STS set is one JSONL file of {{sentence1, sentence2, score}} "
                "records (a BEIR directory goes in val_sets / test_sets)"]
    if not path.is_file():
        return [f"{flag}.path: {missing_path_error(path, 'STS file')}"]
    return []


def as_sts_sets(sets: list[StsSet | dict] | None, argument: str, problems: list[str], prefix: str,
                taken: list[str] = ()) -> list[StsSet]:
    """``val_sts_sets`` / ``test_sts_sets`` entries as checked :class:`StsSet` (dicts from YAML, or jsonargparse
    namespaces, accepted), each file existing, every name unique and none in ``taken`` (the BEIR sets' names).

    Args:
        sets: the entries.
        argument: ``val_sts_sets`` or ``test_sts_sets``.
        problems: receives the problems, named ``{prefix}.{argument}[i]``.
        prefix: how the data module's arguments are named (``--data.init_args``).
        taken: names already used by the stage's other evaluation sets.
    """
    out = []
    for i, item in enumerate(sets or []):
        flag = f"{prefix}.{argument}[{i}]"
        sts_set = _as_sts_set(item, flag, problems)
        if sts_set is not None and not (found := sts_set_problems(sts_set, flag)):
            out.append(sts_set)
        elif sts_set is not None:
            problems += found
    names = [*taken, *(s.display_name for s in out)]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"{prefix}.{argument}: set names must be unique across the stage's BEIR and STS sets, got "
                        f"duplicates {duplicates} (STS names default to <directory>-<file stem>; give each a `name`)")
    return out
