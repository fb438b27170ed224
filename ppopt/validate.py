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
from collections.abc import Callable, Mapping, Sequence

from ppopt.errors import ScheduleInvalid
from ppopt.limits import BOUND_TOLERANCE, TIME_TOLERANCE, TIME_ULPS
from ppopt.problem import Problem
from ppopt.schedule import Op, Schedule
from ppopt.tasks import Kind, Task, device_name, stage_name

#: A task as a plain ``(kind, stage, microbatch)`` tuple; equal and hash-equal to a ``Task``.
_Key = tuple[Kind, int, int]
#: The slack of a time comparison at a time ``t`` (see :func:`time_slack`).
Slack = Callable[[float], float]


def validate(
    schedule: Schedule, limit: Sequence[float] | None = None, tol: float = TIME_TOLERANCE
) -> list[str]:
    """Every violation of docs/contract.md §1 in ``schedule``, in words; an empty list means valid.

    ``limit`` is the absolute memory limit per device, one value or one per device (``None``:
    memory is not checked). Times are compared with :func:`time_slack` (``tol`` times the
    problem's shortest time plus float rounding at the time compared) and memory with
    ``tol * max(1, limit)``, so float rounding is never reported as a violation and never
    hides one.
    """
    problem = schedule.problem
    slack = time_slack(problem, tol)
    violations: list[str] = []
    first, seen, rows = _known_ops(schedule, violations)
    copy_rows = _copy_rows(schedule, first, seen, violations)
    violations += _coverage(problem, seen)
    paired = _paired_durations(schedule, first, rows, violations)
    for d, row in enumerate(rows):
        violations += _row_rules(problem, d, row, slack, paired)
    for d, row in enumerate(copy_rows):
        violations += _row_rules(problem, d, row, slack, {}, lane="copy lane")
    violations += _dependency_rules(problem, first, slack)
    if limit is not None:
        both = [[*row, *copies] for row, copies in zip(rows, copy_rows, strict=True)]
        violations += _memory_rules(problem, both, _per_device(problem, limit), tol)
    return violations


def validate_declared(
    schedule: Schedule,
    limit: Sequence[float] | None,
    fits_memory_limit: bool = True,
    tol: float = TIME_TOLERANCE,
) -> tuple[list[str], list[str]]:
    """``(violations, declared overruns)`` of a schedule whose file says whether it meets the
    memory limit (``metrics.fits_memory_limit``, docs/contract.md §4).

    A file that declares the limit met is checked by :func:`validate`. One that declares it
    not met (a baseline run over the limit) is checked against every other rule, and its
    memory overruns are returned apart, as declared; a declaration that no device bears out
    is a violation.
    """
    if fits_memory_limit or limit is None:
        return validate(schedule, limit, tol), []
    problem = schedule.problem
    violations = validate(schedule, None, tol)
    overruns = _memory_rules(problem, _lane_rows(schedule), _per_device(problem, limit), tol)
    if not overruns:
        violations.append(
            "metrics.fits_memory_limit: the file says false, but every device is within "
            "the memory limit"
        )
    return violations, overruns


def check_tight(schedule: Schedule, tol: float = TIME_TOLERANCE) -> list[str]:
    """Every task that does not start exactly as early as its device order allows, in words.

    Tight means: start = max(end of the previous op on the device (0 for the first), end of
    each dependency + its latency). The engine's output is tight by construction; a schedule
    with needless idle time is valid but not tight.
    """
    problem = schedule.problem
    slack = time_slack(problem, tol)
    first, _, rows = _known_ops(schedule, [])
    edges = _edges(problem)
    partner: dict[_Key, _Key] = {}
    for f, b in schedule.pairs:
        partner[f], partner[b] = b, f
    out = []
    for d, row in enumerate(rows):
        free = before_pair = 0.0
        for op in row:
            _, kind, s, i, start, end = op
            key = (kind, s, i)
            if kind == Kind.B and key in partner:
                free = before_pair  # a pair's B starts with its F: both wait for the same
            group = [key] + ([partner[key]] if key in partner else [])
            earliest = free
            for gk, gs, gi in group:
                for dk, ds, latency in edges[gk, gs]:
                    before = first.get((dk, ds, gi))
                    if before is not None and before.end + latency > earliest:
                        earliest = before.end + latency
            if abs(start - earliest) > slack(earliest):
                out.append(_slack_text(problem, d, op, free, earliest, first))
            before_pair, free = free, end
    return out


