"""Evaluation suites: one YAML file naming several evaluation sets, each with its own path, split, ``min_relevance``
and ``max_queries``, reported one by one and as their mean (the role NanoBEIR plays in sentence-transformers 6.2,
``sparse_encoder/evaluation/sparse_nano_beir.py``).

A suite file::

    name: bundled                     # used in metric keys (val/bundled/mean/ndcg@10); default: the file's stem
    description: free text            # optional
    sets:
      - {path: ../hotpotqa-500, split: dev, name: hotpotqa-dev}
      - {path: ../msmarco-trecdl-5k, split: test, min_relevance: 2}
      - {path: hf://BeIR/scifact, split: test}

Each entry takes the keys of :class:`~splade_lightning.formats.beir.BeirSet` (``path``, ``split``, ``name``,
``min_relevance``, ``max_queries``); a relative ``path`` is resolved against the suite file's directory. A preset
suite is a file ``<name>.yaml`` in the repository's ``data/suites/`` and can be named by its stem (``bundled``).
Every problem of a file is collected and raised together, each named ``<file>:<line>: sets[i]``. No torch here.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from splade_lightning.errors import ConfigError
from splade_lightning.formats.beir import BeirSet
from splade_lightning.formats.beir_hub import is_hub_path

#: where preset suites live (the repository's data/suites/)
SUITES_DIR = Path(__file__).resolve().parents[2] / "data" / "suites"
ENTRY_KEYS = ("path", "split", "name", "min_relevance", "max_queries")
FILE_KEYS = ("name", "description", "sets")
_NAME = re.compile(r"[\w.-]+")


@dataclass
class SuiteRef:
    """A ``val_sets`` / ``test_sets`` entry that stands for every set of a suite file, ``{suite: FILE}``.

    Args:
        suite: a suite file (``data/suites/bundled.yaml``) or the name of a preset suite (``bundled``).
    """

    suite: str


@dataclass
class SuiteEntry(BeirSet):
    """A :class:`~splade_lightning.formats.beir.BeirSet` read from a suite file, with its suite and where it is
    written, for messages.

    Attributes:
        suite: the suite's name (the loaded :class:`~splade_lightning.formats.beir.EvalData` carries it; its mean is
            logged as ``val/<suite>/mean/<measure>``).
        file: the suite file. line: the entry's line in it. index: the entry's position in ``sets``.
    """

    suite: str = ""
    file: str = ""
    line: int = 0
    index: int = 0

    @property
    def where(self) -> str:
        """``<file>:<line>: sets[<index>]``."""
        return f"{self.file}:{self.line}: sets[{self.index}]"


@dataclass
class Suite:
    """A parsed suite file.

    Attributes:
        name: the suite's name (metric keys ``val/<name>/mean/<measure>``).
        file: the suite file.
        sets: its evaluation sets, in file order.
    """

    name: str
    file: str
    sets: list[SuiteEntry]


def preset_suites() -> list[str]:
    """Names of the preset suites (``data/suites/*.yaml`` stems; empty when the repository's data/ is absent)."""
    return sorted(p.stem for p in SUITES_DIR.glob("*.yaml")) if SUITES_DIR.is_dir() else []


def suite_file(suite: str) -> Path:
    """The file behind a suite argument: a path (it ends with ``.yaml``/``.yml`` or holds a ``/``) or a preset name.

    Raises:
        ConfigError: no such file, or no such preset (the presets are listed).
    """
    if suite.endswith((".yaml", ".yml")) or "/" in suite or os.sep in suite:
        if not Path(suite).is_file():
            raise ConfigError(f"suite file {suite} does not exist; expected a YAML suite file or a preset name "
                              f"{preset_suites()}")
        return Path(suite)
    path = SUITES_DIR / f"{suite}.yaml"
    if not path.is_file():
        raise ConfigError(f"suite {suite!r} is not a preset suite (presets, the files in {SUITES_DIR}: "
                          f"{preset_suites()}); give a preset name or the path of a .yaml suite file")
    return path


def _int_at_least_1(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def parse_suite_entry(value: object, where: str, base: Path, problems: list[str]) -> BeirSet | None:
    """One ``sets`` entry as a :class:`BeirSet` (its ``path`` resolved against ``base``), or ``None`` after
    appending its problems (each prefixed with ``where``) to ``problems``.

    Args:
        value: the entry as YAML loaded it.
        where: how the entry is named in messages, ``<file>:<line>: sets[i]``.
        base: the suite file's directory.
        problems: receives the problems.
    """
    if not isinstance(value, dict):
        problems.append(f"{where}: expected a mapping {{path: ..., split: ...}}, got {value!r}")
        return None
    found = len(problems)
    problems += [f"{where}: unknown key {key!r}; expected keys {', '.join(ENTRY_KEYS)}" for key in value
                 if key not in ENTRY_KEYS]
    path = value.get("path")
    if not isinstance(path, str) or not path:
        problems.append(f"{where}.path: expected a BEIR directory or hf://<owner>/<name>, got {path!r}")
    for key in ("split", "name"):
        if key in value and (not isinstance(value[key], str) or not _NAME.fullmatch(value[key])):
            problems.append(f"{where}.{key}: expected a non-empty name of letters, digits, '_', '-', '.', got "
                            f"{value[key]!r}")
    if "min_relevance" in value and not _int_at_least_1(value["min_relevance"]):
        problems.append(f"{where}.min_relevance: expected an int >= 1, got {value['min_relevance']!r}")
    if value.get("max_queries") is not None and not _int_at_least_1(value["max_queries"]):
        problems.append(f"{where}.max_queries: expected an int >= 1 or null (all queries), got "
                        f"{value['max_queries']!r}")
    if len(problems) > found:
        return None
    if not is_hub_path(path) and not Path(path).is_absolute():
        path = os.path.normpath(base / path)
    return BeirSet(path, value.get("split", "test"), value.get("name"), value.get("min_relevance", 1),
                   value.get("max_queries"))


def _load_yaml(path: Path) -> tuple[object, yaml.Node | None]:
    try:
        text = path.read_text(encoding="utf-8")
        return yaml.safe_load(text), yaml.compose(text)
    except UnicodeDecodeError as e:
        raise ConfigError(f"suite file {path}: not valid UTF-8 ({e})") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError(f"{where}: not valid YAML: {getattr(e, 'problem', None) or e}") from e


def _entry_lines(root: yaml.Node | None) -> list[int]:
    """The 1-based line of each ``sets`` entry."""
    if not isinstance(root, yaml.MappingNode):
        return []
    for key, value in root.value:
        if key.value == "sets" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def read_suite(suite: str) -> Suite:
    """Read and check a suite file (or a preset, by name); the BEIR files themselves are checked by the caller
    (:func:`splade_lightning.data.arguments.check_eval_paths`) and read when the sets are loaded.

    Raises:
        ConfigError: every problem of the file at once: not YAML, not a mapping, unknown keys, no sets, a bad entry
            (not a mapping, unknown key, missing path, bad split/name/min_relevance/max_queries), duplicate names.
    """
    path = suite_file(suite)
    data, root = _load_yaml(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with keys {', '.join(FILE_KEYS)}, got {data!r}")
    problems = [f"{path}: unknown key {key!r}; expected keys {', '.join(FILE_KEYS)}" for key in data
                if key not in FILE_KEYS]
    name = data.get("name", path.stem)
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        problems.append(f"{path}: name: expected a name of letters, digits, '_', '-', '.' (it is used in metric "
                        f"keys), got {name!r}")
    sets = data.get("sets")
    if not isinstance(sets, list) or not sets:
        problems.append(f"{path}: sets: expected a non-empty list of {{path, split, name, min_relevance, "
                        f"max_queries}} mappings, got {sets!r}")
        sets = []
    lines = _entry_lines(root)
    entries = []
    for i, value in enumerate(sets):
        where = f"{path}:{lines[i] if i < len(lines) else '?'}: sets[{i}]"
        parsed = parse_suite_entry(value, where, path.parent, problems)
        if parsed is not None:
            entries.append(SuiteEntry(**vars(parsed), suite=str(name), file=str(path),
                                      line=lines[i] if i < len(lines) else 0, index=i))
    names = [e.display_name for e in entries]
    for duplicate in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"{path}: two sets are named {duplicate!r} (a name defaults to the directory's basename); "
                        "give each a distinct `name`")
    if problems:
        raise ConfigError(f"invalid suite file {path}:\n  " + "\n  ".join(problems))
    return Suite(str(name), str(path), entries)
