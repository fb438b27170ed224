"""The CP-SAT model of a ``recompute: auto`` problem: the optimizer chooses which micro-batches
recompute (:mod:`ppopt.recompute`).

Per (stage, micro-batch) a presence literal ``r``: the R task is an optional interval on the
stage's device, present iff ``r``; B waits for it only if ``r``; and each micro-batch's memory
is two alternative sets of optional holding intervals in the device's cumulative, the usual
holds (F to B / W) present iff ``not r`` and the recompute holds (F to F, the checkpoint F to
R, R to B / W) present iff ``r``. F, B and W keep the micro-batch order of
:class:`~ppopt.solver.model.PipelineModel`; the R tasks do not (which micro-batches recompute
may differ from stage to stage); tests/solver check the model against an exhaustive search over
every choice on tiny cases.
"""

from __future__ import annotations

from collections.abc import Sequence

from ortools.sat.python import cp_model

from ppopt.recompute import RecomputePer
from ppopt.schedule import Schedule
from ppopt.solver.model import IntProblem, PipelineModel, chosen_pairs
from ppopt.tasks import Kind, Task


class RecomputeModel(PipelineModel):
    """:class:`PipelineModel` with an optional R task per (stage, micro-batch)."""

    def __init__(self, data: IntProblem, fixed_orders: Sequence[Sequence[Task]] | None = None):
        self.chosen: dict[tuple[int, int], cp_model.IntVar] = {}
        super().__init__(data, fixed_orders)

    # -------------------------------------------------------------------------- variables

    def _variables(self) -> None:
        """The tasks every micro-batch runs, and an optional R with its literal per pair."""
        super()._variables()
        problem, horizon = self.problem, self.data.horizon
        for s in range(problem.num_stages):
            for i in range(problem.num_microbatches):
                task = Task(Kind.R, s, i)
                dur = self._dur(task)
                chosen = self.model.new_bool_var(f"r_{s}_{i}")
                start = self.model.new_int_var(0, horizon - dur, f"s_{task.label()}")
                self.chosen[s, i] = chosen
                self.start[task] = start
                self.interval[task] = self.model.new_optional_fixed_size_interval_var(
                    start, dur, chosen, f"i_{task.label()}"
                )

    # ------------------------------------------------------------------------ constraints

    def _dependencies(self) -> None:
        """The usual edges; R(s,i) after F(s,i), and B(s,i) after R(s,i) if it is present."""
        super()._dependencies()
        for (s, i), chosen in self.chosen.items():
            recompute = Task(Kind.R, s, i)
            self.model.add(self.start[recompute] >= self.end(Task(Kind.F, s, i)))
            backward = self.start[Task(Kind.B, s, i)]
            self.model.add(backward >= self.end(recompute)).only_enforce_if(chosen)
            if self.problem.recompute_per == RecomputePer.STAGE and i > 0:
                self.model.add(chosen == self.chosen[s, 0])  # one choice per stage

    def _held_intervals(self, s: int, i: int) -> list[tuple[cp_model.IntervalVar, int]]:
        """Both alternatives of a micro-batch's holds: the usual ones present iff it is not
        recomputed, the recompute ones iff it is."""
        memory = self.data.memory
        assert memory is not None
        chosen = self.chosen[s, i]
        out = []
        for recomputed, present in ((False, chosen.negated()), (True, chosen)):
            for hold in memory.holds_of(s, recomputed, i):
                if hold.amount > 0:
                    alloc, free = Task(hold.alloc, s, i), Task(hold.free, s, i)
                    out.append((self._optional_holding(alloc, free, present), int(hold.amount)))
        return out

    # ------------------------------------------------------------------------------ hints

    def add_hint(self, schedule: Schedule) -> None:
        """Hint a schedule of the problem with some choice made (integer units); an absent
        R is hinted right after its forward."""
        starts = {op.task: round(op.start) for op in schedule.ops()}
        chosen = schedule.problem
        for (s, i), literal in self.chosen.items():
            recompute = Task(Kind.R, s, i)
            self.model.add_hint(literal, chosen.is_recomputed(s, i))
            if recompute not in starts:
                forward = Task(Kind.F, s, i)
                starts[recompute] = starts[forward] + self._dur(forward)
        self._hint_with_choices(starts, schedule)

    # ---------------------------------------------------------------------------- reading

    def recomputed(
        self, solver: cp_model.CpSolver | cp_model.CpSolverSolutionCallback
    ) -> set[tuple[int, int]]:
        """The (stage, micro-batch) pairs the solution recomputes."""
        return chosen_pairs(self.chosen, solver)

    def orders(
        self, solver: cp_model.CpSolver | cp_model.CpSolverSolutionCallback
    ) -> list[list[Task]]:
        """Per-device task orders of the solution, the absent R tasks left out."""
        chosen = self.recomputed(solver)
        rows = super().orders(solver)
        return [
            [t for t in row if t.kind != Kind.R or (t.stage, t.microbatch) in chosen]
            for row in rows
        ]