def assert_valid(
    schedule: Schedule,
    limit: Sequence[float] | None = None,
    tight: bool = False,
    tol: float = TIME_TOLERANCE,
) -> None:
    """Raise :class:`ScheduleInvalid` listing every violation (and, if ``tight``, every slack)."""
    violations = validate(schedule, limit, tol)
    if tight:
        violations += check_tight(schedule, tol)
    if violations:
        raise ScheduleInvalid(schedule.name, violations)


def memory_peaks(schedule: Schedule) -> tuple[float, ...]:
    """Per device, the largest activation memory it holds at any instant (own computation)."""
    peaks = []
    for row in _lane_rows(schedule):
        level = peak = 0.0
        for _, _, delta, _ in _memory_events(schedule.problem, row):
            level += delta
            peak = max(peak, level)
        peaks.append(peak)
    return tuple(peaks)


def check_claims(
    schedule: Schedule,
    metrics: Mapping[str, object],
    solver: Mapping[str, object] | None = None,
    tol: float = TIME_TOLERANCE,
) -> list[str]:
    """Every number a schedule file states about its ops that they do not give, in words.

    ``metrics`` (makespan, span, bubble rate and ratio, zero-bubble bubble, busy, idle, peak
    memory) are recomputed here from the ops, independently of :mod:`ppopt.metrics`; the
    ``solver`` fields must agree with the ops and with each other: a lower bound no larger
    than the objective's value, the gap ``(value - bound) / value`` and ``OPTIMAL`` exactly
    when the value meets the bound (docs/contract.md §4).
    """
    slack = time_slack(schedule.problem, tol)
    own = _own_metrics(schedule)
    out = []
    for key, real in own.items():
        if key not in metrics:
            continue
        out += _claim(f"metrics.{key}", metrics[key], real, slack, tol, key in _TIME_METRICS)
    if solver is not None:
        out += _solver_claims(solver, own, schedule.interrupted, slack, tol)
    return out


#: Metrics in time units (compared with the time slack); the others are ratios or memory.
_TIME_METRICS = ("makespan", "span", "busy", "idle")


def _own_metrics(schedule: Schedule) -> dict[str, float | list[float]]:
    """The metrics of docs/contract.md §5 from the ops, computed here."""
    rows = schedule.device_ops
    p = len(rows)
    makespan = max((op.end for row in rows for op in row), default=0.0)
    spans = [
        max(op.end for op in row) - min(op.start for op in row) if row else 0.0 for row in rows
    ]
    busy = [sum(op.end - op.start for op in row) for row in rows]
    forwards = {f for f, _ in schedule.pairs}
    for op in schedule.ops():
        if (op.kind, op.stage, op.microbatch) in forwards:
            busy[op.device] -= op.end - op.start  # a pair's two ops are one task's time
    work = sum(busy)
    widest = spans.index(max(spans))
    span = spans[widest]
    return {
        "makespan": makespan,
        "span": span,
        "bubble_rate": 1.0 - work / (p * makespan) if makespan > 0 else 0.0,
        "bubble_ratio": (p * makespan - work) / work if work > 0 else 0.0,
        "zb_bubble": max(0.0, span - busy[widest]) / span if span > 0 else 0.0,
        "busy": busy,
        "idle": [makespan - b for b in busy],
        "peak_memory": list(memory_peaks(schedule)),
    }


def _claim(
    key: str, given: object, real: float | list[float], slack: Slack, tol: float, is_time: bool
) -> list[str]:
    """One stated number (or list) against the real one."""
    if isinstance(real, list):
        if not isinstance(given, list) or len(given) != len(real):
            return [f"{key}: expected a list of {len(real)} numbers, got {given!r}"]
        out = []
        for i, (one, value) in enumerate(zip(given, real, strict=True)):
            out += _claim(f"{key}[{i}]", one, value, slack, tol, is_time)
        return out
    if isinstance(given, bool) or not isinstance(given, int | float) or not math.isfinite(given):
        return [f"{key}: expected a finite number, got {given!r}"]
    allowed = slack(real) if is_time else tol * max(1.0, abs(real))
    if abs(given - real) > allowed:
        return [f"{key}: the file says {given!r}, its ops give {real!r}"]
    return []


