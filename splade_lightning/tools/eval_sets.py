"""Which evaluation sets ``evaluate`` model mode scores: ``--data`` (one BEIR directory or a folder of them, sharing
``--split`` and ``--min_relevance``), or ``--suite`` (a suite file or preset, each set with its own split,
``min_relevance`` and ``max_queries``: :mod:`splade_lightning.formats.suite`)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from splade_lightning.errors import ConfigError
from splade_lightning.formats.beir import BeirSet
from splade_lightning.formats.beir_files import beir_dirs
from splade_lightning.formats.beir_hub import is_hub_path
from splade_lightning.formats.suite import read_suite


@dataclass
class ModelSets:
    """The sets of one ``evaluate`` call.

    Attributes:
        sets: the evaluation sets, in report order.
        several: whether the report is one row per set plus their mean (a folder or a suite).
        suite: the suite's name and file, or ``None`` without ``--suite``.
    """

    sets: list[BeirSet]
    several: bool
    suite: tuple[str, str] | None = None

    def local_dirs(self) -> list[Path]:
        """The BEIR directories read (hub sets left out), for the output policy."""
        return [Path(s.path) for s in self.sets if not is_hub_path(s.path)]


def suite_problems(args: argparse.Namespace) -> list[str]:
    """``--suite`` excludes ``--data``, ``--split`` and ``--min_relevance`` (each set has its own)."""
    if args.suite is None:
        return []
    problems = ["--suite and --data are exclusive: give one (a suite file names its sets' directories)"] \
        if args.data is not None else []
    if args.split is not None or args.min_relevance != 1:
        problems.append("--split and --min_relevance do not apply with --suite: each set of the suite file has its "
                        "own split and min_relevance")
    return problems


def model_sets(args: argparse.Namespace) -> ModelSets:
    """The sets named by ``args.suite`` or ``args.data`` (with ``args.split``, ``args.min_relevance``).

    Raises:
        ConfigError: a bad suite file (every problem, each named ``<file>:<line>: sets[i]``), a suite set without
            its BEIR files, or a ``--data`` that is neither a BEIR directory nor a folder of them.
    """
    from splade_lightning.data.arguments import check_eval_paths

    if args.suite is None:
        dirs, several = beir_dirs(args.data)
        return ModelSets([BeirSet(str(path), args.split, None, args.min_relevance) for path in dirs], several)
    suite = read_suite(args.suite)
    problems = check_eval_paths([("suite", suite.sets)], prefix="")
    if problems:
        raise ConfigError(f"--suite {args.suite}:\n  " + "\n  ".join(problems))
    return ModelSets(list(suite.sets), True, (suite.name, suite.file))
