"""An independent check of a timed schedule against every rule of docs/contract.md §1.

This module deliberately shares no code with the timeline engine or the metrics module: it
reads the schedule's ops and asks the :class:`~ppopt.problem.Problem` only for the rules
themselves (tasks, placement, durations, dependencies, latencies, memory amounts). A bug in the
engine therefore cannot hide itself here. Every violation comes back as one sentence in the
problem's words, e.g. ``device 2: F3@s1 starts at 4.0 before its dependency F3@s0 ends at
4.5 + p2p 0.5``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ppopt.errors import ScheduleInvalid
from ppopt.problem import Problem
from ppopt.schedule import Op, Schedule
from ppopt.tasks import Kind, Task

#: A task as a plain ``(kind, stage, microbatch)`` tuple; equal and hash-equal to a ``Task``.
_Key = tuple[Kind, int, int]


def validate(
    schedule: Schedule, limit: Sequence[float] | None = None, tol: float = 1e-9
) -> list[str]:
    """Every violation of docs/contract.md §1 in ``schedule``, in words; an empty list means valid.

    ``limit`` is the absolute memory limit per device, one value or one per device (``None``:
    memory is not checked). Times are compared with a tolerance relative to their size
    (``tol * max(1, |t|)``) and memory with ``tol * max(1, limit)``, so float rounding is
    never reported as a violation.
    """
    problem = schedule.problem
    violations: list[str] = []
    first, seen, rows = _known_ops(schedule, violations)
    violations += _coverage(problem, seen)
    for d, row in enumerate(rows):
        violations += _row_rules(problem, d, row, tol)
    violations += _dependency_rules(problem, first, tol)
    if limit is not None:
        violations += _memory_rules(problem, rows, _per_device(problem, limit), tol)
    return violations


def check_tight(schedule: Schedule, tol: float = 1e-9) -> list[str]:
    """Every task that does not start exactly as early as its device order allows, in words.

    Tight means: start = max(end of the previous op on the device (0 for the first), end of
    each dependency + its latency). The engine's output is tight by construction; a schedule
    with needless idle time is valid but not tight.
    """
    problem = schedule.problem
    first, _, rows = _known_ops(schedule, [])
    edges = _edges(problem)
    out = []
    for d, row in enumerate(rows):
        free = 0.0
        for op in row:
            _, kind, s, i, start, end = op
            earliest = free
            for dk, ds, latency in edges[kind, s]:
                before = first.get((dk, ds, i))
                if before is not None and before.end + latency > earliest:
                    earliest = before.end + latency
            if abs(start - earliest) > tol * max(1.0, abs(earliest)):
                out.append(_slack_text(problem, d, op, free, earliest, first))
            free = end
    return out


def assert_valid(
    schedule: Schedule,
    limit: Sequence[float] | None = None,
    tight: bool = False,
    tol: float = 1e-9,
) -> None:
    """Raise :class:`ScheduleInvalid` listing every violation (and, if ``tight``, every slack)."""
    violations = validate(schedule, limit, tol)
    if tight:
        violations += check_tight(schedule, tol)
    if violations:
        raise ScheduleInvalid(schedule.name, violations)


def memory_peaks(schedule: Schedule) -> tuple[float, ...]:
    """Per device, the largest activation memory it holds at any instant (own computation)."""
    _, _, rows = _known_ops(schedule, [])
    peaks = []
    for row in rows:
        level = peak = 0.0
        for _, _, delta, _ in _memory_events(schedule.problem, row):
            level += delta
            peak = max(peak, level)
        peaks.append(peak)
    return tuple(peaks)


# ------------------------------------------------------------------------------- the rules


def _known_ops(
    schedule: Schedule, violations: list[str]
) -> tuple[dict[_Key, Op], set[_Key], list[list[Op]]]:
    """The first checkable op of each task, every task seen, and per device the checkable ops.

    Reports ops that are not tasks of the problem, repeat a task, say another device than
    their row, or have non-finite times; non-tasks and non-finite ops are left out of the
    later checks (they would only add noise).
    """
    problem = schedule.problem
    kinds, S, m = problem.kinds, problem.num_stages, problem.num_microbatches
    first: dict[_Key, Op] = {}
    seen: set[_Key] = set()
    rows: list[list[Op]] = []
    for d, row in enumerate(schedule.device_ops):
        kept = []
        for op in row:
            device, kind, s, i, start, end = op
            if not (kind in kinds and _index(s, S) and _index(i, m)):
                violations.append(f"device {d}: {_label(op)} is not a task of this problem")
                continue
            if kind == Kind.R and not problem.is_recomputed(s, i):
                violations.append(
                    f"device {d}: {_label(op)} recomputes a micro-batch the problem does not "
                    f"recompute on stage {s}"
                )
                continue
            key = (kind, s, i)
            if key in seen:
                violations.append(f"device {d}: {_label(op)} appears more than once")
            seen.add(key)
            if device != d:
                violations.append(
                    f"device {d}: {_label(op)} is in device {d}'s row but says device {device}"
                )
            if math.isfinite(start) and math.isfinite(end):
                kept.append(op)
                first.setdefault(key, op)
            else:
                violations.append(
                    f"device {d}: {_label(op)} has a non-finite time ({start} to {end})"
                )
        rows.append(kept)
    return first, seen, rows


def _edges(problem: Problem) -> dict[tuple[Kind, int], list[tuple[Kind, int, float]]]:
    """Per ``(kind, stage)``: its dependencies' ``(kind, stage, latency)``, asked of the problem.

    Dependencies link tasks of one micro-batch, so one rule stands for every micro-batch; this
    keeps the per-op work to dictionary look-ups. An edge to a task the problem does not have
    (the R of a micro-batch that is not recomputed) is void: such a task is never among the
    checked ops, and a missing task of the problem is reported by the coverage rule.
    """
    return {
        key: [(edge.kind, edge.stage, edge.latency) for edge in edges]
        for key, edges in problem.edges.items()
    }


def _coverage(problem: Problem, seen: set[_Key]) -> list[str]:
    """Every task of the problem present (repeats are found in :func:`_known_ops`)."""
    return [f"{task.label()} is in no device's ops" for task in problem.tasks() if task not in seen]


def _row_rules(problem: Problem, d: int, row: list[Op], tol: float) -> list[str]:
    """Placement, duration, start >= 0, and time order without overlap on one device."""
    out = []
    placement = problem.placement
    durations = {
        (k, s): problem.duration(k, s) for k in problem.kinds for s in range(problem.num_stages)
    }
    previous: Op | None = None
    for op in row:
        _, kind, s, _, start, end = op
        if placement[s] != d:
            out.append(
                f"device {d}: {_label(op)} runs here but stage {s} is placed on "
                f"device {placement[s]}"
            )
        expected = durations[kind, s]
        if abs((end - start) - expected) > tol * max(1.0, abs(end), expected):
            out.append(
                f"device {d}: {_label(op)} lasts {_t(end - start)} ({_t(start)} to {_t(end)}), "
                f"expected {_t(expected)}"
            )
        if start < -tol:
            out.append(f"device {d}: {_label(op)} starts at {_t(start)}, before time 0")
        if previous is not None and start < previous.end - tol * max(1.0, abs(previous.end)):
            out.append(_order_text(d, previous, op))
        previous = op
    return out


def _order_text(d: int, before: Op, after: Op) -> str:
    """Words for two consecutive ops of a device where the second starts before the first ends."""
    if after.start < before.start:
        return (
            f"device {d}: {_label(after)} is listed after {_label(before)} but starts earlier "
            f"({_t(after.start)} < {_t(before.start)}): ops out of time order"
        )
    return (
        f"device {d}: {_label(after)} starts at {_t(after.start)} while {_label(before)} runs "
        f"until {_t(before.end)} (overlap)"
    )


def _dependency_rules(problem: Problem, first: dict[_Key, Op], tol: float) -> list[str]:
    """Every dependency edge: a task starts no earlier than its dependency's end + latency."""
    edges = _edges(problem)
    out = []
    for (kind, s, i), op in first.items():
        for dk, ds, latency in edges[kind, s]:
            before = first.get((dk, ds, i))
            if before is None:
                continue
            ready = before.end + latency
            if op.start < ready - tol * max(1.0, abs(ready)):
                out.append(
                    f"device {op.device}: {_label(op)} starts at {_t(op.start)} before its "
                    f"{_dep_text(before, latency)}"
                )
    return out


