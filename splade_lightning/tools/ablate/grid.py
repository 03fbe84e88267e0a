"""Grid YAML -> list of named points (each a nested dict of config overrides), validated before anything runs.

Format (every key except ``axes`` is optional)::

    name: lambda_sweep                  # study name (default: the grid file's stem)
    common:                             # overrides applied to every point (dotted keys -> values)
      eval_before_fit: false
    axes:                               # cartesian product; each axis maps a value name to its overrides
      lambda_d:
        1e-4: {model.init_args.doc_reg_weight: 1.0e-4}
        1e-3: {model.init_args.doc_reg_weight: 1.0e-3}
      warmup:
        "on": {}
        "off": {trainer.callbacks: [...]}   # a list replaces the base config's list
    points:                             # extra explicit points: name -> overrides (not crossed with the axes)
      controller: {trainer.callbacks: [...]}
    seeds: [0, 1, 2]                    # each point runs once per seed (default: once, with the base config's seed)
    baseline: controller                # the point every other point is tested against (default: none)
    x-anything: ...                     # ignored: a place for YAML anchors (&cb / *cb) shared by the values

Points run in order: the explicit points first, then the product (the last axis varies fastest). With ``seeds``, every
point runs with the first seed before any runs with the second (a partial study still covers every point), each run
with ``seed_everything: <seed>`` added to its overrides, in ``<point dir>/seed-<seed>``.

Overrides are applied in order common -> axes (in file order) -> point; a later value replaces an earlier one at the
same key. A point of the product is named ``lambda_d=1e-4,warmup=on``; its directory ``lambda_d-1e-4__warmup-on``.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from splade_lightning.errors import ConfigError

TOP_KEYS = ("name", "common", "axes", "points", "seeds", "baseline")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+\-=,]*$")


@dataclass
class Point:
    """One point of the study, or one run of it (a point with its seed).

    Attributes:
        name: display name (``axis=value,...`` or the explicit point's name).
        labels: ``{axis: value name}`` for product points; ``{"point": name}`` for explicit points.
        overrides: nested dict of config overrides (written as the point's override YAML).
        seed: the run's ``seed_everything`` when the grid lists ``seeds``; None: the base config's seed.
    """

    name: str
    labels: dict[str, str]
    overrides: dict = field(default_factory=dict)
    seed: int | None = None

    @property
    def dirname(self) -> str:
        """File-system-safe directory name (relative to the runs directory): ``<point>`` or ``<point>/seed-<s>``."""
        base = self.name.replace("=", "-").replace(",", "__")
        return base if self.seed is None else f"{base}/seed-{self.seed}"

    @property
    def family(self) -> str:
        """The point's family in plots: ``named points`` for explicit points; for a product point every label but
        the last axis's (``warmup=on`` for ``warmup=on,lambda_d=1e-4``: one line per warm-up setting along the λ
        axis), or its own name when the grid has a single axis."""
        if list(self.labels) == ["point"]:
            return "named points"
        outer = list(self.labels.items())[:-1]
        return ",".join(f"{a}={v}" for a, v in outer) if outer else self.name

    @property
    def run_name(self) -> str:
        """The run's display name: ``name``, or ``name/seed-<s>`` with a seed."""
        return self.name if self.seed is None else f"{self.name}/seed-{self.seed}"


@dataclass
class Study:
    """A parsed grid.

    Attributes:
        name: the study name.
        points: the points in run order.
        seeds: the seeds every point runs with; None: one run per point with the base config's seed.
        baseline: the name of the point the others are tested against, or None.
    """

    name: str
    points: list[Point]
    seeds: list[int] | None = None
    baseline: str | None = None

    def runs(self) -> list[Point]:
        """Every (point, seed) run, seed-major: all points with the first seed, then all with the second, ...
        Each run's overrides set ``seed_everything`` to its seed."""
        if self.seeds is None:
            return list(self.points)
        return [Point(p.name, p.labels, deep_merge(p.overrides, {"seed_everything": s}), s) for s in self.seeds
                for p in self.points]


def read_yaml_mapping(path: Path, option: str, what: str, shape: str) -> dict:
    """The YAML file ``path`` (given as ``option``) as a mapping, or a ConfigError naming the option and the file."""
    if not path.is_file():
        raise ConfigError(f"{option} {path}: no such file; expected {what}")
    try:
        value = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{option} {path}: not valid YAML: {err}") from err
    if not isinstance(value, dict):
        raise ConfigError(f"{option} {path}: expected {shape}")
    return value


def nest(dotted: dict, where: str) -> dict:
    """``{"a.b.c": 1}`` -> ``{"a": {"b": {"c": 1}}}`` (keys without dots stay as they are).

    Raises:
        ConfigError: if a key is empty or one key is a prefix of another (``a.b`` and ``a.b.c``).
    """
    out: dict = {}
    for key in sorted(dotted, key=lambda k: str(k).count(".")):
        parts = str(key).split(".")
        if not all(parts):
            raise ConfigError(f"{where}: override key {key!r}: expected dotted names such as model.init_args.lr")
        node = out
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{where}: override key {key!r} goes inside {part!r}, which is set to a value")
            node = child
        if parts[-1] in node:
            raise ConfigError(f"{where}: override key {key!r} is given twice (or also as a prefix of another key)")
        node[parts[-1]] = dotted[key]
    return out


def deep_merge(base: dict, update: dict) -> dict:
    """A copy of ``base`` with ``update`` merged in: mappings merge recursively, anything else (lists too)
    replaces."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _overrides(value, where: str, problems: list[str]) -> dict:
    """Validate one override mapping (``None`` is an empty one) and nest it; record problems instead of raising."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{where}: expected a mapping of dotted config keys to values, got {type(value).__name__}")
        return {}
    try:
        return nest(value, where)
    except ConfigError as err:
        problems.append(str(err))
        return {}


