"""The schedule file of docs/contract.md §4 (``--json``): write it, and read it back strictly.

The file carries the complete normalised problem (every config key with its value), the
schedule's name, every op with its float times, the metrics and, when a solver ran, the
solver's status and bound. :func:`read_schedule` rebuilds the :class:`Problem` and the
:class:`Schedule` from the file alone and refuses, with a :class:`ScheduleFileError` naming the
reason, anything that is not a schedule file of this format version or whose ops and metrics
contradict its own problem. Whether the schedule obeys the rules is then
:func:`ppopt.validate.validate`'s job.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ppopt.atomic import atomic_write_text, read_input_text
from ppopt.config import problem_from_dict, problem_to_dict
from ppopt.config.files import loads_json
from ppopt.errors import ConfigError, ScheduleFileError
from ppopt.limits import fits, tidy
from ppopt.metrics import compute_metrics
from ppopt.problem import Problem
from ppopt.schedule import Op, Schedule
from ppopt.tasks import KIND_SPECS, Kind, Lane, Task
from ppopt.validate import check_claims

FORMAT_NAME = "ppopt-schedule"
FORMAT_VERSION = 1
FORMAT = f"{FORMAT_NAME}/{FORMAT_VERSION}"
TOP_KEYS = ("format", "problem", "schedule", "ops", "metrics", "solver", "interrupted", "pairs")
OP_KEYS = ("device", "stage", "microbatch", "kind", "start", "end")
#: Metrics every file must state (each one stated is re-computed on reading and compared).
CHECKED_METRICS = ("makespan", "span", "bubble_rate", "bubble_ratio")


def schedule_to_dict(schedule: Schedule, solver: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The schedule file's content as a JSON-ready dict (docs/contract.md §4)."""
    out: dict[str, Any] = {
        "format": FORMAT,
        "problem": problem_to_dict(schedule.problem),
        "schedule": schedule.name,
        "ops": [
            {
                "device": op.device,
                "stage": op.stage,
                "microbatch": op.microbatch,
                "kind": op.kind,
                "start": tidy(op.start),
                "end": tidy(op.end),
            }
            for op in schedule.all_ops()
        ],
        "metrics": tidy(_metrics(schedule)),
        "interrupted": schedule.interrupted,
    }
    if schedule.pairs:  # only then: files without pairs stay as they were
        out["pairs"] = [
            {"forward": [f.stage, f.microbatch], "backward": [b.stage, b.microbatch]}
            for f, b in sorted(schedule.pairs)
        ]
    if solver is not None:
        out["solver"] = tidy(dict(solver))
    return out


def _metrics(schedule: Schedule) -> dict[str, Any]:
    """The ``metrics`` object: the numbers of §5 and whether the memory limit is met, which
    a baseline run over the limit declares false so that ``ppopt validate`` knows."""
    metrics = compute_metrics(schedule)
    fits_limit = fits(metrics.peak_memory, schedule.problem.memory_caps)
    return {**metrics.to_dict(), "fits_memory_limit": fits_limit}


def dumps_schedule(schedule: Schedule, solver: Mapping[str, Any] | None = None) -> str:
    """The schedule file as text: number lists inline and one op per line, for readable diffs."""
    data = schedule_to_dict(schedule, solver)
    ops = data.pop("ops")
    head = _NUMBER_LIST.sub(_inline, json.dumps(data, indent=2, allow_nan=False))
    lines = ",\n".join("    " + json.dumps(op, allow_nan=False) for op in ops)
    return head.removesuffix("\n}") + ',\n  "ops": [\n' + lines + "\n  ]\n}\n"


#: A JSON list holding only numbers, as ``json.dumps(indent=2)`` spreads it over many lines.
_NUMBER_LIST = re.compile(r"\[(\n[\s\d.eE+\-,]+)\]")  # a raw newline is never inside a string


def _inline(match: re.Match[str]) -> str:
    return "[" + ", ".join(part.strip() for part in match.group(1).split(",")) + "]"


def write_schedule(
    path: str | Path, schedule: Schedule, solver: Mapping[str, Any] | None = None
) -> None:
    """Write the schedule file atomically (temporary file, then rename)."""
    atomic_write_text(path, dumps_schedule(schedule, solver))


@dataclass(frozen=True)
class ScheduleFile:
    """What a schedule file holds besides its ops' own numbers: the schedule, the ``solver``
    object (``None``: no solver ran) and whether it declares the memory limit met (a file
    that does not say is taken to claim it)."""

    schedule: Schedule
    solver: dict[str, Any] | None
    fits_memory_limit: bool = True