def _memory_rules(
    problem: Problem, rows: list[list[Op]], limit: tuple[float, ...], tol: float
) -> list[str]:
    """Per device, the first instant its activation memory goes above the limit, and its peak."""
    out = []
    for d, row in enumerate(rows):
        cap = limit[d]
        level = peak = 0.0
        first_over: tuple[float, float, Op | None] | None = None
        for time, _, delta, op in _memory_events(problem, row):
            level += delta
            peak = max(peak, level)
            if first_over is None and level > cap + tol * max(1.0, abs(cap)):
                first_over = (time, level, op)
        if first_over is not None:
            time, level, op = first_over
            when = f" (when {_label(op)} starts)" if op is not None else ""
            out.append(
                f"device {d}: memory {_m(level)} at time {_t(time)}{when} is above the limit "
                f"{_m(cap)}; peak {_m(peak)}"
            )
    return out


def _memory_events(
    problem: Problem, row: Sequence[Op]
) -> list[tuple[float, int, float, Op | None]]:
    """``(time, 0 free / 1 allocate, delta, allocating op)``, sorted: frees first at one time.

    F allocates its stage's activation at its start; an unsplit B frees it all at its end; a
    split B frees activation - retained and its W the retained part, each at its end. For a
    recomputed micro-batch F also allocates the checkpoint and frees the activation at its
    end, R allocates the activation at its start and frees the checkpoint at its end.
    """
    activation, retained, split = problem.activation, problem.retained, problem.is_split
    events: list[tuple[float, int, float, Op | None]] = []
    for op in row:
        s = op.stage
        again = op.kind in (Kind.F, Kind.R) and problem.is_recomputed(s, op.microbatch)
        if again:
            checkpoint = problem.checkpoint_of(s)
            if op.kind == Kind.F:
                events.append((op.start, 1, activation[s] + checkpoint, op))
                events.append((op.end, 0, -activation[s], None))
            else:
                events.append((op.start, 1, activation[s], op))
                events.append((op.end, 0, -checkpoint, None))
        elif op.kind == Kind.F:
            events.append((op.start, 1, activation[s], op))
        elif op.kind == Kind.B:
            freed = activation[s] - retained[s] if split else activation[s]
            events.append((op.end, 0, -freed, None))
        else:
            events.append((op.end, 0, -retained[s], None))
    events.sort(key=lambda e: (e[0], e[1]))
    return events


