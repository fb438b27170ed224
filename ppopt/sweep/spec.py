"""Sweep files: ``base:`` (a problem config), ``grid:`` (key -> values), ``schedules:``.

An optional ``solver:`` section sets the optimizer's options for every run. A sweep is the
cross product of the grid, each point merged into the base config, times the
schedules: one *run* per (point, schedule). Everything is checked before any run starts:
an unknown grid key, an empty grid, an unknown schedule, and every grid point's problem (built
exactly as ``ppopt solve`` would build it), so a bad sweep fails in a second with one line
naming the culprit instead of an hour later.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ppopt.config import (
    MEMORY_KEYS,
    OPTIMAL,
    PROBLEM_KEYS,
    SOLVER_KEYS,
    ConfigError,
    RunConfig,
    build_run_config,
    check_keys,
    culprit_key,
    is_known_schedule,
    known_schedules,
    problem_to_dict,
    read_data_file,
)

SWEEP_KEYS = ("base", "grid", "schedules", "solver")
#: Config keys a sweep's base may not set: each run's schedule comes from ``schedules:`` and a
#: sweep writes its own outputs.
RUN_ONLY_KEYS = ("schedule", "output_file", "json_file", "trace_file")
#: Keys a grid may vary: every problem key (``memory`` by its parts) and every solver setting.
GRID_KEYS = (
    *(key for key in PROBLEM_KEYS if key != "memory"),
    *(f"memory.{key}" for key in MEMORY_KEYS),
    *(f"solver.{key}" for key in SOLVER_KEYS),
)

Raw = dict[str, Any]


class SweepError(ConfigError):
    """An invalid sweep file; one line naming the file and the culprit (exit code 2)."""


@dataclass(frozen=True)
class Run:
    """One (grid point, schedule) pair.

    ``params`` are the grid values of the point; ``config`` is the complete config dict (base,
    sweep solver settings and the point merged, plus ``schedule``) that a worker rebuilds the
    problem from; ``key`` is a stable hash of the normalised run (see :func:`run_key`);
    ``workers`` is the CP-SAT worker count the runner gives an optimizer solve (0: not chosen).
    """

    params: dict[str, Any]
    schedule: str
    config: Raw
    key: str
    num_tasks: int
    workers: int = 0


@dataclass(frozen=True)
class Sweep:
    """A validated sweep file and its runs, in grid order (first grid key slowest)."""

    path: Path
    grid_keys: tuple[str, ...]
    schedules: tuple[str, ...]
    runs: tuple[Run, ...]

    @property
    def num_points(self) -> int:
        """The number of grid points (runs per schedule)."""
        return len(self.runs) // len(self.schedules)


def load_sweep(path: str | Path) -> Sweep:
    """Read, check and expand a sweep file; :class:`SweepError` names the first problem."""
    path = Path(path)
    try:
        return expand(read_sweep_file(path), path)
    except SweepError as error:
        message = str(error)
        located = message if message.startswith(f"{path}:") else f"{path}: {message}"
        raise SweepError(located) from None


def read_sweep_file(path: Path) -> Raw:
    """Parse a YAML or JSON sweep file (strictly: no duplicate keys) into a mapping of the
    sweep keys."""
    try:
        data = read_data_file(path, "sweep")
    except ConfigError as error:
        raise SweepError(str(error)) from None
    if not isinstance(data, Mapping):
        raise SweepError("expected a mapping with base:, grid:, schedules: (and solver:)")
    for key in data:
        if key not in SWEEP_KEYS:
            raise SweepError(f"{key}: unknown sweep key (known: {', '.join(SWEEP_KEYS)})")
    return dict(data)


def expand(data: Mapping[str, Any], path: Path) -> Sweep:
    """Check every part of a parsed sweep and build its runs (each problem validated)."""
    base = _base(data.get("base"))
    grid = _grid(data.get("grid"))
    schedules = _schedules(data.get("schedules"))
    solver = _section(data.get("solver"), "solver", SOLVER_KEYS)
    if solver:
        base["solver"] = {**(base.get("solver") or {}), **solver}
    runs: dict[str, Run] = {}
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values, strict=True))
        point = apply_point(base, params)
        for schedule in schedules:
            run = _run(params, schedule, point)
            if run.key in runs:
                raise SweepError(
                    f"grid points ({_point(runs[run.key].params)}) and ({_point(params)}) are "
                    f"the same {schedule} run; list each value once"
                )
            runs[run.key] = run
    return Sweep(path, tuple(grid), schedules, tuple(runs.values()))


def _point(params: Mapping[str, Any]) -> str:
    """A grid point as ``k=v, ...``."""
    return ", ".join(f"{k}={v}" for k, v in params.items())


def apply_point(base: Mapping[str, Any], params: Mapping[str, Any]) -> Raw:
    """The config of one grid point: ``base`` with each (possibly dotted) grid key set."""
    config = copy.deepcopy(dict(base))
    for key, value in params.items():
        section, _, sub = key.partition(".")
        if sub:
            config[section] = {**(config.get(section) or {}), sub: value}
        else:
            config[key] = value
    return config


def run_key(config: Mapping[str, Any]) -> str:
    """A stable hash of a run: its normalised problem, schedule and (for the optimizer) the
    solver settings. Two spellings of one problem (``2`` or ``[2, 2, 2, 2]``) share a key, so
    a resumed sweep skips them; the runner's worker count is not part of it."""
    return _key(build_run_config(config))