def read_schedule(path: str | Path) -> tuple[Schedule, dict[str, Any] | None]:
    """Read a schedule file: ``(schedule, solver dict or None)``; see :func:`read_schedule_file`."""
    file = read_schedule_file(path)
    return file.schedule, file.solver


def read_schedule_file(path: str | Path) -> ScheduleFile:
    """Read a schedule file.

    Raises :class:`ScheduleFileError` (one line) for an unreadable file, a file that is not a
    ppopt schedule, another format version, or ops/metrics inconsistent with the file's problem.
    """
    path = Path(path)
    text = read_input_text(path, ScheduleFileError)
    try:
        data = loads_json(text)
    except ConfigError as error:
        raise ScheduleFileError(f"{path}: not a schedule file ({error})") from None
    try:
        return schedule_file_from_dict(data)
    except ScheduleFileError as error:
        raise ScheduleFileError(f"{path}: {error}") from None


def schedule_from_dict(data: object) -> tuple[Schedule, dict[str, Any] | None]:
    """Rebuild the schedule of a parsed schedule file (see :func:`read_schedule`)."""
    file = schedule_file_from_dict(data)
    return file.schedule, file.solver


def schedule_file_from_dict(data: object) -> ScheduleFile:
    """Rebuild a parsed schedule file (see :func:`read_schedule_file`)."""
    if not isinstance(data, dict):
        raise ScheduleFileError("not a schedule file (expected a JSON object)")
    _check_format(data.get("format"))
    unknown = [key for key in data if key not in TOP_KEYS]
    if unknown:
        raise ScheduleFileError(f"{unknown[0]}: unknown key (known: {', '.join(TOP_KEYS)})")
    for key in ("problem", "schedule", "ops", "metrics"):
        if key not in data:
            raise ScheduleFileError(f"{key}: missing")
    try:
        problem = problem_from_dict(data["problem"])
    except ConfigError as error:
        raise ScheduleFileError(f"problem: {error}") from None
    name = data["schedule"]
    if not isinstance(name, str) or not name:
        raise ScheduleFileError(f"schedule: expected a name, got {name!r}")
    interrupted = data.get("interrupted", False)
    if not isinstance(interrupted, bool):
        raise ScheduleFileError(f"interrupted: expected true or false, got {interrupted!r}")
    pairs = _pairs(problem, data.get("pairs", []))
    rows, copies = _lanes(_rows(problem, data["ops"], {b for _, b in pairs}))
    schedule = Schedule(problem, name, rows, interrupted, copies, pairs)
    solver = data.get("solver")
    if solver is not None and not isinstance(solver, dict):
        raise ScheduleFileError(f"solver: expected an object, got {solver!r}")
    fits_limit = _check_claims(schedule, data["metrics"], solver)
    return ScheduleFile(schedule, solver, fits_limit)


def _check_format(value: object) -> None:
    if value == FORMAT:
        return
    if isinstance(value, str) and value.startswith(f"{FORMAT_NAME}/"):
        raise ScheduleFileError(f"format {value!r} is not supported (this ppopt reads {FORMAT!r})")
    raise ScheduleFileError(
        f'not a ppopt schedule file ("format" is {value!r}, expected {FORMAT!r})'
    )


def _pairs(problem: Problem, raw: object) -> frozenset[tuple[Task, Task]]:
    """The overlapped pairs of the file: ``{"forward": [stage, mb], "backward": [stage, mb]}``
    each (their rules are the validator's)."""
    if not isinstance(raw, list):
        raise ScheduleFileError(f"pairs: expected a list, got {type(raw).__name__}")
    out = set()
    for n, item in enumerate(raw):
        if not isinstance(item, dict) or sorted(item) != ["backward", "forward"]:
            raise ScheduleFileError(f"pairs[{n}]: expected an object with keys forward, backward")
        tasks = []
        for key, kind in (("forward", Kind.F), ("backward", Kind.B)):
            value = item[key]
            if not isinstance(value, list) or len(value) != 2:
                raise ScheduleFileError(f"pairs[{n}].{key}: expected [stage, microbatch]")
            stage = _index(f"pairs[{n}].{key}[0]", value[0], problem.num_stages)
            microbatch = _index(f"pairs[{n}].{key}[1]", value[1], problem.num_microbatches)
            tasks.append(Task(kind, stage, microbatch))
        out.add((tasks[0], tasks[1]))
    return frozenset(out)


