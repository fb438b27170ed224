"""The CP-SAT model of an offloading problem: with ``offload: auto`` the optimizer chooses which
micro-batches copy their activation to host (:mod:`ppopt.offload`); with ``all`` every one does.

Per (stage, micro-batch) a presence literal ``c``: its offload O and reload L are optional
intervals on the device's copy lane (a NoOverlap per device), present iff ``c``; O after F, L
after O, and B after L only if ``c``. Memory reuses the alternative optional holds of
:class:`~ppopt.solver.recompute_model.RecomputeModel`'s pattern (PipelineModel's
``_optional_holding``): the usual holds present iff ``not c``, the offloaded holds (F to O,
L to B / W) iff ``c``. So that the engine re-times the solution's order without waiting
more (docs/contract.md §1: a compute task listed after a reload waits for the reload's start,
a reload for the end of the compute task before it), a reload starts at a compute boundary:
a zero-length interval at its start joins the device's compute NoOverlap (CP-SAT forbids it
strictly inside a task). The read-back merges each device's copies into its order by
:func:`ppopt.schedule.merged_order`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ortools.sat.python import cp_model

from ppopt.offload import Offload
from ppopt.schedule import Op, Schedule, merged_order
from ppopt.solver.model import IntProblem, PipelineModel, chosen_pairs
from ppopt.tasks import COPY_KINDS, Kind, Task


class OffloadModel(PipelineModel):
    """:class:`PipelineModel` with an optional O and L per (stage, micro-batch)."""

    def __init__(self, data: IntProblem, fixed_orders: Sequence[Sequence[Task]] | None = None):
        self.chosen: dict[tuple[int, int], cp_model.IntVar] = {}
        self.copy_interval: dict[Task, cp_model.IntervalVar] = {}
        self.marker: list[tuple[int, cp_model.IntervalVar]] = []
        super().__init__(data, fixed_orders)

    def _variables(self) -> None:
        """The compute tasks, and per pair a literal with its optional O and L."""
        problem, horizon = self.problem, self.data.horizon
        for task in problem.tasks():
            if task.kind not in COPY_KINDS:
                dur = self._dur(task)
                self.start[task] = self.model.new_int_var(0, horizon - dur, f"s_{task.label()}")
                self.interval[task] = self.model.new_fixed_size_interval_var(
                    self.start[task], dur, f"i_{task.label()}"
                )
        for s in range(problem.num_stages):
            for i in range(problem.num_microbatches):
                chosen = self.model.new_bool_var(f"c_{s}_{i}")
                if problem.offload == Offload.ALL:
                    self.model.add(chosen == 1)
                self.chosen[s, i] = chosen
                for kind in COPY_KINDS:
                    task = Task(kind, s, i)
                    dur = self._dur(task)
                    start = self.model.new_int_var(0, horizon - dur, f"s_{task.label()}")
                    self.start[task] = start
                    self.copy_interval[task] = self.model.new_optional_fixed_size_interval_var(
                        start, dur, chosen, f"i_{task.label()}"
                    )
                reload = self.start[Task(Kind.L, s, i)]
                mark = self.model.new_optional_fixed_size_interval_var(reload, 0, chosen, "z")
                self.marker.append((problem.device_of(s), mark))

    def _dependencies(self) -> None:
        """The compute edges; O after F, L after O, and B after L if the pair is offloaded."""
        for task in self.problem.tasks():
            if task.kind in COPY_KINDS:
                continue
            for before in self.problem.dependencies(task):
                if before.kind not in COPY_KINDS:
                    lag = self._latency(before, task)
                    self.model.add(self.start[task] >= self.end(before) + lag)
        for (s, i), chosen in self.chosen.items():
            offload, reload = Task(Kind.O, s, i), Task(Kind.L, s, i)
            self.model.add(self.start[offload] >= self.end(Task(Kind.F, s, i)))
            self.model.add(self.start[reload] >= self.end(offload))
            backward = self.start[Task(Kind.B, s, i)]
            self.model.add(backward >= self.end(reload)).only_enforce_if(chosen)

    def _no_overlap(self) -> None:
        """One compute task at a time (no reload starting inside one), one copy at a time."""
        p = self.problem.num_devices
        compute: list[list[cp_model.IntervalVar]] = [[] for _ in range(p)]
        copies: list[list[cp_model.IntervalVar]] = [[] for _ in range(p)]
        for task, interval in self.interval.items():
            compute[self.problem.device_of(task.stage)].append(interval)
        for device, mark in self.marker:
            compute[device].append(mark)
        for task, interval in self.copy_interval.items():
            copies[self.problem.device_of(task.stage)].append(interval)
        for row in (*compute, *copies):
            self.model.add_no_overlap(row)

    def _held_intervals(self, s: int, i: int) -> list[tuple[cp_model.IntervalVar, int]]:
        """Both alternatives of a micro-batch's holds, by its literal."""
        memory = self.data.memory
        assert memory is not None
        chosen = self.chosen[s, i]
        out = []
        for away, present in ((False, chosen.negated()), (True, chosen)):
            for hold in memory.holds_of(s, False, offloaded=away):
                if hold.amount > 0:
                    alloc, free = Task(hold.alloc, s, i), Task(hold.free, s, i)
                    out.append((self._optional_holding(alloc, free, present), int(hold.amount)))
        return out

    def _last_tasks(self, device: int) -> list[Task]:
        """The compute tasks that may end a device's work (copies end before their B)."""
        return [t for t in super()._last_tasks(device) if t.kind not in COPY_KINDS]

    # ------------------------------------------------------------------------------ hints

    def add_hint(self, schedule: Schedule) -> None:
        """Hint a schedule of the problem (integer units) with some choice made; absent
        copies are hinted right after their forward."""
        starts = {op.task: round(op.start) for op in schedule.all_ops()}
        given = schedule.problem
        for (s, i), literal in self.chosen.items():
            self.model.add_hint(literal, given.is_offloaded(s, i))
            forward = Task(Kind.F, s, i)
            at = starts[forward] + self._dur(forward)
            for kind in COPY_KINDS:
                task = Task(kind, s, i)
                if task not in starts:
                    starts[task] = at
                at = starts[task] + self._dur(task)
        self._hint_with_choices(starts, schedule)

    # ---------------------------------------------------------------------------- reading

    def offloaded(
        self, solver: cp_model.CpSolver | cp_model.CpSolverSolutionCallback
    ) -> set[tuple[int, int]]:
        """The (stage, micro-batch) pairs the solution offloads."""
        return chosen_pairs(self.chosen, solver)

    def orders(
        self, solver: cp_model.CpSolver | cp_model.CpSolverSolutionCallback
    ) -> list[list[Task]]:
        """Per-device orders of the solution: the compute tasks by start, the present copies
        merged in by the engine's rule (:func:`merged_order`)."""
        chosen = self.offloaded(solver)
        p = self.problem.num_devices
        compute: list[list[Op]] = [[] for _ in range(p)]
        copies: list[list[Op]] = [[] for _ in range(p)]
        for task, var in self.start.items():
            if task.kind in COPY_KINDS and (task.stage, task.microbatch) not in chosen:
                continue
            d = self.problem.device_of(task.stage)
            start = solver.value(var)
            op = Op(d, task.kind, task.stage, task.microbatch, start, start + self._dur(task))
            (copies if task.kind in COPY_KINDS else compute)[d].append(op)
        return [
            merged_order(sorted(row, key=_by_time), sorted(lane, key=_by_time))
            for row, lane in zip(compute, copies, strict=True)
        ]


def _by_time(op: Op) -> tuple[float, float]:
    return (op.start, op.end)
