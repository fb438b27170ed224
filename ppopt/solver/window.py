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
orders are retimed in floats by the timeline engine and kept only when the makespan drops.
With the window reaching the end of the schedule this is a cool-down re-solve.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass

from ortools.sat.python import cp_model

from ppopt.problem import Problem, Task
from ppopt.schedule import Op, Schedule
from ppopt.solver.front import SolverOptions
from ppopt.solver.params import interruptible_solve, make_solver
from ppopt.solver.scaling import Scale, scaled_durations
from ppopt.timeline import compute_timeline

#: Integer activation, retained part and capacity per stage/device (see run._memory_data).
Memory = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]

BEFORE, INSIDE, AFTER = 0, 1, 2


class WindowModel:
    """CP-SAT model of the tasks of ``schedule`` that start in ``[t0, t1)``."""

    def __init__(
        self, schedule: Schedule, t0: float, t1: float, scale: Scale, memory: Memory | None
    ) -> None:
        self.problem = problem = schedule.problem
        self.schedule = schedule
        self.scale = scale
        self.duration = scaled_durations(problem, scale)
        self.p2p = scale.to_int(problem.p2p)
        self.ops: dict[Task, Op] = {op.task: op for op in schedule.ops()}
        self.part = {
            task: BEFORE if op.start < t0 else INSIDE if op.start < t1 else AFTER
            for task, op in self.ops.items()
        }
        self.free = [op for op in schedule.ops() if self.part[op.task] == INSIDE]
        self.horizon = self._up(schedule.makespan) + 1
        self.device_free = self._device_release()
        self.successors = _successors(problem)
        self.tail, self.device_tail = self._tails()
        self.model = cp_model.CpModel()
        self.start: dict[Task, cp_model.IntVar] = {}
        self._hints: list[tuple[cp_model.IntVar, int]] = []
        self._variables()
        self._dependencies()
        self._no_overlap()
        self._microbatch_order()
        if memory is not None:
            self._memory(*memory)
        self.makespan = self._objective()
        self._hint()

    # ---------------------------------------------------------------------------- helpers

    def _up(self, value: float) -> int:
        """A float time in integer units, rounded up (exact for exactly scaled times)."""
        return math.ceil(value * self.scale.factor - 1e-6)

    def _dur(self, task: Task) -> int:
        return self.duration[(task.kind, task.stage)]

    def _latency(self, before: Task, after: Task) -> int:
        return self.p2p if self.problem.latency(before, after) > 0 else 0

    def _end(self, task: Task) -> cp_model.LinearExpr:
        return self.start[task] + self._dur(task)

    def _device_release(self) -> list[int]:
        """When each device has finished the tasks before the window."""
        ends = [0] * self.problem.num_devices
        for task, op in self.ops.items():
            if self.part[task] == BEFORE:
                ends[op.device] = max(ends[op.device], self._up(op.end))
        return ends

    def _tails(self) -> tuple[dict[Task, int], dict[int, int]]:
        """Longest path from each later task's start to the end of the schedule (orders
        fixed), and per device the tail of its first task after the window."""
        rows = self.schedule.device_ops
        later = [[op for op in row if self.part[op.task] == AFTER] for row in rows]
        following = {a.task: b.task for row in later for a, b in zip(row, row[1:], strict=False)}
        tail: dict[Task, int] = {}
        for op in sorted((op for row in later for op in row), key=lambda op: -op.start):
            task, best = op.task, 0
            for nxt in self.successors.get(task, ()):
                best = max(best, self._latency(task, nxt) + tail[nxt])
            if task in following:
                best = max(best, tail[following[task]])
            tail[task] = self._dur(task) + best
        device_tail = {row[0].device: tail[row[0].task] for row in later if row}
        return tail, device_tail

    def _out_tail(self, task: Task) -> int:
        """What must follow ``task``'s end through its dependents after the window."""
        return max(
            (
                self._latency(task, nxt) + self.tail[nxt]
                for nxt in self.successors.get(task, ())
                if self.part[nxt] == AFTER
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
                    self.model.add(self.start[task] >= self._up(self.ops[before].end) + lat)

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

    def _memory(
        self, activation: tuple[int, ...], retained: tuple[int, ...], capacity: tuple[int, ...]
    ) -> None:
        """Exact memory inside the window: an amount allocated before it and freed inside is
        held from when the device is free; one allocated inside and freed after is held to
        the horizon; one allocated before and freed after lowers the capacity."""
        problem = self.problem
        intervals: list[list[cp_model.IntervalVar]] = [[] for _ in range(problem.num_devices)]
        demands: list[list[int]] = [[] for _ in range(problem.num_devices)]
        carried = [0] * problem.num_devices
        for forward in (t for t in self.ops if t.kind == "F" and self.part[t] != AFTER):
            s, i, d = forward.stage, forward.microbatch, self.ops[forward].device
            for kind, amount in (("B", activation[s] - retained[s]), ("W", retained[s])):
                freeing = Task(kind, s, i)
                if amount <= 0 or freeing not in self.ops or self.part[freeing] == BEFORE:
                    continue
                if self.part[forward] == BEFORE and self.part[freeing] == AFTER:
                    carried[d] += amount
                    continue
                interval = self._held(forward, freeing, d)
                intervals[d].append(interval)
                demands[d].append(amount)
        for d in range(problem.num_devices):
            room = capacity[d] - carried[d]
            if intervals[d] and sum(demands[d]) > room:
                self.model.add_cumulative(intervals[d], demands[d], room)

    def _held(self, forward: Task, freeing: Task, device: int) -> cp_model.IntervalVar:
        """The interval an amount is held within the window, with its hint."""
        begin: cp_model.LinearExprT = self.device_free[device]
        hint_begin = self.device_free[device]
        if forward in self.start:
            begin, hint_begin = self.start[forward], self._up(self.ops[forward].start)
        finish: cp_model.LinearExprT = self.horizon
        hint_finish = self.horizon
        if freeing in self.start:
            finish, hint_finish = self._end(freeing), self._up(self.ops[freeing].end)
        size = self.model.new_int_var(0, self.horizon, "")
        self._hints.append((size, hint_finish - hint_begin))
        return self.model.new_interval_var(begin, size, finish, "")

    def _objective(self) -> cp_model.IntVar:
        """Minimise the makespan of the whole schedule (exact, see the module docstring)."""
        fixed = 0
        busy = {op.device for op in self.free}
        for task, op in self.ops.items():
            if self.part[task] == BEFORE:
                fixed = max(fixed, self._up(op.end) + self._out_tail(task))
        for d, tail in self.device_tail.items():
            if d not in busy:
                fixed = max(fixed, self.device_free[d] + tail)
        makespan = self.model.new_int_var(fixed, max(fixed, 2 * self.horizon), "makespan")
        for op in self.free:
            after = max(self._out_tail(op.task), self.device_tail.get(op.device, 0))
            self.model.add(makespan >= self._end(op.task) + after)
        self.model.minimize(makespan)
        self._hints.append((makespan, max(fixed, self._up(self.schedule.makespan))))
        return makespan

    def _hint(self) -> None:
        """The current schedule, complete (starts, held sizes, makespan)."""
        for op in self.free:
            self.model.add_hint(self.start[op.task], self._up(op.start))
        for var, value in self._hints:
            self.model.add_hint(var, value)

    def orders(self, solver: cp_model.CpSolver) -> list[list[Task]]:
        """Earlier tasks in their order, the free ones in the solver's, then the later ones."""
        rows: list[list[tuple[int, float, Task]]] = [[] for _ in range(self.problem.num_devices)]
        for task, op in self.ops.items():
            part = self.part[task]
            key = float(solver.value(self.start[task])) if part == INSIDE else op.start
            rows[op.device].append((part, key, task))
        return [[task for _, _, task in sorted(row)] for row in rows]


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


def improve_window(
    schedule: Schedule,
    t0: float,
    t1: float,
    scale: Scale,
    memory: Memory | None,
    options: SolverOptions,
    seconds: float,
) -> WindowStep:
    """Re-solve the tasks of ``schedule`` starting in ``[t0, t1)`` within ``seconds``."""
    window = WindowModel(schedule, t0, t1, scale, memory)
    if not window.free:
        return WindowStep(None, False)
    solver = make_solver(options, time_limit=seconds)
    status, interrupted = interruptible_solve(solver, window.model, None)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return WindowStep(None, interrupted)
    found = compute_timeline(schedule.problem, window.orders(solver), schedule.name)
    better = found.makespan < schedule.makespan - 1e-9
    return WindowStep(found if better else None, interrupted)


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
    memory: Memory | None,
    options: SolverOptions,
    seconds: float,
    size: int,
    per_window: float,
) -> Iterator[WindowStep]:
    """Sweep windows over the schedule, start to end, again while a pass improves it and
    time is left; yields every improvement (and a final step if Ctrl-C came)."""
    spent, clock = 0.0, time.perf_counter()
    improved = True
    while improved:
        improved = False
        for t0, t1 in window_bounds(schedule, size):
            left = seconds - (spent if options.deterministic else time.perf_counter() - clock)
            if left < 0.05:
                return
            limit = min(per_window, left)
            step = improve_window(schedule, t0, t1, scale, memory, options, limit)
            spent += limit
            if step.schedule is not None:
                schedule, improved = step.schedule, True
            if step.schedule is not None or step.interrupted:
                yield step
            if step.interrupted:
                return