def _check_name(name, where: str, problems: list[str]) -> str:
    name = str(name)
    if not _NAME.match(name):
        problems.append(f"{where}: name {name!r}: expected letters, digits and _ . + - (starting with a letter or "
                        "digit)")
    return name


def _parse_axes(axes, path: Path, problems: list[str]) -> list[tuple[str, list[tuple[str, dict]]]]:
    if axes is None:
        return []
    if not isinstance(axes, dict):
        problems.append(f"{path}: 'axes': expected a mapping axis -> {{value name: overrides}}")
        return []
    parsed = []
    for axis, values in axes.items():
        where = f"{path}: axes.{axis}"
        axis = _check_name(axis, where, problems)
        if not isinstance(values, dict) or not values:
            problems.append(f"{where}: expected a non-empty mapping of value names to overrides")
            continue
        parsed.append((axis, [(_check_name(v, f"{where}.{v}", problems),
                               _overrides(o, f"{where}.{v}", problems)) for v, o in values.items()]))
    return parsed


def _parse_seeds(seeds, points: list[Point], path: Path, problems: list[str]) -> list[int] | None:
    if seeds is None:
        return None
    if (not isinstance(seeds, list) or not seeds or len(set(map(str, seeds))) != len(seeds)
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds)):
        problems.append(f"{path}: 'seeds': expected a non-empty list of distinct integers >= 0 (e.g. [0, 1, 2]), got "
                        f"{seeds!r}")
        return None
    clash = [p.name for p in points if "seed_everything" in p.overrides]
    if clash:
        problems.append(f"{path}: 'seeds' sets seed_everything for every run, but point(s) {', '.join(clash[:5])} "
                        "also set it; remove one of the two")
    return list(seeds)


def load_grid(path: str | Path) -> tuple[str, list[Point]]:
    """Read and validate a grid YAML; return ``(study name, points)`` in run order (see :func:`load_study`)."""
    study = load_study(path)
    return study.name, study.points


def load_study(path: str | Path) -> Study:
    """Read and validate a grid YAML: the study name, its points in run order (the explicit points first, then the
    product in axis order), its seeds and its baseline point.

    Raises:
        ConfigError: naming the file and key of every problem found (all reported together).
    """
    path = Path(path)
    spec = read_yaml_mapping(path, "--grid", "a grid YAML (see experiments/README.md)",
                             f"a mapping with keys {', '.join(TOP_KEYS)}")
    problems = [f"{path}: unknown key {k!r}; expected one of {', '.join(TOP_KEYS)} (or x-<anything> for YAML "
                "anchors)" for k in spec if k not in TOP_KEYS and not str(k).startswith("x-")]
    name = _check_name(spec.get("name", path.stem), f"{path}: name", problems)
    common = _overrides(spec.get("common"), f"{path}: common", problems)
    axes = _parse_axes(spec.get("axes"), path, problems)
    explicit = spec.get("points") or {}
    if not isinstance(explicit, dict):
        problems.append(f"{path}: 'points': expected a mapping of point names to overrides")
        explicit = {}
    points = []
    for point_name, value in explicit.items():
        point_name = _check_name(point_name, f"{path}: points.{point_name}", problems)
        points.append(Point(point_name, {"point": point_name},
                            deep_merge(common, _overrides(value, f"{path}: points.{point_name}", problems))))
    if axes:
        points += [_product_point(combo, axes, common) for combo in itertools.product(*[v for _, v in axes])]
    if not points and not problems:
        problems.append(f"{path}: no points: give 'axes' and/or 'points'")
    seen: set[str] = set()
    for point in points:
        if point.dirname in seen:
            problems.append(f"{path}: point {point.name!r} is defined twice")
        seen.add(point.dirname)
    seeds = _parse_seeds(spec.get("seeds"), points, path, problems)
    baseline = spec.get("baseline")
    if baseline is not None and str(baseline) not in {p.name for p in points}:
        problems.append(f"{path}: 'baseline': {baseline!r} is not a point of the grid; expected one of "
                        f"{', '.join(p.name for p in points[:10])}")
    if problems:
        raise ConfigError(f"{len(problems)} problem(s) in the grid:\n  " + "\n  ".join(problems))
    return Study(name, points, seeds, None if baseline is None else str(baseline))


def _product_point(combo: tuple[tuple[str, dict], ...], axes: list, common: dict) -> Point:
    labels = {axis: value for (axis, _), (value, _) in zip(axes, combo)}
    overrides = common
    for _, nested in combo:
        overrides = deep_merge(overrides, nested)
    return Point(",".join(f"{a}={v}" for a, v in labels.items()), labels, overrides)