def _solver_claims(
    solver: Mapping[str, object],
    own: Mapping[str, float | list[float]],
    interrupted: bool,
    slack: Slack,
    tol: float,
) -> list[str]:
    """The ``solver`` object's status, bound and gap against the ops and each other."""
    objective = solver.get("objective", "makespan")
    if objective not in ("makespan", "span"):
        return [f"solver.objective: expected makespan or span, got {objective!r}"]
    value = own[str(objective)]
    assert isinstance(value, float)
    bound, gap, status = solver.get("lower_bound"), solver.get("gap"), solver.get("status")
    out = []
    if solver.get("interrupted", interrupted) != interrupted:
        out.append(
            f"solver.interrupted: the file says {solver['interrupted']!r}, its top says "
            f"{interrupted!r}"
        )
    if status not in ("OPTIMAL", "FEASIBLE"):
        out.append(f"solver.status: expected OPTIMAL or FEASIBLE, got {status!r}")
    if isinstance(bound, bool) or not isinstance(bound, int | float) or not math.isfinite(bound):
        return [*out, f"solver.lower_bound: expected a finite number, got {bound!r}"]
    if bound > value + slack(value):
        out.append(f"solver.lower_bound: {bound!r} is above the schedule's {objective} {value!r}")
    real_gap = max(0.0, (value - bound) / value) if value > 0 else 0.0
    out += _claim("solver.gap", gap, real_gap, slack, tol, is_time=False)
    proven = value <= bound * (1 + BOUND_TOLERANCE)
    if status == "OPTIMAL" and not proven:
        out.append(
            f"solver.status: OPTIMAL, but the {objective} {value!r} is above the lower "
            f"bound {bound!r}"
        )
    if status == "FEASIBLE" and proven:
        out.append(
            f"solver.status: FEASIBLE, but the {objective} {value!r} meets the lower "
            f"bound {bound!r} (that is OPTIMAL)"
        )
    return out


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
                violations.append(f"{device_name(d)}: {_label(op)} is not a task of this problem")
                continue
            if kind in _COPY_KINDS:
                violations.append(f"{device_name(d)}: {_label(op)} is a copy on the compute lane")
                continue
            wrong = _wrong_copy(problem, s, i)
            if wrong:
                violations.append(f"{device_name(d)}: {_label(op)} {wrong}")
                continue
            if kind == Kind.R and not problem.is_recomputed(s, i):
                violations.append(
                    f"{device_name(d)}: {_label(op)} recomputes a micro-batch the problem does not "
                    f"recompute on {stage_name(s)}"
                )
                continue
            key = (kind, s, i)
            if key in seen:
                violations.append(f"{device_name(d)}: {_label(op)} appears more than once")
            seen.add(key)
            if device != d:
                violations.append(
                    f"{device_name(d)}: {_label(op)} is in {device_name(d)}'s row but says "
                    f"{device_name(device)}"
                )
            if math.isfinite(start) and math.isfinite(end):
                kept.append(op)
                first.setdefault(key, op)
            else:
                violations.append(
                    f"{device_name(d)}: {_label(op)} has a non-finite time ({start} to {end})"
                )
        rows.append(kept)
    return first, seen, rows


_COPY_KINDS = (Kind.O, Kind.L)


def _copy_rows(
    schedule: Schedule, first: dict[_Key, Op], seen: set[_Key], violations: list[str]
) -> list[list[Op]]:
    """Per device its checkable copy-lane ops (offloads and reloads), adding them to
    ``first`` and ``seen``; reports copies the problem does not offload, copies in the
    compute rows' place and compute tasks on a copy lane."""
    problem = schedule.problem
    rows: list[list[Op]] = [[] for _ in range(problem.num_devices)]
    for d, row in enumerate(schedule.copy_ops):
        for op in row:
            key = (op.kind, op.stage, op.microbatch)
            if op.kind not in _COPY_KINDS:
                violations.append(
                    f"{device_name(d)}: {_label(op)} is on the copy lane but is no copy"
                )
                continue
            if not (
                _index(op.stage, problem.num_stages)
                and _index(op.microbatch, problem.num_microbatches)
            ):
                violations.append(f"{device_name(d)}: {_label(op)} is not a task of this problem")
                continue
            if not problem.is_offloaded(op.stage, op.microbatch):
                violations.append(
                    f"{device_name(d)}: {_label(op)} copies a micro-batch the problem does not "
                    f"offload on stage {op.stage}"
                )
                continue
            if key in seen:
                violations.append(f"{device_name(d)}: {_label(op)} appears more than once")
            seen.add(key)
            if op.device != d or not (math.isfinite(op.start) and math.isfinite(op.end)):
                violations.append(
                    f"{device_name(d)}: {_label(op)} says device index {op.device} or has a "
                    f"non-finite time"
                )
                continue
            first.setdefault(key, op)
            rows[d].append(op)
    return rows