# ------------------------------------------------------------------------------- helpers


def _per_device(problem: Problem, limit: Sequence[float]) -> tuple[float, ...]:
    """The limit as one value per device (a single value applies to every device)."""
    values = tuple(float(x) for x in limit)
    if len(values) == 1:
        return values * problem.num_devices
    if len(values) != problem.num_devices:
        raise ValueError(
            f"memory limit has {len(values)} values, problem has {problem.num_devices} devices"
        )
    return values


def _slack_text(
    problem: Problem, d: int, op: Op, free: float, earliest: float, first: dict[_Key, Op]
) -> str:
    """Words for an op that does not start at its earliest time, naming what bounds it."""
    reason = f"device free at {_t(free)}"
    task = Task(op.kind, op.stage, op.microbatch)
    for dep in problem.dependencies(task):
        before = first.get(dep)
        if before is not None and before.end + problem.latency(dep, task) == earliest > free:
            reason = _dep_text(before, problem.latency(dep, task))
    return (
        f"device {d}: {task.label()} starts at {_t(op.start)} but could start at "
        f"{_t(earliest)} ({reason})"
    )


def _dep_text(before: Op, latency: float) -> str:
    """``dependency F3@s0 ends at 4.5 + p2p 0.5`` (the latency only when there is one)."""
    extra = f" + p2p {_t(latency)}" if latency else ""
    return f"dependency {_label(before)} ends at {_t(before.end)}{extra}"


def _index(value: object, size: int) -> bool:
    """True for a whole number in ``0..size-1`` (a stage or micro-batch number)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < size


def _label(op: Op) -> str:
    """The op's task name, e.g. ``F3@s1`` (1-based micro-batch, as in the pictures)."""
    if isinstance(op.microbatch, int):
        return Task(op.kind, op.stage, op.microbatch).label()
    return repr((op.kind, op.stage, op.microbatch))


def _t(value: float) -> str:
    """A time as text: shortest form, always with a decimal point (``4.0``, ``2.25``)."""
    text = f"{value:.10g}"
    return text if any(c in text for c in ".eni") else text + ".0"


def _m(value: float) -> str:
    """A memory amount as text (``4``, ``2.5``)."""
    return f"{value:.10g}"
