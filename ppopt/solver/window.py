"""Window re-optimization for large problems: solve a slice of a schedule exactly.

On long pipelines the steady state is periodic and what an optimizer can still win lies in
the warm-up and the cool-down, a few hundred tasks at a time. This module re-solves one time
window of a given schedule with CP-SAT and sweeps such windows over the whole schedule:

* tasks that start before the window keep their times (their ends are release times);
* tasks that start inside it are free: dependencies, one task at a time per device,
  micro-batch order, exact memory (what the earlier tasks still hold is carried in);
* tasks that start after it keep their per-device order. With orders fixed, the timeline is
  a longest path, so the makespan is exactly ``max(end(u) + tail(u))`` over the window's
  tasks ``u`` (and a constant from the earlier ones), where ``tail(u)`` is the longest path
  from ``u``'s end through the later tasks: the window model's objective *is* the makespan.

Each device keeps the same set of tasks before, inside and after the window, so its memory
after the window is what it was (a device's memory depends on its own order alone). The new
orders are retimed in floats by the timeline engine and kept only when the makespan drops
(for the span objective: when the span drops, or stays and the makespan drops).
With the window reaching the end of the schedule this is a cool-down re-solve.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

from ortools.sat.python import cp_model

from ppopt.metrics import Objective, device_spans
from ppopt.problem import Problem
from ppopt.schedule import Op, Schedule
from ppopt.solver.cpsat import interruptible_solve, make_solver
from ppopt.solver.options import SolverOptions
from ppopt.solver.scaling import IntMemory, Scale, integer_problem, scaled_durations
from ppopt.tasks import Task
from ppopt.timeline import compute_timeline

BEFORE, INSIDE, AFTER = 0, 1, 2


class ScheduleIndex:
    """What every window of one schedule shares, computed once so a window costs about its
    own size even on 50k-task schedules: tasks by start (their *rank*), each device's row,
    each task's dependents, the memory each device holds after its first k tasks, and the
    longest path from each task's start to the end of the schedule with every order fixed.
    A task after a window has only later tasks after it (its dependents start later, so does
    the next task on its device), so that tail is the same whatever the window."""

    def __init__(self, schedule: Schedule, scale: Scale, memory: IntMemory | None) -> None:
        problem = schedule.problem
        self.schedule = schedule
        self.scale = scale
        self.duration = scaled_durations(problem, scale)
        self.scaled = integer_problem(problem, scale)
        self.by_start = sorted(schedule.ops(), key=lambda op: (op.start, op.device))
        self.starts = [op.start for op in self.by_start]
        self.rank = {op.task: r for r, op in enumerate(self.by_start)}
        self.rows = schedule.device_ops
        self.row_starts = [[op.start for op in row] for row in self.rows]
        self.successors = _successors(problem)
        self.tail = self._tails()
        self.edges = self._edges()
        self.levels = self._levels(memory) if memory is not None else None

    def up(self, value: float) -> int:
        """A float time in integer units, rounded up (exact for exactly scaled times)."""
        return math.ceil(value * self.scale.factor - 1e-6)

    def latency(self, before: Task, after: Task) -> int:
        """The p2p latency between two tasks, in integer units."""
        return int(self.scaled.latency(before, after))

    def _tails(self) -> dict[Task, int]:
        following = {
            a.task: b.task for row in self.rows for a, b in zip(row, row[1:], strict=False)
        }
        tail: dict[Task, int] = {}
        for op in reversed(self.by_start):
            task, best = op.task, 0
            for nxt in self.successors.get(task, ()):
                best = max(best, self.latency(task, nxt) + tail[nxt])
            if task in following:
                best = max(best, tail[following[task]])
            tail[task] = self.duration[(task.kind, task.stage)] + best
        return tail

    def _edges(self) -> list[tuple[int, int, int]]:
        """Every dependency as (rank distance, rank of the dependency, what it forces on the
        makespan: its end + latency + the dependent's tail), longest distance first."""
        out = []
        for task, r in self.rank.items():
            for nxt in self.successors.get(task, ()):
                forced = self.up(self.by_start[r].end) + self.latency(task, nxt) + self.tail[nxt]
                out.append((self.rank[nxt] - r, r, forced))
        out.sort(reverse=True)
        return out

    def _levels(self, memory: IntMemory) -> list[list[int]]:
        """Per device, the memory held (integer units) after its first k tasks."""
        levels = []
        for row in self.rows:
            level, row_levels = 0, [0]
            for op in row:
                level += memory.held(op.stage, alloc=op.kind) - memory.held(op.stage, free=op.kind)
                row_levels.append(level)
            levels.append(row_levels)
        return levels


class WindowModel:
    """CP-SAT model of the tasks of ``schedule`` that start in ``[t0, t1)``; an ``index`` of
    the same schedule may be passed in when several windows are solved."""

    def __init__(
        self,
        schedule: Schedule,
        t0: float,
        t1: float,
        scale: Scale,
        memory: IntMemory | None,
        index: ScheduleIndex | None = None,
    ) -> None:
        self.problem = schedule.problem
        self.schedule = schedule
        self.index = index if index is not None else ScheduleIndex(schedule, scale, memory)
        self.duration = self.index.duration
        self.first = bisect.bisect_left(self.index.starts, t0)
        self.stop = bisect.bisect_left(self.index.starts, t1)
        self.free = self.index.by_start[self.first : self.stop]
        self.horizon = self.index.up(schedule.makespan) + 1
        self.before = [bisect.bisect_left(starts, t0) for starts in self.index.row_starts]
        self.after = [bisect.bisect_left(starts, t1) for starts in self.index.row_starts]
        self.device_free = [
            self.index.up(row[k - 1].end) if k else 0
            for row, k in zip(self.index.rows, self.before, strict=True)
        ]
        self.model = cp_model.CpModel()
        self.start: dict[Task, cp_model.IntVar] = {}
        self._hints: list[tuple[cp_model.IntVar, int]] = []
        self._variables()
        self._dependencies()
        self._no_overlap()
        self._microbatch_order()
        if memory is not None:
            self._memory(memory)
        self.makespan = self._objective()
        self._hint()

    # ---------------------------------------------------------------------------- helpers

    def part(self, task: Task) -> int:
        """BEFORE, INSIDE or AFTER the window."""
        r = self.index.rank[task]
        return BEFORE if r < self.first else INSIDE if r < self.stop else AFTER

    def _dur(self, task: Task) -> int:
        return self.duration[(task.kind, task.stage)]

    def _latency(self, before: Task, after: Task) -> int:
        return self.index.latency(before, after)

    def _end(self, task: Task) -> cp_model.LinearExpr:
        return self.start[task] + self._dur(task)

    def _op(self, task: Task) -> Op:
        return self.index.by_start[self.index.rank[task]]

    def _device_tail(self, device: int) -> int:
        """The tail of the device's first task after the window (0 if none)."""
        row, k = self.index.rows[device], self.after[device]
        return self.index.tail[row[k].task] if k < len(row) else 0

    def _out_tail(self, task: Task) -> int:
        """What must follow ``task``'s end through its dependents after the window."""
        return max(
            (
                self._latency(task, nxt) + self.index.tail[nxt]
                for nxt in self.index.successors.get(task, ())
                if self.part(nxt) == AFTER
            ),
            default=0,
        )

    # ------------------------------------------------------------------------ constraints

    def _variables(self) -> None:
        """A start per free task, no earlier than its device is free."""
        for op in self.free:
            low = min(self.device_free[op.device], self.horizon - self._dur(op.task))
            self.start[op.task] = self.model.new_int_var(
                low, self.horizon - self._dur(op.task), op.task.label()
            )

    def _dependencies(self) -> None:
        """Free tasks wait for their dependencies: free ones by constraint, earlier ones as a
        release time (a dependency never starts after the task that needs it)."""
        for task in self.start:
            for before in self.problem.dependencies(task):
                lat = self._latency(before, task)
                if before in self.start:
                    self.model.add(self.start[task] >= self._end(before) + lat)
                else:
                    release = self.index.up(self._op(before).end) + lat
                    self.model.add(self.start[task] >= release)

    def _no_overlap(self) -> None:
        """One free task at a time per device."""
        per_device: list[list[cp_model.IntervalVar]] = [[] for _ in range(self.problem.num_devices)]
        for op in self.free:
            interval = self.model.new_fixed_size_interval_var(
                self.start[op.task], self._dur(op.task), ""
            )
            per_device[op.device].append(interval)
        for intervals in per_device:
            if len(intervals) > 1:
                self.model.add_no_overlap(intervals)

    def _microbatch_order(self) -> None:
        """Free tasks of one (kind, stage) keep micro-batch order (lossless, see model.py)."""
        for task in self.start:
            earlier = Task(task.kind, task.stage, task.microbatch - 1)
            if earlier in self.start:
                self.model.add(self.start[task] >= self._end(earlier))

    def _memory(self, memory: IntMemory) -> None:
        """Exact memory inside the window: an amount allocated before it and freed inside is
        held from when the device is free; one allocated inside is held to its freeing task's
        end, or to the horizon when that comes after the window; what was allocated before
        and is freed after lowers the capacity (the device's level after its earlier tasks,
        less what the window itself frees of it)."""
        problem, levels = self.problem, self.index.levels
        assert levels is not None
        intervals: list[list[cp_model.IntervalVar]] = [[] for _ in range(problem.num_devices)]
        demands: list[list[int]] = [[] for _ in range(problem.num_devices)]
        carried = [levels[d][k] for d, k in enumerate(self.before)]
        for op in self.free:
            s, i, d = op.stage, op.microbatch, op.device
            for hold in memory.holds[s]:
                amount = int(hold.amount)
                if amount <= 0:
                    continue
                alloc, freeing = Task(hold.alloc, s, i), Task(hold.free, s, i)
                if op.kind == hold.alloc and self.part(freeing) == AFTER:
                    intervals[d].append(self._held(alloc, freeing, d))
                    demands[d].append(amount)
                elif op.kind == hold.free:
                    intervals[d].append(self._held(alloc, freeing, d))
                    demands[d].append(amount)
                    if self.part(alloc) == BEFORE:
                        carried[d] -= amount
        for d in range(problem.num_devices):
            room = memory.capacity[d] - carried[d]
            if intervals[d] and sum(demands[d]) > room:
                self.model.add_cumulative(intervals[d], demands[d], room)

    def _held(self, forward: Task, freeing: Task, device: int) -> cp_model.IntervalVar:
        """The interval an amount is held within the window, with its hint."""
        begin: cp_model.LinearExprT = self.device_free[device]
        hint_begin = self.device_free[device]
        if forward in self.start:
            begin, hint_begin = self.start[forward], self.index.up(self._op(forward).start)
        finish: cp_model.LinearExprT = self.horizon
        hint_finish = self.horizon
        if freeing in self.start:
            finish, hint_finish = self._end(freeing), self.index.up(self._op(freeing).end)
        size = self.model.new_int_var(0, self.horizon, "")
        self._hints.append((size, hint_finish - hint_begin))
        return self.model.new_interval_var(begin, size, finish, "")

    def _objective(self) -> cp_model.IntVar:
        """Minimise the makespan of the whole schedule (exact, see the module docstring):
        what the earlier tasks force (their ends, dependencies that jump over the window,
        devices with nothing in it), and each free task's end plus what must follow it."""
        fixed = max(self.device_free)
        busy = {op.device for op in self.free}
        for d in range(self.problem.num_devices):
            if d not in busy:
                fixed = max(fixed, self.device_free[d] + self._device_tail(d))
        span = self.stop - self.first
        for distance, r, forced in self.index.edges:
            if distance <= span:
                break  # edges are sorted longest first; shorter ones cannot jump the window
            if r < self.first and r + distance >= self.stop:
                fixed = max(fixed, forced)
        makespan = self.model.new_int_var(fixed, max(fixed, 2 * self.horizon), "makespan")
        for op in self.free:
            after = max(self._out_tail(op.task), self._device_tail(op.device))
            self.model.add(makespan >= self._end(op.task) + after)
        self.model.minimize(makespan)
        self._hints.append((makespan, max(fixed, self.index.up(self.schedule.makespan))))
        return makespan

    def _hint(self) -> None:
        """The current schedule, complete (starts, held sizes, makespan)."""
        for op in self.free:
            self.model.add_hint(self.start[op.task], self.index.up(op.start))
        for var, value in self._hints:
            self.model.add_hint(var, value)

    def orders(self, solver: cp_model.CpSolver) -> list[list[Task]]:
        """Earlier tasks in their order, the free ones in the solver's, then the later ones."""
        rows = []
        for row, k0, k1 in zip(self.index.rows, self.before, self.after, strict=True):
            free = sorted(row[k0:k1], key=lambda op: solver.value(self.start[op.task]))
            rows.append([op.task for op in (*row[:k0], *free, *row[k1:])])
        return rows


def _successors(problem: Problem) -> dict[Task, list[Task]]:
    """The tasks that depend on each task."""
    out: dict[Task, list[Task]] = {}
    for task in problem.tasks():
        for before in problem.dependencies(task):
            out.setdefault(before, []).append(task)
    return out


@dataclass(frozen=True)
class WindowStep:
    """One window solved: the better schedule if any, and whether Ctrl-C came."""

    schedule: Schedule | None
    interrupted: bool


@dataclass
class Cursor:
    """Where a sweep resumes: the index of the next window (by start time) to solve, so
    sweeps cut into time slices visit the whole schedule in turn."""

    next: int = 0


def improve_window(
    schedule: Schedule,
    t0: float,
    t1: float,
    scale: Scale,
    memory: IntMemory | None,
    options: SolverOptions,
    seconds: float,
    index: ScheduleIndex | None = None,
    objective: str = Objective.MAKESPAN,
) -> WindowStep:
    """Re-solve the tasks of ``schedule`` starting in ``[t0, t1)`` within ``seconds``; the
    result is kept when it improves ``objective`` (see :func:`_better`)."""
    window = WindowModel(schedule, t0, t1, scale, memory, index)
    if not window.free:
        return WindowStep(None, False)
    solver = make_solver(options, time_limit=seconds)
    status, interrupted = interruptible_solve(solver, window.model, None)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return WindowStep(None, interrupted)
    found = compute_timeline(schedule.problem, window.orders(solver), schedule.name)
    return WindowStep(found if _better(found, schedule, objective) else None, interrupted)


def _better(found: Schedule, schedule: Schedule, objective: str) -> bool:
    """Whether ``found`` improves on ``schedule``: a shorter makespan; for ``span`` a shorter
    span, or the same span and a shorter makespan (the window model minimises the makespan,
    which on the usual schedules ends the widest device too: device 0 starts at 0 and ends
    last)."""
    if objective != Objective.SPAN:
        return found.makespan < schedule.makespan - 1e-9
    before, after = max(device_spans(schedule)), max(device_spans(found))
    if after < before - 1e-9:
        return True
    return after <= before + 1e-9 and found.makespan < schedule.makespan - 1e-9


def window_bounds(schedule: Schedule, size: int) -> list[tuple[float, float]]:
    """Windows of about ``size`` tasks each (by start time), overlapping by half, from the
    start of the schedule to its end (the last one open-ended: the cool-down)."""
    starts = sorted(op.start for op in schedule.ops())
    n, step = len(starts), max(1, size // 2)
    out = []
    for first in range(0, n, step):
        last = first + size
        out.append((starts[first], starts[last] if last < n else math.inf))
        if last >= n:
            break
    return out


def sweep_windows(
    schedule: Schedule,
    scale: Scale,
    memory: IntMemory | None,
    options: SolverOptions,
    seconds: float,
    size: int,
    per_window: float,
    cursor: Cursor | None = None,
) -> Iterator[WindowStep]:
    """Sweep windows over the schedule, start to end (from ``cursor``'s window on, round to
    the start, when given; it is kept at the next window to solve), again while a pass
    improves it and time is left; yields every improvement (and a final step if Ctrl-C
    came)."""
    spent, clock = 0.0, time.perf_counter()
    cursor = cursor or Cursor()
    improved = True
    while improved:
        improved = False
        index = ScheduleIndex(schedule, scale, memory)
        windows = window_bounds(schedule, size)
        first = cursor.next % len(windows)
        for k in [*range(first, len(windows)), *range(first)]:
            t0, t1 = windows[k]
            left = seconds - (spent if options.deterministic else time.perf_counter() - clock)
            if left < 0.05:
                return
            limit = min(per_window, left)
            step = improve_window(
                schedule, t0, t1, scale, memory, options, limit, index, options.objective
            )
            spent += limit
            cursor.next = k + 1
            if step.schedule is not None:
                schedule, improved = step.schedule, True
                index = ScheduleIndex(schedule, scale, memory)
            if step.schedule is not None or step.interrupted:
                yield step
            if step.interrupted:
                return