def _rows(
    problem: Problem, ops: object, backs: set[Task] | frozenset[Task] = frozenset()
) -> tuple[tuple[Op, ...], ...]:
    """Per-device ops in run order (by start time; a pair's backward after its forward),
    each task exactly once."""
    if not isinstance(ops, list):
        raise ScheduleFileError(f"ops: expected a list, got {type(ops).__name__}")
    rows: list[list[Op]] = [[] for _ in range(problem.num_devices)]
    seen: set[Task] = set()
    for n, raw in enumerate(ops):
        op = _op(problem, n, raw)
        if op.task in seen:
            raise ScheduleFileError(f"ops[{n}]: task {op.task.label()} appears twice")
        seen.add(op.task)
        rows[op.device].append(op)
    missing = len(problem.tasks()) - len(seen)
    if missing:
        first = next(task for task in problem.tasks() if task not in seen)
        raise ScheduleFileError(
            f"ops: {missing} tasks of the problem are missing, e.g. {first.label()}"
        )
    if not backs:
        return tuple(tuple(sorted(row, key=lambda op: (op.start, op.end))) for row in rows)
    return tuple(
        tuple(sorted(row, key=lambda op: (op.start, op.end, op.task in backs))) for row in rows
    )


def _lanes(
    rows: tuple[tuple[Op, ...], ...],
) -> tuple[tuple[tuple[Op, ...], ...], tuple[tuple[Op, ...], ...]]:
    """The rows split into compute rows and copy-lane rows (none when no op is a copy)."""
    copy = Lane.COPY
    if not any(KIND_SPECS[op.kind].lane == copy for row in rows for op in row):
        return rows, ()
    compute = tuple(tuple(op for op in row if KIND_SPECS[op.kind].lane != copy) for row in rows)
    copies = tuple(tuple(op for op in row if KIND_SPECS[op.kind].lane == copy) for row in rows)
    return compute, copies


def _op(problem: Problem, n: int, raw: object) -> Op:
    """One op of the file, checked against the problem's shape."""
    where = f"ops[{n}]"
    if not isinstance(raw, dict) or sorted(raw) != sorted(OP_KEYS):
        raise ScheduleFileError(f"{where}: expected an object with keys {', '.join(OP_KEYS)}")
    kind = raw["kind"]
    if kind not in problem.kinds:
        raise ScheduleFileError(
            f"{where}.kind: expected one of {', '.join(problem.kinds)}, got {kind!r}"
        )
    device = _index(f"{where}.device", raw["device"], problem.num_devices)
    stage = _index(f"{where}.stage", raw["stage"], problem.num_stages)
    microbatch = _index(f"{where}.microbatch", raw["microbatch"], problem.num_microbatches)
    start, end = (_time(f"{where}.{key}", raw[key]) for key in ("start", "end"))
    if device != problem.device_of(stage):
        raise ScheduleFileError(
            f"{where}: stage index {stage} runs on device index {problem.device_of(stage)} by "
            f"the problem's placement, the file says device index {device}"
        )
    return Op(device, Kind(kind), stage, microbatch, start, end)


def _index(key: str, value: object, size: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
        raise ScheduleFileError(f"{key}: expected an index 0..{size - 1}, got {value!r}")
    return value


def _time(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ScheduleFileError(f"{key}: expected a finite number, got {value!r}")
    return float(value)


def _check_claims(schedule: Schedule, metrics: object, solver: dict[str, Any] | None) -> bool:
    """The file's metrics and solver fields must be those of its own ops
    (:func:`ppopt.validate.check_claims`, which shares no code with the metrics module);
    returns whether the file declares the memory limit met (``ppopt validate`` checks it)."""
    if not isinstance(metrics, dict):
        raise ScheduleFileError(f"metrics: expected an object, got {type(metrics).__name__}")
    for key in CHECKED_METRICS:
        if key not in metrics:
            raise ScheduleFileError(f"metrics.{key}: missing")
    fits = metrics.get("fits_memory_limit", True)
    if not isinstance(fits, bool):
        raise ScheduleFileError(f"metrics.fits_memory_limit: expected true or false, got {fits!r}")
    wrong = check_claims(schedule, metrics, solver)
    if wrong:
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        raise ScheduleFileError(wrong[0] + more)
    return fits
