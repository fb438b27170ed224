"""Cool-down re-optimization for large problems: keep the start, solve the end exactly.

On long pipelines the steady state is periodic and what an optimizer can still win lies in
the warm-up and the cool-down. This module re-solves the cool-down of a given schedule: every
task that starts before a cut time keeps its time, every task from the cut on is free, and a
small CP-SAT model (only the free tasks) places them to minimise the makespan, with the same
rules as the full model: dependencies (a fixed dependency is a release time), one task at a
time per device (a device is free once its last fixed task ends), micro-batch order, and
exact memory (what the fixed prefix still holds at the cut is an interval from the cut to the
freeing task's end). The new per-device orders (fixed prefix, then the free tasks in the
solver's order) are retimed in floats by the timeline engine, so only a real gain is kept.
"""

from __future__ import annotations

import math
import time

from ortools.sat.python import cp_model

from ppopt.problem import Task
from ppopt.schedule import Op, Schedule
from ppopt.solver.front import SolverOptions
from ppopt.solver.params import interruptible_solve, make_solver
from ppopt.solver.scaling import Scale, scaled_durations
from ppopt.timeline import compute_timeline


class TailModel:
    """CP-SAT model of the tasks of ``schedule`` that start at or after ``cut``."""

    def __init__(
        self,
        schedule: Schedule,
        cut: float,
        scale: Scale,
        memory: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None,
    ) -> None:
        self.problem = problem = schedule.problem
        self.scale = scale
        self.duration = scaled_durations(problem, scale)
        self.p2p = scale.to_int(problem.p2p)
        self.fixed: dict[Task, Op] = {op.task: op for op in schedule.ops() if op.start < cut}
        self.free = [op for op in schedule.ops() if op.start >= cut]
        self.horizon = math.ceil(schedule.makespan * scale.factor) + 1
        self.model = cp_model.CpModel()
        self.start: dict[Task, cp_model.IntVar] = {}
        self.device_free = self._device_release(schedule)
        self._variables()
        self._dependencies()
        self._no_overlap()
        self._microbatch_order()
        if memory is not None:
            self._memory(*memory)
        self.makespan = self._objective()
        self._hint()

    def _int_up(self, value: float) -> int:
        return math.ceil(value * self.scale.factor - 1e-6)

    def _device_release(self, schedule: Schedule) -> list[int]:
        """When each device has finished its fixed prefix."""
        ends = [0] * self.problem.num_devices
        for op in self.fixed.values():
            ends[op.device] = max(ends[op.device], self._int_up(op.end))
        return ends

    def _variables(self) -> None:
        """A start per free task, no earlier than its device is free."""
        for op in self.free:
            dur = self.duration[(op.kind, op.stage)]
            low = min(self.device_free[op.device], self.horizon - dur)
            self.start[op.task] = self.model.new_int_var(low, self.horizon - dur, op.task.label())

    def _end(self, task: Task) -> cp_model.LinearExpr:
        return self.start[task] + self.duration[(task.kind, task.stage)]

    def _dependencies(self) -> None:
        """Free tasks wait for their dependencies: free ones by constraint, fixed ones as a
        release time."""
        for task in self.start:
            for before in self.problem.dependencies(task):
                lat = self.p2p if self.problem.latency(before, task) > 0 else 0
                if before in self.start:
                    self.model.add(self.start[task] >= self._end(before) + lat)
                else:
                    release = self._int_up(self.fixed[before].end) + lat
                    self.model.add(self.start[task] >= release)

    def _no_overlap(self) -> None:
        """One free task at a time per device."""
        per_device: list[list[cp_model.IntervalVar]] = [[] for _ in range(self.problem.num_devices)]
        for op in self.free:
            dur = self.duration[(op.kind, op.stage)]
            interval = self.model.new_fixed_size_interval_var(self.start[op.task], dur, "")
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
        """Exact memory after the cut: each amount is held from its allocation (or from when
        the device is free, for a fixed forward) to the end of the task that frees it."""
        problem = self.problem
        per_device: list[tuple[list[cp_model.IntervalVar], list[int]]] = [
            ([], []) for _ in range(problem.num_devices)
        ]
        for task in self.start:
            if task.kind == "F":
                continue
            s, i, d = task.stage, task.microbatch, problem.device_of(task.stage)
            amount = retained[s] if task.kind == "W" else activation[s] - retained[s]
            if amount <= 0:
                continue
            forward = Task("F", s, i)
            begin = self.start[forward] if forward in self.start else self.device_free[d]
            size = self.model.new_int_var(0, self.horizon, "")
            interval = self.model.new_interval_var(begin, size, self._end(task), "")
            per_device[d][0].append(interval)
            per_device[d][1].append(amount)
        for d, (intervals, demands) in enumerate(per_device):
            if intervals and sum(demands) > capacity[d]:
                self.model.add_cumulative(intervals, demands, capacity[d])

    def _objective(self) -> cp_model.IntVar:
        """Minimise the makespan of the whole schedule."""
        fixed_end = max((self._int_up(op.end) for op in self.fixed.values()), default=0)
        makespan = self.model.new_int_var(fixed_end, self.horizon, "makespan")
        for task in self.start:
            self.model.add(makespan >= self._end(task))
        self.model.minimize(makespan)
        return makespan

    def _hint(self) -> None:
        """The current schedule's own times."""
        for op in self.free:
            self.model.add_hint(self.start[op.task], self._int_up(op.start))

    def orders(self, solver: cp_model.CpSolver) -> list[list[Task]]:
        """Fixed prefix in its own order, then the free tasks in the solver's order."""
        rows: list[list[tuple[int, float, Task]]] = [[] for _ in range(self.problem.num_devices)]
        for task, op in self.fixed.items():
            rows[op.device].append((0, op.start, task))
        for op in self.free:
            rows[op.device].append((1, float(solver.value(self.start[op.task])), op.task))
        return [[task for _, _, task in sorted(row)] for row in rows]


def cut_for(schedule: Schedule, free_tasks: int) -> float:
    """The start time after which about ``free_tasks`` tasks start."""
    starts = sorted(op.start for op in schedule.ops())
    return starts[max(0, len(starts) - free_tasks)]


def improve_tail(
    schedule: Schedule,
    memory: tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]] | None,
    scale: Scale,
    options: SolverOptions,
    free_tasks: int,
    seconds: float,
) -> tuple[Schedule | None, bool]:
    """Re-solve the last ``free_tasks`` tasks of ``schedule`` within ``seconds``.

    Returns the better schedule (or None) and whether Ctrl-C stopped the search."""
    deadline = time.perf_counter() + seconds
    tail = TailModel(schedule, cut_for(schedule, free_tasks), scale, memory)
    remaining = seconds if options.deterministic else deadline - time.perf_counter()
    if remaining <= 0.05:
        return None, False
    solver = make_solver(options, time_limit=remaining)
    status, interrupted = interruptible_solve(solver, tail.model, None)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return None, interrupted
    found = compute_timeline(schedule.problem, tail.orders(solver), schedule.name)
    return (found if found.makespan < schedule.makespan - 1e-9 else None), interrupted
