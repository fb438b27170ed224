"""The CP-SAT model of a pipeline schedule: variables, constraint families, objective, hints.

Every task is a fixed-size interval on its device; the model reads top to bottom as
variables → dependencies → micro-batch order → no overlap → memory → objective. All values
here are integers from :mod:`ppopt.solver.scaling`.

Micro-batch order (``_microbatch_order``) is a symmetry break that loses no optimality for
the makespan among *identical* micro-batches (equal ``microbatch_scale``,
:attr:`Problem.identical_groups`): given any schedule, give the k-th earliest slot of each
(kind, stage) among one class's micro-batches to the class's k-th micro-batch. Order
statistics keep every dependency (if x_j >= y_j for all j then the k-th smallest x >= the
k-th smallest y; dependencies join tasks of one micro-batch, so of one class), durations
within a (kind, stage, class) are equal, and memory only counts how many tasks of each
(kind, stage, class) have started or ended. Micro-batches of different scales are not
ordered: a long one may overtake a short one anywhere, stage 0's injection order included
(tests/solver/test_microbatch_scale.py shows a tiny case where ordering all of them loses the
optimum, and checks the class-wise break against an exhaustive search without it).

For the *span* objective the model measures each device from its actual
first start, which may come later than the tight timeline's: the model is then a relaxation
of the tight problem (every tight schedule is a schedule; reassigning slots to micro-batches
keeps every start, so the symmetry break loses nothing among all schedules), so CP-SAT's bound
is a bound of the reported span. Its solutions are timed tight by the engine before they are
kept (the tight span can be longer than the model's value); a span optimum can need an
out-of-order first task that makes a device start later (tests/solver pins such a case), so
span results are called OPTIMAL only when they meet the lower bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ortools.sat.python import cp_model

from ppopt.metrics import Objective
from ppopt.problem import Problem
from ppopt.recompute import Recompute
from ppopt.schedule import Schedule
from ppopt.solver.scaling import IntMemory
from ppopt.tasks import Kind, Task


@dataclass(frozen=True)
class IntProblem:
    """The integer data the model is built from."""

    problem: Problem
    duration: dict[Task, int]  # every task's integer duration (scaling.task_durations)
    #: The problem in the solver's integer units (:func:`integer_problem`): its latencies.
    scaled: Problem
    horizon: int
    lower_bound: int
    objective: str
    memory: IntMemory | None = None
    #: Integer duration of an overlapped pair per (forward stage, backward stage), if any.
    pair_duration: dict[tuple[int, int], int] | None = None


class PipelineModel:
    """A CP-SAT model of one problem; ``fixed_orders`` imposes per-device task orders."""

    def __init__(self, data: IntProblem, fixed_orders: Sequence[Sequence[Task]] | None = None):
        self.data = data
        self.problem = data.problem
        self.model = cp_model.CpModel()
        self.start: dict[Task, cp_model.IntVar] = {}
        self.interval: dict[Task, cp_model.IntervalVar] = {}
        self.held: dict[tuple[Task, Task], cp_model.IntVar] = {}
        #: Holding intervals that exist only under a choice (recompute, offload auto).
        self.optional_held: list[tuple[Task, Task, cp_model.IntVar]] = []
        #: Overlapped pairs the model may choose (``overlap_times`` given, orders free): per
        #: candidate (F, B), its literal and interval; per task, its end and "runs alone".
        self.pairing = data.problem.overlap is not None and fixed_orders is None
        self.pair_used: dict[tuple[Task, Task], cp_model.IntVar] = {}
        self.pair_interval: dict[tuple[Task, Task], cp_model.IntervalVar] = {}
        self.end_var: dict[Task, cp_model.IntVar] = {}
        self.alone: dict[Task, cp_model.IntVar] = {}
        self._variables()
        if self.pairing:
            self._pairs()
        self._dependencies()
        self._microbatch_order()
        self._no_overlap()
        self._memory()
        self._memory_precedences()
        if fixed_orders is not None:
            self._fixed_orders(fixed_orders)
        self.objective = self._objective()

    # -------------------------------------------------------------------------- variables

    def _dur(self, task: Task) -> int:
        return self.data.duration[task]

    def end(self, task: Task) -> cp_model.LinearExpr:
        """The end of a task as a linear expression (its own variable when it may pair)."""
        if self.pairing:
            return self.end_var[task]
        return self.start[task] + self._dur(task)

    def _latency(self, before: Task, after: Task) -> int:
        return int(self.data.scaled.latency(before, after))

    def _variables(self) -> None:
        """A start variable and a fixed-size interval per task."""
        for task in self.problem.tasks():
            dur = self._dur(task)
            start = self.model.new_int_var(0, self.data.horizon - dur, f"s_{task.label()}")
            self.start[task] = start
            if not self.pairing:
                self.interval[task] = self.model.new_fixed_size_interval_var(
                    start, dur, f"i_{task.label()}"
                )
                continue
            alone = self.model.new_bool_var(f"a_{task.label()}")
            end = self.model.new_int_var(dur, self.data.horizon, f"e_{task.label()}")
            self.model.add(end == start + dur).only_enforce_if(alone)
            self.alone[task], self.end_var[task] = alone, end
            self.interval[task] = self.model.new_optional_fixed_size_interval_var(
                start, dur, alone, f"i_{task.label()}"
            )

    def _pair_candidates(self) -> list[tuple[Task, Task]]:
        """Every (F, B) that may pair: one device, the forward's micro-batch later than the
        backward's. The micro-batch order (below) leaves no other: were ``i <= j`` for
        F(s,i) and B(s',j), B(s',j) would wait for F(s,j), which ends no earlier than
        F(s,i) does, after the pair's start. With two model copies that holds within a copy;
        a forward of one copy and a backward of the other (DualPipe's pairs) may be any two
        of their micro-batches: nothing orders them."""
        problem = self.problem
        out = []
        for d in range(problem.num_devices):
            stages = problem.stages_on(d)
            for fs in stages:
                for bs in stages:
                    same = problem.copy_of_stage(fs) == problem.copy_of_stage(bs)
                    out += [
                        (Task(Kind.F, fs, i), Task(Kind.B, bs, j))
                        for i in problem.microbatches_of(fs)
                        for j in problem.microbatches_of(bs)
                        if j < i or not same
                    ]
        return out

    def _pairs(self) -> None:
        """The pair rule (docs/contract.md §1) as optional intervals: a chosen pair starts
        both tasks together and ends both after the pair's duration; each task runs alone or
        in exactly one pair; the objective decides which pairs pay."""
        members: dict[Task, list[cp_model.IntVar]] = {task: [] for task in self.alone}
        assert self.data.pair_duration is not None
        for f, b in self._pair_candidates():
            dur = self.data.pair_duration[f.stage, b.stage]
            used = self.model.new_bool_var(f"p_{f.label()}_{b.label()}")
            start = self.start[f]
            self.model.add(self.start[b] == start).only_enforce_if(used)
            self.model.add(self.end_var[f] == start + dur).only_enforce_if(used)
            self.model.add(self.end_var[b] == start + dur).only_enforce_if(used)
            self.pair_used[f, b] = used
            self.pair_interval[f, b] = self.model.new_optional_fixed_size_interval_var(
                start, dur, used, f"q_{f.label()}_{b.label()}"
            )
            members[f].append(used)
            members[b].append(used)
        for task, alone in self.alone.items():
            self.model.add_exactly_one([alone, *members[task]])

    # ------------------------------------------------------------------------ constraints

    def _dependencies(self) -> None:
        """Each task starts after its dependencies end, plus p2p latency across devices."""
        for task in self.problem.tasks():
            for before in self.problem.dependencies(task):
                self.model.add(self.start[task] >= self.end(before) + self._latency(before, task))

    def _microbatch_order(self) -> None:
        """Tasks of one (kind, stage) run in micro-batch order among micro-batches of equal
        scale (lossless symmetry break, see the module docstring)."""
        problem = self.problem
        kinds = problem.kinds if problem.recompute == Recompute.ALL else problem.pass_kinds
        for kind in kinds:
            for s in range(problem.num_stages):
                for i in problem.microbatches_of(s):
                    before = problem.previous_identical(i)
                    if before is None:
                        continue
                    prev, task = Task(kind, s, before), Task(kind, s, i)
                    self.model.add(self.start[task] >= self.end(prev))

    def _no_overlap(self) -> None:
        """A device runs one task at a time."""
        by_device: list[list[cp_model.IntervalVar]] = [[] for _ in range(self.problem.num_devices)]
        for task, interval in self.interval.items():
            by_device[self.problem.device_of(task.stage)].append(interval)
        for (f, _), interval in self.pair_interval.items():
            by_device[self.problem.device_of(f.stage)].append(interval)
        for intervals in by_device:
            self.model.add_no_overlap(intervals)

    def _memory(self) -> None:
        """Exact memory: each of the problem's holds keeps its amount from its allocating
        task's start to its freeing task's end; a cumulative per device keeps the sum under
        the limit (intervals are half-open, so a free at t and an allocation at t coexist)."""
        memory, problem = self.data.memory, self.problem
        if memory is None:
            return
        for d in range(problem.num_devices):
            intervals, demands = [], []
            for s in problem.stages_on(d):
                for i in problem.microbatches_of(s):
                    for interval, demand in self._held_intervals(s, i):
                        intervals.append(interval)
                        demands.append(demand)
            if intervals and sum(demands) > memory.capacity[d]:
                self.model.add_cumulative(intervals, demands, memory.capacity[d])

    def _held_intervals(self, s: int, i: int) -> list[tuple[cp_model.IntervalVar, int]]:
        """The holding intervals of micro-batch ``i`` on stage ``s``, with their amounts."""
        memory = self.data.memory
        assert memory is not None
        return [
            (self._holding_interval(Task(h.alloc, s, i), Task(h.free, s, i)), int(h.amount))
            for h in memory.holds_of(s, self.problem.is_recomputed(s, i), i)
            if h.amount > 0
        ]

    def _holding_interval(self, alloc: Task, free: Task) -> cp_model.IntervalVar:
        """The interval from ``alloc``'s start to ``free``'s end."""
        size = self.model.new_int_var(0, self.data.horizon, f"h_{free.label()}")
        self.held[alloc, free] = size
        return self.model.new_interval_var(
            self.start[alloc], size, self.end(free), f"m_{free.label()}"
        )

    def _optional_holding(
        self, alloc: Task, free: Task, present: cp_model.LiteralT
    ) -> cp_model.IntervalVar:
        """The interval from ``alloc``'s start to ``free``'s end, present iff ``present``
        (shared by the models that choose recomputes or offloads)."""
        size = self.model.new_int_var(0, self.data.horizon, f"h_{alloc.label()}_{free.label()}")
        self.optional_held.append((alloc, free, size))
        return self.model.new_optional_interval_var(
            self.start[alloc], size, self.end(free), present, f"m_{alloc.label()}_{free.label()}"
        )

    def _memory_precedences(self) -> None:
        """Redundant (exact for one unsplit stage per device): F(s,i) waits for B(s,i-L)
        where L activations fit, and on a split problem for W(s,i-1-K) where K retained
        parts fit beside one activation (the holds of docs/contract.md §1: F takes ``act``,
        B frees all but ``kept``, W frees ``kept``)."""
        memory, problem = self.data.memory, self.problem
        if (
            memory is None
            or problem.recompute != Recompute.NONE
            or problem.offloads
            or problem.is_scaled
        ):
            return  # a recomputed or offloaded micro-batch frees its activation before its B;
            # the count argument needs identical micro-batches
        for s in range(problem.num_stages):
            mbs = problem.microbatches_of(s)  # in order (the symmetry break)
            m = len(mbs)
            cap = memory.capacity[problem.device_of(s)]
            act = memory.held(s, alloc=Kind.F)
            kept = memory.held(s, alloc=Kind.F, free=Kind.W)
            if act <= 0 or act != memory.held(s):
                continue  # only forwards allocate in the rule this argument is about
            fit = cap // act
            for k in range(fit, m):
                later, earlier = Task(Kind.F, s, mbs[k]), Task(Kind.B, s, mbs[k - fit])
                self.model.add(self.start[later] >= self.end(earlier))
            if problem.is_split and kept > 0 and cap >= act:
                fit_w = (cap - act) // kept
                for k in range(fit_w + 1, m):
                    earlier = Task(Kind.W, s, mbs[k - 1 - fit_w])
                    self.model.add(self.start[Task(Kind.F, s, mbs[k])] >= self.end(earlier))

    def _fixed_orders(self, orders: Sequence[Sequence[Task]]) -> None:
        """Impose each device's task order."""
        for order in orders:
            for prev, task in zip(order, order[1:], strict=False):
                self.model.add(self.start[task] >= self.end(prev))

    # -------------------------------------------------------------------------- objective

    def _last_tasks(self, device: int) -> list[Task]:
        """Tasks that may end a device's work: per kind and stage, the last micro-batch of
        each class of identical ones (the last of all when uniform)."""
        lasts = [group[-1] for group in self.problem.identical_groups]
        kinds = [k for k in self.problem.kinds if k != Kind.F]
        stages = self.problem.stages_on(device)
        tasks = [Task(k, s, i) for s in stages for k in kinds for i in lasts]
        return [task for task in tasks if self.problem.has_task(task)]

    def _objective(self) -> cp_model.IntVar:
        """Minimise the makespan or the largest per-device span; the bound is redundant."""
        data, problem = self.data, self.problem
        obj = self.model.new_int_var(data.lower_bound, data.horizon, "objective")
        firsts = [group[0] for group in problem.identical_groups]
        for d in range(problem.num_devices):
            for task in self._last_tasks(d):
                if data.objective != Objective.SPAN:
                    self.model.add(obj >= self.end(task))
                    continue
                for i in firsts:  # the device's first task is one class's first forward
                    stages = [s for s in problem.stages_on(d) if i in problem.microbatches_of(s)]
                    first = Task(Kind.F, min(stages), i)
                    self.model.add(obj >= self.end(task) - self.start[first])
        self.model.minimize(obj)
        return obj

    # ------------------------------------------------------------------------------ hints

    def add_hint(self, schedule: Schedule) -> None:
        """Hint a complete schedule whose times are already in the model's integer units."""
        ends: dict[Task, int] = {}
        starts: dict[Task, int] = {}
        for op in schedule.ops():
            starts[op.task] = round(op.start)
            ends[op.task] = round(op.end)
        for task, var in self.start.items():
            self.model.add_hint(var, starts[task])
        if self.pairing:
            self._hint_pairs(schedule, ends)
        for (alloc, free), size in self.held.items():
            self.model.add_hint(size, ends[free] - starts[alloc])
        self._hint_objective(schedule)

    def _hint_pairs(self, schedule: Schedule, ends: dict[Task, int]) -> None:
        """Hint the ends, which tasks run alone and which candidate pairs are chosen."""
        chosen = {(Task(*f), Task(*b)) for f, b in schedule.pairs}
        paired = {task for pair in chosen for task in pair}
        for task, end in self.end_var.items():
            self.model.add_hint(end, ends[task])
            self.model.add_hint(self.alone[task], task not in paired)
        for pair, used in self.pair_used.items():
            self.model.add_hint(used, pair in chosen)

    def _hint_with_choices(self, starts: dict[Task, int], schedule: Schedule) -> None:
        """Hint every start, every optional holding interval's size (from its two tasks'
        hinted times) and the objective: the hint of a model with choices (recompute,
        offload), once ``starts`` holds a start for each of its tasks."""
        for task, var in self.start.items():
            self.model.add_hint(var, starts[task])
        for alloc, free, size in self.optional_held:
            self.model.add_hint(size, max(0, starts[free] + self._dur(free) - starts[alloc]))
        self._hint_objective(schedule)

    def _hint_objective(self, schedule: Schedule) -> None:
        """Hint the objective variable with the schedule's value (integer units)."""
        span = self.data.objective == Objective.SPAN
        rows = [row for row in schedule.device_ops if row]
        metric = max(round(row[-1].end) - (round(row[0].start) if span else 0) for row in rows)
        self.model.add_hint(self.objective, metric)

    # ---------------------------------------------------------------------------- reading

    def orders(
        self, solver: cp_model.CpSolver | cp_model.CpSolverSolutionCallback
    ) -> list[list[Task]]:
        """Per-device task orders of the solver's current solution."""
        rows: list[list[tuple[int, bool, Task]]] = [[] for _ in range(self.problem.num_devices)]
        backs = {b for _, b in self.pairs(solver)}
        for task, var in self.start.items():
            rows[self.problem.device_of(task.stage)].append(
                (solver.value(var), task in backs, task)
            )
        return [[task for _, _, task in sorted(row)] for row in rows]

    def pairs(
        self, solver: cp_model.CpSolver | cp_model.CpSolverSolutionCallback
    ) -> list[tuple[Task, Task]]:
        """The overlapped pairs the solver's current solution chose."""
        return [pair for pair, used in self.pair_used.items() if solver.value(used)]


def chosen_pairs(
    literals: dict[tuple[int, int], cp_model.IntVar],
    solver: cp_model.CpSolver | cp_model.CpSolverSolutionCallback,
) -> set[tuple[int, int]]:
    """The (stage, micro-batch) pairs whose choice literal is true in the solution (which a
    model with choices recomputes or offloads)."""
    return {pair for pair, literal in literals.items() if solver.boolean_value(literal)}