def _lane_rows(schedule: Schedule) -> list[list[Op]]:
    """Per device its checkable ops of both lanes (for memory)."""
    first, seen, rows = _known_ops(schedule, [])
    copies = _copy_rows(schedule, first, seen, [])
    return [[*row, *extra] for row, extra in zip(rows, copies, strict=True)]


def _copy_of(problem: Problem, stage: int, microbatch: int) -> tuple[int, int]:
    """With two model copies (docs/contract.md §1, ``copies: 2``), read here from the
    problem's sizes: the copy of a virtual stage (``s < p``: copy 0) and the copy of a
    micro-batch (``i < m/2``: copy 0); ``(0, 0)`` with one copy."""
    if problem.copies != 2:
        return 0, 0
    return int(stage >= problem.num_devices), int(microbatch >= problem.num_microbatches // 2)


def _wrong_copy(problem: Problem, stage: int, microbatch: int) -> str:
    """Words for a task of a micro-batch on a stage of the other model copy ('' if none)."""
    on, of = _copy_of(problem, stage, microbatch)
    if on == of:
        return ""
    return (
        f"runs micro-batch {microbatch + 1} of model copy {of + 1} on {stage_name(stage)}, "
        f"a stage of copy {on + 1}: not a task of this problem"
    )


def _edges(problem: Problem) -> dict[tuple[Kind, int], list[tuple[Kind, int, float]]]:
    """Per ``(kind, stage)``: its dependencies' ``(kind, stage, latency)``, asked of the problem.

    Dependencies link tasks of one micro-batch, so one rule stands for every micro-batch; this
    keeps the per-op work to dictionary look-ups. An edge to a task the problem does not have
    (the R of a micro-batch that is not recomputed) is void: such a task is never among the
    checked ops, and a missing task of the problem is reported by the coverage rule.
    """
    if problem.copies == 2:
        return _two_copy_edges(problem)
    return {
        (kind, s): [
            (edge.kind, edge.stage, _link_latency(problem, edge.stage, s)) for edge in edges
        ]
        for (kind, s), edges in problem.edges.items()
    }


def _two_copy_edges(problem: Problem) -> dict[tuple[Kind, int], list[tuple[Kind, int, float]]]:
    """The chains of two model copies, written from the contract rather than read from the
    problem's edges (so an edge across the copy boundary there is caught): each copy's
    stages ``c*p .. c*p+p-1`` form a chain of their own, its first F waits for nothing, the
    B of its last stage for that stage's F, W for its B."""
    p = problem.num_devices
    out: dict[tuple[Kind, int], list[tuple[Kind, int, float]]] = {}
    for s in range(2 * p):
        first, last = s % p == 0, s % p == p - 1
        out[Kind.F, s] = [] if first else [(Kind.F, s - 1, _link_latency(problem, s - 1, s))]
        out[Kind.B, s] = (
            [(Kind.F, s, 0.0)] if last else [(Kind.B, s + 1, _link_latency(problem, s + 1, s))]
        )
        out[Kind.W, s] = [(Kind.B, s, 0.0)]
    return out


def _link_latency(problem: Problem, before: int, after: int) -> float:
    """The wait of an edge from stage ``before`` to stage ``after``, read here from
    ``p2p_time`` itself (docs/contract.md §1) rather than from the problem's edges, so a wrong
    latency there is caught: 0 on one device; else the number, the boundary's list entry, or
    the matrix's ``[from device][to device]``."""
    a, b = problem.placement[before], problem.placement[after]
    if a == b:
        return 0.0
    p2p = problem.p2p
    if isinstance(p2p, int | float):
        return float(p2p)
    if len(p2p) == problem.num_devices and all(isinstance(row, tuple) for row in p2p):
        return float(p2p[a][b])  # type: ignore[index]
    if abs(before - after) != 1:
        raise ValueError(f"no boundary between stages {before} and {after}")
    return float(p2p[min(before, after)])  # type: ignore[arg-type]


def _coverage(problem: Problem, seen: set[_Key]) -> list[str]:
    """Every task of the problem present (repeats are found in :func:`_known_ops`)."""
    if problem.copies == 2:  # each (stage, micro-batch) of one copy, by the sizes alone
        S, m = problem.num_stages, problem.num_microbatches
        kinds = [k for k in (Kind.F, Kind.B, Kind.W) if k in problem.kinds]
        every = [
            Task(k, s, i)
            for k in kinds
            for s in range(S)
            for i in range(m)
            if len(set(_copy_of(problem, s, i))) == 1
        ]
        return [f"{task.label()} is in no device's ops" for task in every if task not in seen]
    return [f"{task.label()} is in no device's ops" for task in problem.tasks() if task not in seen]


def time_slack(problem: Problem, tol: float = TIME_TOLERANCE) -> Slack:
    """The slack of a time comparison at ``t``: ``tol`` times the problem's shortest positive
    time, plus ``TIME_ULPS`` ulps of ``t`` (float rounding there). It grows with ``|t|`` only as
    float rounding does, so shifting every time by 1e12 or 1e7 hides no error."""
    times = [*problem.forward, *problem.backward, *(problem.weight or ()), *_latencies(problem)]
    base = tol * min(t for t in times if t > 0) * min(_scales(problem) or (1.0,))

    def slack(t: float) -> float:
        return base + TIME_ULPS * math.ulp(abs(t))

    return slack


def _latencies(problem: Problem) -> list[float]:
    """Every entry of ``p2p_time`` (one number, a list or a matrix)."""
    p2p = problem.p2p
    if isinstance(p2p, int | float):
        return [float(p2p)]
    return [float(x) for row in p2p for x in (row if isinstance(row, tuple) else (row,))]


def _paired_durations(
    schedule: Schedule, first: dict[_Key, Op], rows: list[list[Op]], violations: list[str]
) -> dict[_Key, float]:
    """The overlapped pairs' rules (docs/contract.md §1), their violations added: a pair is a
    forward and a backward of different micro-batches, of one device, next to each other in
    its row (F first) with the same start and end, each task in one pair at most, in a problem
    with overlap_times. Returns, per task of a pair, the duration it must last (the pair's);
    the row rules then let the pair's B share its F's time."""
    problem = schedule.problem
    out: dict[_Key, float] = {}
    if schedule.pairs and problem.overlap is None:
        violations.append(f"{len(schedule.pairs)} pairs, but the problem has no overlap_times")
        return out
    following = {
        (a.kind, a.stage, a.microbatch): (b.kind, b.stage, b.microbatch)
        for row in rows
        for a, b in zip(row, row[1:], strict=False)
    }
    for f, b in sorted(schedule.pairs):
        fop, bop = first.get(f), first.get(b)
        name = f"pair ({Task(*f).label()}, {Task(*b).label()})"
        if fop is None or bop is None:
            violations.append(f"{name}: not two ops of the schedule")
            continue
        faults = []
        if f[0] != Kind.F or b[0] != Kind.B:
            faults.append("is not a forward and a backward (B)")
        if f[2] == b[2]:
            faults.append("pairs a micro-batch with itself")
        if fop.device != bop.device:
            faults.append(f"spans {device_name(fop.device)} and {device_name(bop.device)}")
        if following.get(f) != b:
            faults.append("is not its forward then its backward, next to each other in the row")
        if (fop.start, fop.end) != (bop.start, bop.end):
            faults.append(
                f"parts run {_t(fop.start)}-{_t(fop.end)} and {_t(bop.start)}-{_t(bop.end)}"
            )
        if f in out or b in out:
            faults.append("shares a task with another pair")
        violations += [f"{device_name(fop.device)}: {name} {fault}" for fault in faults]
        if fop.device == bop.device and fop.kind == Kind.F and bop.kind == Kind.B:
            both = problem.pair_duration(fop.stage, bop.stage)
            out[f] = out[b] = both
    return out


def _row_rules(
    problem: Problem,
    d: int,
    row: list[Op],
    slack: Slack,
    paired: Mapping[_Key, float],
    lane: str = "",
) -> list[str]:
    """Placement, duration (a pair's for a task of a pair), start >= 0, and time order
    without overlap on one device's lane (compute, where a pair's B shares its F's time, or
    the ``copy lane``: one copy at a time)."""
    out = []
    placement = problem.placement
    durations = {
        (k, s): problem.duration(k, s) for k in problem.kinds for s in range(problem.num_stages)
    }
    scales = _scales(problem)
    previous: Op | None = None
    for op in row:
        _, kind, s, _, start, end = op
        if placement[s] != d:
            out.append(
                f"{device_name(d)}: {_label(op)} runs here but {stage_name(s)} is placed on "
                f"{device_name(placement[s])}"
            )
        key = (kind, s, op.microbatch)
        expected = paired.get(key, durations[kind, s]) if paired else durations[kind, s]
        if scales is not None:
            expected *= scales[op.microbatch]
        if abs((end - start) - expected) > slack(end):
            out.append(
                f"{device_name(d)}: {_label(op)} lasts {_t(end - start)} "
                f"({_t(start)} to {_t(end)}), "
                f"expected {_t(expected)}"
            )
        if start < -slack(0.0):
            out.append(f"{device_name(d)}: {_label(op)} starts at {_t(start)}, before time 0")
        shares = (
            paired
            and previous is not None
            and key in paired
            and (previous.kind, previous.stage, previous.microbatch) in paired
            and kind == Kind.B
            and previous.start == start
        )
        if previous is not None and not shares and start < previous.end - slack(previous.end):
            text = _order_text(d, previous, op)
            name = device_name(d)
            out.append(text.replace(f"{name}:", f"{name} {lane}:", 1) if lane else text)
        previous = op
    return out


def _order_text(d: int, before: Op, after: Op) -> str:
    """Words for two consecutive ops of a device where the second starts before the first ends."""
    if after.start < before.start:
        return (
            f"{device_name(d)}: {_label(after)} is listed after {_label(before)} but starts "
            f"earlier "
            f"({_t(after.start)} < {_t(before.start)}): ops out of time order"
        )
    return (
        f"{device_name(d)}: {_label(after)} starts at {_t(after.start)} while "
        f"{_label(before)} runs "
        f"until {_t(before.end)} (overlap)"
    )


def _dependency_rules(problem: Problem, first: dict[_Key, Op], slack: Slack) -> list[str]:
    """Every dependency edge: a task starts no earlier than its dependency's end + latency."""
    edges = _edges(problem)
    out = []
    for (kind, s, i), op in first.items():
        for dk, ds, latency in edges[kind, s]:
            before = first.get((dk, ds, i))
            if before is None:
                continue
            ready = before.end + latency
            if op.start < ready - slack(ready):
                out.append(
                    f"{device_name(op.device)}: {_label(op)} starts at {_t(op.start)} before its "
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
                f"{device_name(d)}: memory {_m(level)} at time {_t(time)}{when} is above the limit "
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
    end, R allocates the activation at its start and frees the checkpoint at its end. For an
    offloaded one its offload O frees the whole activation at its end and its reload L
    allocates it again at its start.
    """
    split, scales = problem.is_split, _scales(problem)
    activation, retained = problem.activation, problem.retained
    events: list[tuple[float, int, float, Op | None]] = []
    for op in row:
        s = op.stage
        act, kept = activation[s], retained[s]
        if scales is not None:  # every amount is the reference's times the micro-batch's scale
            act, kept = act * scales[op.microbatch], kept * scales[op.microbatch]
        again = op.kind in (Kind.F, Kind.R) and problem.is_recomputed(s, op.microbatch)
        if again:
            checkpoint = problem.checkpoint_of(s) * _factor(problem, op.microbatch)
            if op.kind == Kind.F:
                events.append((op.start, 1, act + checkpoint, op))
                events.append((op.end, 0, -act, None))
            else:
                events.append((op.start, 1, act, op))
                events.append((op.end, 0, -checkpoint, None))
        elif op.kind == Kind.F:
            events.append((op.start, 1, act, op))
        elif op.kind == Kind.O:
            events.append((op.end, 0, -act, None))
        elif op.kind == Kind.L:
            events.append((op.start, 1, act, op))
        elif op.kind == Kind.B:
            freed = act - kept if split else act
            events.append((op.end, 0, -freed, None))
        else:
            events.append((op.end, 0, -kept, None))
    events.sort(key=lambda e: (e[0], e[1]))
    return events


# ------------------------------------------------------------------------------- helpers


def _scales(problem: Problem) -> tuple[float, ...] | None:
    """The per-micro-batch factors of docs/contract.md §1 (read from the field itself)."""
    return problem.microbatch_scale


def _factor(problem: Problem, microbatch: int) -> float:
    """Micro-batch ``microbatch``'s factor of durations and memory (1 when uniform)."""
    scales = _scales(problem)
    return 1.0 if scales is None else scales[microbatch]


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
        f"{device_name(d)}: {task.label()} starts at {_t(op.start)} but could start at "
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
