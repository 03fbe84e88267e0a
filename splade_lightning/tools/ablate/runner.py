"""Run the runs of a study: one ``python -m splade_lightning fit`` per (point, seed) run in its own directory
(:attr:`~splade_lightning.tools.ablate.grid.Point.dirname`), resumable, optionally several at once (one per GPU via
CUDA_VISIBLE_DEVICES). Each function takes runs (points carrying their seed) and keys them by ``run_name``."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

from splade_lightning.errors import ConfigError
from splade_lightning.formats.atomic import write_text_atomic
from splade_lightning.formats.manifest import write_manifest
from splade_lightning.formats.outputs import dir_output_state, remove_owned
from splade_lightning.tools.ablate.grid import Point, deep_merge

#: a point runner: (point, its directory, extra environment) -> process return code
RunFn = Callable[[Point, Path, dict], int]


def find_report(point_dir: Path) -> Path | None:
    """The point's complete ``report.json`` (``fit`` writes it atomically, last), or None if the point has not
    finished: a run killed mid-way leaves none, or one that does not parse."""
    for path in sorted(point_dir.rglob("report.json")):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(report, dict) and report.get("fine_tuned"):
            return path
    return None


def point_overrides(point: Point, point_dir: Path, base: dict) -> dict:
    """The point's overrides plus where its run writes: ``trainer.default_root_dir`` and, when the base config has
    a logger with a ``save_dir``, the logger's ``save_dir`` (both the point's directory)."""
    where = {"trainer": {"default_root_dir": str(point_dir)}}
    logger = deep_merge(base, point.overrides).get("trainer", {}).get("logger")
    if isinstance(logger, dict) and "save_dir" in (logger.get("init_args") or {}):
        where["trainer"]["logger"] = {"init_args": {"save_dir": str(point_dir)}}
    return deep_merge(point.overrides, where)


def fit_command(base_config: Path, override_file: Path) -> list[str]:
    """``python -m splade_lightning fit --config BASE --config OVERRIDE``."""
    return [sys.executable, "-m", "splade_lightning", "fit", "--config", str(base_config), "--config",
            str(override_file)]


def subprocess_runner(base_config: Path) -> RunFn:
    """The real runner: ``fit`` in a subprocess, its output in ``<point dir>/run.log``."""
    def run(point: Point, point_dir: Path, env: dict) -> int:
        with open(point_dir / "run.log", "w", encoding="utf-8") as log:
            proc = subprocess.run(fit_command(base_config, point_dir / "override.yaml"), stdout=log,
                                  stderr=subprocess.STDOUT, env={**os.environ, **env}, check=False)
        return proc.returncode
    return run


def thread_env(jobs: int, cpus: int | None = None) -> dict[str, str]:
    """``{"OMP_NUM_THREADS": cpus // jobs}`` when points run concurrently and the user has not set it: each ``fit``
    otherwise starts one torch thread per CPU, and ``jobs`` of them oversubscribe the cores (seen on 2 cores with 2
    fits of 2 threads each: half the CPU time was spent in the kernel). ``{}`` for one job at a time."""
    if jobs <= 1 or "OMP_NUM_THREADS" in os.environ:
        return {}
    return {"OMP_NUM_THREADS": str(max(1, (cpus or os.cpu_count() or 1) // jobs))}


def point_fingerprint(point: Point, base_text: str) -> dict:
    """What a point's result depends on: the base config's text and the point's overrides. (The data files the
    config names are not hashed: edit them and rerun with ``--overwrite``.)"""
    return {"base_config": hashlib.sha256(base_text.encode("utf-8")).hexdigest(),
            "overrides": json.loads(json.dumps(point.overrides, sort_keys=True, default=str))}


def point_state(point_dir: Path, fingerprint: dict) -> str:
    """``done`` (a complete report built from ``fingerprint``), ``stale`` (a complete report built from something
    else), ``unfinished`` (ours, no complete report) or ``new``.

    Raises:
        ConfigError: the directory exists but the runner did not write it (no manifest, or foreign files).
    """
    state, manifest = dir_output_state(point_dir, f"--runs_dir point directory {point_dir.name}")
    if state != "ours":
        return "new"
    if find_report(point_dir) is None or not manifest.get("complete"):
        return "unfinished"
    return "done" if manifest.get("fingerprint") == fingerprint else "stale"


def prepare(point: Point, point_dir: Path, base: dict, fingerprint: dict) -> None:
    """Start the point afresh: remove what an earlier attempt of the runner left (only a directory it wrote), write
    the manifest (``complete: false``) and ``override.yaml``."""
    state, manifest = dir_output_state(point_dir, f"--runs_dir point directory {point_dir.name}")
    if state == "ours":
        remove_owned(point_dir, manifest)
    point_dir.mkdir(parents=True, exist_ok=True)
    write_manifest(point_dir, "ablate", fingerprint, complete=False, files={}, owned_dirs=["."])
    overrides = point_overrides(point, point_dir, base)
    write_text_atomic(point_dir / "override.yaml", yaml.safe_dump(overrides, sort_keys=False))


def check_points(points: Sequence[Point], runs_dir: Path, base_text: str, overwrite: bool) -> dict[str, str]:
    """The state of every point (:func:`point_state`), checked before anything runs.

    Raises:
        ConfigError: a point directory the runner did not write, or finished points built from another base config
            or other overrides (listed) without ``overwrite``.
    """
    states = {p.run_name: point_state(runs_dir / p.dirname, point_fingerprint(p, base_text)) for p in points}
    stale = [name for name, state in states.items() if state == "stale"]
    if stale and not overwrite:
        raise ConfigError(f"--runs_dir {runs_dir}: {len(stale)} finished point(s) were run with another base config "
                          f"or other overrides ({', '.join(stale[:5])}{' ...' if len(stale) > 5 else ''}); nothing "
                          "was run. Pass --overwrite to run them again, or use another --runs_dir")
    return states


def run_points(points: Sequence[Point], runs_dir: Path, base: dict, run_fn: RunFn, jobs: int = 1,
               devices: Sequence[str] = (), log: Callable[[str], None] = print, base_text: str = "",
               overwrite: bool = False) -> dict[str, dict]:
    """Run every point that is not finished with its current fingerprint; return ``{run name: status}`` where
    status is ``{"state": "skipped" | "done" | "failed", "returncode", "wall_s"}``.

    Finished points (a complete ``report.json`` and a manifest with the same base config and overrides) are skipped;
    an unfinished point directory the runner wrote is cleared and the point run again; a finished point built from
    something else is refused unless ``overwrite`` (:func:`check_points`). With ``jobs > 1`` points run
    concurrently; job slot ``i`` gets ``CUDA_VISIBLE_DEVICES=devices[i % len(devices)]`` when ``devices`` is given.
    """
    states = check_points(points, runs_dir, base_text, overwrite)
    status: dict[str, dict] = {}
    todo = []
    for point in points:
        if states[point.run_name] == "done":
            status[point.run_name] = {"state": "skipped", "returncode": 0, "wall_s": _recorded_wall(runs_dir, point)}
            log(f"[ablate] {point.run_name}: finished before, skipped")
        else:
            todo.append(point)

    slots: queue.SimpleQueue[int] = queue.SimpleQueue()
    for slot in range(max(1, jobs)):
        slots.put(slot)

    def one(point: Point) -> tuple[str, dict]:
        slot = slots.get()  # a free job slot: no two running points share a device
        try:
            return run_one(point, slot)
        finally:
            slots.put(slot)

    def run_one(point: Point, slot: int) -> tuple[str, dict]:
        point_dir = runs_dir / point.dirname
        fingerprint = point_fingerprint(point, base_text)
        prepare(point, point_dir, base, fingerprint)
        env = {"CUDA_VISIBLE_DEVICES": str(devices[slot % len(devices)])} if devices else {}
        env.update(thread_env(jobs))
        where = f" (CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']})" if env else ""
        log(f"[ablate] {point.run_name}: running in {point_dir}{where}")
        start = time.monotonic()
        code = run_fn(point, point_dir, env)
        wall = time.monotonic() - start
        done = code == 0 and find_report(point_dir) is not None
        result = {"state": "done" if done else "failed", "returncode": code, "wall_s": round(wall, 1)}
        record = {"point": point.name, "seed": point.seed, **result}
        write_text_atomic(point_dir / "runner.json", json.dumps(record, indent=2))
        write_manifest(point_dir, "ablate", fingerprint, complete=done, files={}, owned_dirs=["."])
        log(f"[ablate] {point.run_name}: {result['state']} in {wall:.0f} s" + ("" if done else
                                                                           f" (see {point_dir / 'run.log'})"))
        return point.run_name, result

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for name, result in pool.map(one, todo):
            status[name] = result
    return {p.run_name: status[p.run_name] for p in points}


def _recorded_wall(runs_dir: Path, point: Point) -> float | None:
    path = runs_dir / point.dirname / "runner.json"
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("wall_s")
    except (OSError, json.JSONDecodeError):
        return None