def _key(run: RunConfig) -> str:
    identity: Raw = {"problem": problem_to_dict(run.problem), "schedule": run.schedule}
    if run.schedule == OPTIMAL:
        identity["solver"] = asdict(run.solver)
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _run(params: Raw, schedule: str, point: Raw) -> Run:
    """Build and validate one run; a bad value is an error naming the grid point when a grid
    key is the culprit, else naming the base key."""
    config = {**point, "schedule": schedule}
    try:
        run = build_run_config(config)
    except ConfigError as error:
        raise SweepError(_blame(str(error), params)) from None
    return Run(params, schedule, config, _key(run), run.problem.num_tasks)


def _blame(message: str, params: Mapping[str, Any]) -> str:
    """``grid point (k=v, ...): msg`` when the culprit key is in the grid, else ``base.msg``."""
    top, sub = culprit_key(message)
    culprit = f"{top}.{sub}" if sub else top
    if culprit in params or top in params:
        return f"grid point ({_point(params)}): {message}"
    if message.startswith(f"{culprit}: missing"):
        return f"base.{culprit}: missing; give it in base: or as a grid key"
    return f"base.{message}"


def _base(value: object) -> Raw:
    """The base config: config-file keys only, none of the per-run ones."""
    if value is None:
        raise SweepError("base: missing; give the problem config every grid point starts from")
    try:
        base = dict(check_keys(value))
    except ConfigError as error:
        where = "base." if isinstance(value, Mapping) else "base: "
        raise SweepError(f"{where}{error}") from None
    for key in RUN_ONLY_KEYS:
        if key in base:
            raise SweepError(f"base.{key}: not used by a sweep (use schedules: for schedules)")
    return base


def _grid(value: object) -> dict[str, list[Any]]:
    """The grid: known keys, each with a non-empty list of values."""
    if value is None or (isinstance(value, Mapping) and not value):
        raise SweepError("grid: empty; give at least one key with a list of values")
    if not isinstance(value, Mapping):
        raise SweepError("grid: expected a mapping of config key -> list of values")
    grid: dict[str, list[Any]] = {}
    for key, values in value.items():
        if key not in GRID_KEYS:
            raise SweepError(f"grid.{key}: unknown grid key (known: {', '.join(GRID_KEYS)})")
        if not isinstance(values, list):
            raise SweepError(f"grid.{key}: expected a list of values, got {values!r}")
        if not values:
            raise SweepError(f"grid.{key}: empty list of values")
        grid[key] = values
    return grid


def _schedules(value: object) -> tuple[str, ...]:
    """The schedule names: a non-empty list of known, distinct names."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise SweepError(f"schedules: give a list of names ({', '.join(known_schedules())})")
    for name in value:
        if not is_known_schedule(name):
            known = ", ".join(known_schedules())
            raise SweepError(f"schedules: unknown schedule {name!r} (known: {known})")
    if len(set(value)) != len(value):
        raise SweepError("schedules: a schedule is listed twice")
    return tuple(value)


def _section(value: object, name: str, known: tuple[str, ...]) -> Raw:
    """An optional mapping section whose keys must be ``known``."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SweepError(f"{name}: expected a mapping ({', '.join(known)})")
    for key in value:
        if key not in known:
            raise SweepError(f"{name}.{key}: unknown key (known: {', '.join(known)})")
    return dict(value)
