"""One optimizer run: floor from the baselines, improve it, build the model, hint, solve.

The result is never worse than the best baseline that fits the same memory limit (the
*floor*, :mod:`ppopt.solver.floor`), and its times are always the float timeline of the chosen
orders. The memory limit and the lower bound are computed once per solve and passed down.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

from ortools.sat.python import cp_model

from ppopt.baselines.onefoneb import one_f_one_b_orders
from ppopt.baselines.recompute import drop_needless_recomputes, insert_recomputes
from ppopt.errors import NoScheduleError, SolverOptionError
from ppopt.limits import meets_bound
from ppopt.offload import Offload
from ppopt.problem import Problem
from ppopt.recompute import Recompute
from ppopt.schedule import Schedule
from ppopt.solver.bounds import lower_bound
from ppopt.solver.cpsat import (
    direct_model_parameters,
    interruptible_solve,
    large_model_parameters,
    make_solver,
)
from ppopt.solver.floor import by_objective, floor_stages, objective_value
from ppopt.solver.local import tabu_search
from ppopt.solver.model import IntProblem, PipelineModel
from ppopt.solver.offload_model import OffloadModel
from ppopt.solver.options import Method, Objective, Order, Progress, ProgressCallback, SolverOptions
from ppopt.solver.recompute_model import RecomputeModel
from ppopt.solver.result import SolveResult, Status
from ppopt.solver.scaling import (
    Scale,
    bound_ratio,
    integer_problem,
    integer_timeline,
    memory_data,
    rounding_floor,
    task_durations,
    time_scale,
)
from ppopt.solver.window import Cursor, sweep_windows, window_bounds
from ppopt.tasks import Task
from ppopt.timeline import compute_timeline

#: Below this many seconds left, CP-SAT is not started and the best heuristic is returned.
MIN_SOLVE_SECONDS = 0.05
#: ``large``: share of the time left spent sweeping exact window re-solves over the best
#: schedule (the rest goes to CP-SAT's LNS on the whole model), tasks per window, and the
#: time limit of one window (measured: 300-650-task windows mostly proven in under 3 s).
WINDOW_SHARE = 0.8
WINDOW_TASKS = 500
WINDOW_SECONDS = 3.0
#: ``direct``, above one window's size: share of the time for the sweep before the full
#: model, whose hint it improves (measured: p=8 m=16 V split, 768 tasks, then proven optimal
#: in 7.8 s; without it 0.2-0.6 % above the bound after 60 s).
DIRECT_WINDOW_SHARE = 0.2
#: ``large``: share of the time left for the tabu search along the critical path before the
#: window sweep (:mod:`ppopt.solver.local`), which stops sooner after this many iterations
#: without a shorter schedule (measured at p=32 m=256 split: 792.25 with 0.4, 792.19 with
#: 0.6, where the search levels off; windows use the rest better on full-backward V cases).
TABU_SHARE = 0.5
TABU_PATIENCE = 150
#: ``direct``: share of the time left for the tabu search before the full model, whose hint
#: it improves (measured at 20 s, 1 worker, on 9 direct-model cases: never worse, and
#: 0.6-4.2 % shorter on four, e.g. p=8 m=16 V full 133.24 -> 131.40, a random p=8 m=16 V
#: instance proven optimal in 5 s instead of 0.6 % above; DeepSeek-V3's p=8 partition
#: 644.52 -> 627.39, where CP-SAT alone needs 20 s for 627.42).
DIRECT_TABU_SHARE = 0.2
#: ``large``, not deterministic: the tabu search and the window sweep take turns, the sweep
#: a slice of this many seconds at a time resuming where the last slice stopped, until the
#: window share is spent or a whole sweep and the search after it find nothing (measured
#: at 60 s on 1 worker: p=16 m=32 split 110.51 -> 109.18, V 189.39 -> 187.93; a local
#: optimum of one is often not one of the other).
ROUND_WINDOW_SECONDS = 15.0
#: ``large`` on 1 worker: CP-SAT runs no LNS then (one full-model worker, see
#: :func:`large_model_parameters`), so the turns take this share of the time left instead
#: of :data:`WINDOW_SHARE`; the rest builds the model and gets CP-SAT's bound.
ONE_WORKER_IMPROVE_SHARE = 0.95
#: ``large``, in turns: the tabu search first runs from each of the best few baselines
#: (distinct orders within this fraction of the best one's value, at most this many,
#: each for at most this share of the time left and until its patience runs out), and the
#: turns go on from the best it found: a local optimum depends on where the search starts
#: (measured with the patience at 8 s on p=16 m=32 split: the best baseline
#: greedy-staged-fit 112.85 -> 111.16, the third, zb-h1, 112.89 -> 109.91).
START_MARGIN = 0.03
STARTS = 3
START_SHARE = 0.03
#: With ``overlap_times``, on either path: share of the time left for the tabu search's
#: pair moves before CP-SAT (which improved on no hint of the p=8 m=20 overlap benchmark
#: within 20 s), with no patience limit (measured: it still finds shorter schedules there
#: after hundreds of iterations without one).
PAIR_TABU_SHARE = 0.75
#: ``recompute: auto`` with no recomputation needed so far: share of the time left for the
#: model without recomputation before the model with the choice.
PLAIN_SHARE = 0.5
#: ``method: auto`` uses the direct model (full presolve) up to this many tasks.
DIRECT_TASK_LIMIT = 1500
#: Seconds per task to build and hint the CP-SAT model (measured: 7.3 s for 65,536 tasks on
#: the shared 2-core machine): with less time left, the time limit ends the solve before it.
MODEL_SECONDS_PER_TASK = 1.1e-4
#: Above that size, a solver solution is timed by the engine (to keep it and show its value)
#: at most this often; the last one is always timed.
RETIME_SECONDS = 1.0


def solve(
    problem: Problem,
    options: SolverOptions | None = None,
    progress: ProgressCallback | None = None,
) -> SolveResult:
    """Find the best schedule of ``problem`` under its memory limit (docs/contract.md §1).

    Infeasible or timed-out solves are a status; :class:`NoScheduleError` means the problem
    has no schedule at all (a memory limit below what one micro-batch needs) or none was found.
    """
    run = _Run(problem, options or SolverOptions(), progress)
    result = run.solve()
    run.say()  # the last progress line is the result's value and bound
    return result


@dataclass
class _Run:
    """One solve's state: the problem, options, clock, memory caps, bound and best so far."""

    problem: Problem
    options: SolverOptions
    progress: ProgressCallback | None

    def __post_init__(self) -> None:
        self.started = time.perf_counter()
        self.caps = self.problem.memory_caps
        self.method = _method(self.problem, self.options)
        # the closed forms first, so the first baseline is not kept waiting (the one-machine
        # bound costs about 0.1 ms a task): the full bound after the first batch (_floor)
        self.bound = lower_bound(self.problem, self.options.objective, self.caps, False)
        self.full_bound = False
        self.best: Schedule | None = None  # the best schedule so far
        #: The baselines that fit within START_MARGIN of the best: the only ones a start can
        #: come from (all would be 13 schedules of 49k tasks at p=32 m=256 split V)
        self.baselines: list[Schedule] = []
        self.cp_bound = -math.inf  # CP-SAT's bound, converted to a bound of the problem
        self.last_said: tuple[float | None, float] | None = None  # the last progress line

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def share(self, fraction: float) -> float:
        """Seconds for one phase: a fraction of the time left (of the whole limit when
        deterministic, so the phases do not depend on the machine's speed)."""
        left = self.options.time_limit - self.elapsed()
        return fraction * (self.options.time_limit if self.options.deterministic else left)

    def report(self, schedule: Schedule) -> None:
        """Keep a new best schedule and say so to the progress callback."""
        self.best = schedule
        self.say()

    def solve(self) -> SolveResult:
        self.problem.check_one_microbatch_fits()
        if self.options.params:
            make_solver(self.options)  # a misspelt CP-SAT parameter is an error even when
            # the floor is proven optimal and CP-SAT never starts
        if self.options.order == Order.FIXED:
            if self.problem.num_chunks != 1:
                raise SolverOptionError("solver.order: fixed needs num_chunks = 1 (the 1F1B order)")
            if self.problem.recompute == Recompute.AUTO:
                raise SolverOptionError("solver.order: fixed cannot choose recomputation (auto)")
            if self.problem.offloads:
                raise SolverOptionError("solver.order: fixed cannot place offload copies")
            orders = insert_recomputes(self.problem, one_f_one_b_orders(self.problem))
            return self._cp_sat(None, orders)
        try:
            self._floor()
            self._full_bound()
            unmoved = self.problem.offloads  # the local searches do not move copies
            if (
                self.best
                and not unmoved
                and not self._proven(self.best)
                and not self._no_time_for(0.0)  # always when deterministic
            ):
                self._improve_without_r(self.best)
            if self.problem.recompute == Recompute.AUTO and self.best is not None:
                self._solve_without_r(self.best)
            if self.best is not None and self._proven(self.best):
                # the bound is met: nothing CP-SAT can add (its time is not spent)
                return self._result(self.best, self.best.name, False, self.valid_bound())
            if self.best is not None and self._no_time_for(self._model_seconds()):
                return self._result(self.best, self.best.name, False, self.valid_bound())
            return self._cp_sat(self.best, None)
        except KeyboardInterrupt:  # outside CP-SAT (heuristics, model build): keep the best
            if self.best is None:
                raise
            return self._result(
                self.best, self.best.name, interrupted=True, bound=self.valid_bound()
            )

    def _solve_without_r(self, floor: Schedule) -> None:
        """``auto`` when the best schedule so far recomputes nothing: first the model without
        recomputation for a share of the time (smaller, so it converges sooner), its answer
        then the hint of the model with the choice; so memory that needs no recomputation
        finds what ``none`` finds (measured: 3 of 19 time-limited 1x cases were worse
        without this)."""
        if floor.problem.num_recomputed or self._proven(floor):
            return
        seconds = self.share(PLAIN_SHARE)
        if seconds < MIN_SOLVE_SECONDS:
            return  # the time is up: the model with the choice gets what is left
        plain = floor.problem.without_recompute()
        options = replace(self.options, time_limit=seconds)
        first = _Run(plain, options, self.progress)
        found = first._cp_sat(Schedule(plain, floor.name, floor.device_ops), None).schedule
        if objective_value(found, self.options.objective) < objective_value(
            floor, self.options.objective
        ):
            self.report(Schedule(floor.problem, found.name, found.device_ops))

    def _improve_without_r(self, floor: Schedule) -> None:
        """:meth:`_improve` when the best schedule runs no R task (the tabu search and the
        window sweep do not move R tasks): on an ``auto`` problem it improves the schedule as
        one without recomputation and hands the result back as the problem's own."""
        if floor.problem.num_recomputed:
            return
        plain = floor.problem.without_recompute()
        try:
            self._improve(Schedule(plain, floor.name, floor.device_ops, pairs=floor.pairs))
        finally:
            if self.best is not None and self.best.problem is plain is not floor.problem:
                self.best = Schedule(floor.problem, self.best.name, self.best.device_ops)

    def _floor(self) -> None:
        """The baselines under the limit, best kept in :attr:`best`. Once one is found, the
        rest are skipped when it is proven optimal, and a further batch starts only if it fits
        the time left (guessed from the last batch)."""
        batches = floor_stages(self.problem, self.caps)
        last = 0.0
        while True:
            if self.best is not None and (self._proven(self.best) or self._no_time_for(last)):
                return
            began = self.elapsed()
            candidates = next(batches, None)
            if candidates is None:
                return
            last = self.elapsed() - began
            objective = self.options.objective
            pool = [*candidates, *self.baselines]  # a tie goes to the newer baseline
            if pool:
                best = min(pool, key=by_objective(objective))
                self.report(best)
                reach = objective_value(best, objective) * (1 + START_MARGIN)
                self.baselines = [s for s in pool if objective_value(s, objective) <= reach]
            self._full_bound()

    def _full_bound(self) -> None:
        """Replace the first bound (closed forms) by the full one, once (a progress line
        says so when it is stronger)."""
        if not self.full_bound:
            self.full_bound = True
            self.bound = lower_bound(self.problem, self.options.objective, self.caps)
            self.say()

    def _no_time_for(self, seconds: float) -> bool:
        """Whether a phase of about ``seconds`` would overrun the limit (never when
        deterministic: its phases must not depend on the machine's speed)."""
        return not self.options.deterministic and seconds > self._left()

    def _left(self) -> float:
        """Seconds left of the time limit."""
        return self.options.time_limit - self.elapsed()

    def _model_seconds(self) -> float:
        """A guess of the time to build and hint the CP-SAT model: with less time left, the
        best schedule so far is the answer."""
        return MODEL_SECONDS_PER_TASK * self.problem.num_tasks

    def _proven(self, schedule: Schedule) -> bool:
        return meets_bound(objective_value(schedule, self.options.objective), self.bound)

    def _improve(self, floor: Schedule) -> None:
        """The tabu search, then the window sweep, each on the best schedule so far (kept in
        :attr:`best` as they go, so Ctrl-C loses nothing); on the large path, unless
        deterministic, in turns (:meth:`_improve_in_turns`)."""
        if self._in_turns():
            self._improve_in_turns(floor)
            return
        for better in self._tabu_rounds(floor):
            self.report(better.renamed("tabu"))
        assert self.best is not None
        for improved, interrupted in self._window_rounds(self.best):
            self.report(improved.renamed("window"))
            if interrupted:
                raise KeyboardInterrupt

    def _in_turns(self) -> bool:
        """Whether the improvers take turns: the large path, single tasks, uniform
        micro-batches (the sweep's conditions), and not deterministic (turns end by the
        clock)."""
        problem = self.problem
        return (
            self.method == Method.LARGE
            and not self.options.deterministic
            and problem.overlap is None
            and not problem.is_scaled
        )

    def _improve_in_turns(self, floor: Schedule) -> None:
        """Turns of the tabu search (until its patience runs out) and a slice of the window
        sweep (resuming at the window after the last one solved), each on the best schedule
        so far, until the share of the time is spent, or a whole sweep's worth of windows
        and the searches between them find nothing."""
        one_worker = self.options.num_workers == 1
        end = self.elapsed() + self.share(ONE_WORKER_IMPROVE_SHARE if one_worker else WINDOW_SHARE)
        memory, scale = memory_data(self.problem, self.caps), time_scale(self.problem)
        cursor, idle = Cursor(), 0.0
        self._tabu_from_starts(floor, end)
        while self.best is not None and not self._proven(self.best):
            before = objective_value(self.best, self.options.objective)
            for better in self._tabu_rounds(self.best, end - self.elapsed()):
                self.report(better.renamed("tabu"))
            seconds = min(ROUND_WINDOW_SECONDS, end - self.elapsed())
            if seconds < MIN_SOLVE_SECONDS:
                return
            sweep = (self.options, seconds, WINDOW_TASKS, WINDOW_SECONDS, cursor)
            steps = sweep_windows(self.best, scale, memory, *sweep)
            for step in steps:
                if step.schedule is not None:
                    self.report(step.schedule.renamed("window"))
                if step.interrupted:
                    raise KeyboardInterrupt
            found = objective_value(self.best, self.options.objective) < before
            idle = 0.0 if found else idle + seconds
            if idle >= len(window_bounds(self.best, WINDOW_TASKS)) * WINDOW_SECONDS:
                return

    def _tabu_from_starts(self, floor: Schedule, end: float) -> None:
        """The tabu search from each start of :meth:`_starts`, each within its share of the
        time before ``end``; what beats the best so far is kept (reported)."""
        starts = self._starts(floor)
        if len(starts) < 2:
            return  # the turns start from the one there is
        objective = self.options.objective
        for start in starts:
            most = min(self.share(START_SHARE), end - self.elapsed())
            if most < MIN_SOLVE_SECONDS or self.best is None or self._proven(self.best):
                return
            for better in self._tabu_rounds(start, most):
                if objective_value(better, objective) < objective_value(self.best, objective):
                    self.report(better.renamed("tabu"))

    def _starts(self, floor: Schedule) -> list[Schedule]:
        """``floor`` and the next best baselines with other orders, within
        :data:`START_MARGIN` of its value, at most :data:`STARTS` in all, as schedules of
        ``floor``'s problem (the one the improvers see)."""
        objective = self.options.objective
        reach = objective_value(floor, objective) * (1 + START_MARGIN)
        starts, seen = [floor], {_orders_key(floor)}
        for schedule in sorted(self.baselines, key=by_objective(objective)):
            if len(starts) >= STARTS or objective_value(schedule, objective) > reach:
                break
            key = _orders_key(schedule)
            if key in seen or schedule.problem is not floor.problem:
                continue  # the same orders, or a problem the improvers do not see
            seen.add(key)
            starts.append(schedule)
        return starts

    def _tabu_rounds(self, floor: Schedule, most: float = math.inf) -> Iterator[Schedule]:
        """The tabu search (either objective) with part of the time left, at most ``most``
        seconds: most of it on the large path and with ``overlap_times`` (it pairs and
        unpairs F and B), a smaller share on the direct path, whose hint it improves; yields
        each improvement (Ctrl-C propagates, and the caller keeps the best so far)."""
        pairs = self.problem.overlap is not None
        if pairs:
            fraction = PAIR_TABU_SHARE
        elif self.method == Method.LARGE:
            fraction = TABU_SHARE
        else:
            fraction = DIRECT_TABU_SHARE
        objective = self.options.objective
        share = min(most, self.share(fraction))
        patience = None if pairs else TABU_PATIENCE
        search = tabu_search(
            floor, self.caps, share, self.options.deterministic, patience, objective
        )
        for improved in search:
            yield improved
            if meets_bound(objective_value(improved, objective), self.bound):
                return

    def _window_rounds(self, floor: Schedule) -> Iterator[tuple[Schedule, bool]]:
        """Sweep exact window re-solves over the best schedule with part of the time left
        (:mod:`ppopt.solver.window`, either objective); yields each improvement and whether
        Ctrl-C came. For the direct model this only sharpens its hint, on problems larger than
        one window. Windows keep per-stage durations and memory: not for scaled micro-batches,
        and they move single tasks: not with ``overlap_times`` (pairs)."""
        if self.problem.is_scaled or self.problem.overlap is not None:
            return
        if self.method == Method.LARGE:
            fraction = WINDOW_SHARE
        elif self.problem.num_tasks > WINDOW_TASKS:
            fraction = DIRECT_WINDOW_SHARE
        else:
            return
        memory = memory_data(self.problem, self.caps)
        scale = time_scale(self.problem)
        share = self.share(fraction)
        steps = sweep_windows(
            floor, scale, memory, self.options, share, WINDOW_TASKS, WINDOW_SECONDS
        )
        for step in steps:
            if step.schedule is not None:
                floor = step.schedule
            yield floor, step.interrupted

    def _cp_sat(self, floor: Schedule | None, fixed: list[list[Task]] | None) -> SolveResult:
        """Build, hint and run the model; return the best of its solutions and the floor.

        CP-SAT's bound is used for both objectives, converted conservatively when the times
        did not scale exactly (:func:`bound_ratio`); it is a bound of the problem because the
        model is a relaxation of it (for ``span`` the model measures each device from its
        actual first start, see :mod:`ppopt.solver.model`); it is not used when memory amounts
        had to be rounded (the model is then stricter). With ``order: fixed`` it bounds
        the fixed order's problem, which is what that mode reports."""
        self._full_bound()  # every path to a result passes here or through _floor
        problem, options = self.problem, self.options
        left = options.time_limit - self.elapsed()
        if floor is not None and left < MIN_SOLVE_SECONDS and not options.deterministic:
            # no time left for CP-SAT: do not build a model it would not solve
            return self._result(floor, floor.name, False, self.valid_bound())
        scale = time_scale(problem)
        solver, model, budget = self._model(scale, floor, fixed)
        ratio = bound_ratio(problem, scale, memory_data(problem, self.caps))
        status, interrupted = cp_model.UNKNOWN, False
        if budget >= MIN_SOLVE_SECONDS or floor is None:
            callback = _Reporter(self, model, scale, ratio)
            status, interrupted = interruptible_solve(solver, model.model, callback)
        solved = status in (cp_model.OPTIMAL, cp_model.FEASIBLE)
        if solved:
            self.offer(self._read_back(model, solver))
            self.cp_bound = max(self.cp_bound, scale.to_float(solver.best_objective_bound) * ratio)
        best = self.best
        if best is None:
            name = solver.status_name(status)
            raise NoScheduleError(f"no schedule found within {options.time_limit:g} s ({name})")
        name = "1f1b-fixed" if fixed is not None else "optimal"
        return self._result(best, best.name, interrupted, self.valid_bound(), name)

    def offer(self, schedule: Schedule) -> bool:
        """Keep ``schedule`` if it is better than the best so far (a solver solution, timed
        by the engine); whether it was kept. A tie keeps the best so far: a published
        schedule of the floor (ZB-H1, ZB-V, ...) that the solver only matches stays the answer,
        so what runs is the order the runtimes and their users know, measured as such."""
        objective = self.options.objective
        if self.best is not None and objective_value(schedule, objective) >= objective_value(
            self.best, objective
        ):
            return False
        self.best = schedule
        return True

    def valid_bound(self) -> float:
        """The best lower bound known: ppopt's own, or CP-SAT's once it is stronger."""
        return max(self.bound, self.cp_bound)

    def say(self) -> None:
        """A progress line with the best value and bound so far, unless it says nothing new
        (so the last line always agrees with the result)."""
        if self.progress is None:
            return
        best = None if self.best is None else objective_value(self.best, self.options.objective)
        news = (best, self.valid_bound())
        if news != self.last_said:
            self.last_said = news
            self.progress(Progress(self.elapsed(), *news))

    def _read_back(
        self, model: PipelineModel, solver: cp_model.CpSolver | cp_model.CpSolverSolutionCallback
    ) -> Schedule:
        """The solution's orders timed in floats; with ``auto``, its choice of recomputed
        micro-batches without the recomputes memory does not need (never slower)."""
        problem, orders = self.problem, model.orders(solver)
        if isinstance(model, RecomputeModel):
            chosen = problem.with_recomputed(model.recomputed(solver))
            problem, orders = drop_needless_recomputes(chosen, orders, self.caps)
        if isinstance(model, OffloadModel) and problem.offload == Offload.AUTO:
            problem = problem.with_offloaded(model.offloaded(solver))
        return compute_timeline(problem, orders, "cp-sat", model.pairs(solver))

    def _model(
        self, scale: Scale, floor: Schedule | None, fixed: list[list[Task]] | None
    ) -> tuple[cp_model.CpSolver, PipelineModel, float]:
        """The hinted model, its solver with the method's parameters, and the time left."""
        problem, options = self.problem, self.options
        hint_orders = fixed if fixed is not None else (floor.orders() if floor else None)
        int_problem = integer_problem(problem, scale)  # with scaled micro-batches: its latencies
        if problem.is_scaled:
            hint, horizon, int_bound = self._scaled_limits(scale, floor, hint_orders, int_problem)
        else:
            hint_problem = integer_problem(floor.problem, scale) if floor else int_problem
            pairs = floor.pairs if floor is not None and fixed is None else ()
            hint = (
                compute_timeline(hint_problem, hint_orders, pairs=pairs)
                if hint_orders is not None
                else None
            )
            horizon = _horizon(int_problem, hint, options.objective)
            int_bound = lower_bound(int_problem, options.objective, self.caps)
        data = IntProblem(
            problem=problem,
            duration=task_durations(problem, scale),
            scaled=int_problem,
            horizon=horizon,
            lower_bound=min(math.floor(int_bound), horizon),
            objective=options.objective,
            memory=memory_data(problem, self.caps),
            pair_duration=_pair_durations(int_problem),
        )
        auto = problem.recompute == Recompute.AUTO
        kind = OffloadModel if problem.offloads else RecomputeModel if auto else PipelineModel
        model = kind(data, fixed_orders=fixed)
        if hint is not None:
            model.add_hint(hint)
        budget = (
            options.time_limit if options.deterministic else options.time_limit - self.elapsed()
        )
        solver = make_solver(options, time_limit=max(budget, MIN_SOLVE_SECONDS))
        if self.method == Method.LARGE:
            large_model_parameters(solver, options)
        else:
            direct_model_parameters(solver, options)
        return solver, model, budget

    def _scaled_limits(
        self,
        scale: Scale,
        floor: Schedule | None,
        orders: list[list[Task]] | None,
        links: Problem,
    ) -> tuple[Schedule | None, int, float]:
        """Hint (in integer units), horizon and integer lower bound of a problem with scaled
        micro-batches, whose integer durations are rounded per task (no integer
        :class:`Problem` has them). The hint's starts are its float times scaled (CP-SAT
        repairs the rounding); the horizon allows each task and edge of a path its rounding
        (at most 1 unit up); the bound is the float bound times :func:`rounding_floor`."""
        problem = self.problem
        hint = None
        durations = task_durations(problem, scale)
        hop = int(links.max_latency)
        horizon = sum(durations.values()) + 2 * problem.num_stages * hop * problem.num_microbatches
        if orders is not None:
            timed = compute_timeline(floor.problem if floor else problem, orders)
            rows = integer_timeline(problem, timed.device_ops, durations, links)
            if rows is not None:
                hint = Schedule(problem, timed.name, rows)
                if self.options.objective != Objective.SPAN:
                    horizon = math.ceil(hint.makespan)
        bound = lower_bound(problem, self.options.objective, self.caps)
        return hint, horizon, bound * scale.factor * rounding_floor(problem, scale)

    def _result(
        self,
        best: Schedule,
        source: str,
        interrupted: bool,
        bound: float,
        name: str = "optimal",
    ) -> SolveResult:
        """The result for ``best``. Proven only when the reported (tight) value meets the
        bound: with ``span`` the tight timeline of CP-SAT's orders can exceed the model's
        optimum (the model may delay a device's first task), so CP-SAT's OPTIMAL alone proves
        nothing about the value."""
        value = objective_value(best, self.options.objective)
        return SolveResult(
            schedule=Schedule(
                best.problem,
                name,
                best.device_ops,
                interrupted=interrupted,
                copy_ops=best.copy_ops,
                pairs=best.pairs,
            ),
            status=Status.OPTIMAL if meets_bound(value, bound) else Status.FEASIBLE,
            objective=self.options.objective,
            objective_value=value,
            lower_bound=bound,
            wall_time=self.elapsed(),
            source=source,
            bound_source="cp-sat" if bound > self.bound else "ppopt",
        )


def _pair_durations(int_problem: Problem) -> dict[tuple[int, int], int] | None:
    """Each (forward stage, backward stage) pair's duration in integer units, per device."""
    if int_problem.overlap is None:
        return None
    return {
        (a, b): round(int_problem.pair_duration(a, b))
        for d in range(int_problem.num_devices)
        for a in int_problem.stages_on(d)
        for b in int_problem.stages_on(d)
    }


def _orders_key(schedule: Schedule) -> tuple[tuple[Task, ...], ...]:
    """A schedule's device orders, to tell baselines with the same orders apart."""
    return tuple(tuple(order) for order in schedule.orders())


def _method(problem: Problem, options: SolverOptions) -> Method:
    """``direct`` or ``large``: the user's choice, or by task count for ``auto``. Scaled
    micro-batches above one window's size go ``large``: the direct path's window sweep does
    not run for them, and the tabu search's swaps reorder micro-batches of unequal length
    (benchmarks/README.md, varlen: 162.1 against direct's 166.1 at 2x, 20 s)."""
    if options.method != Method.AUTO:
        return options.method
    if problem.is_scaled and problem.num_tasks > WINDOW_TASKS:
        return Method.LARGE
    return Method.DIRECT if problem.num_tasks <= DIRECT_TASK_LIMIT else Method.LARGE


class _Reporter(cp_model.CpSolverSolutionCallback):
    """On each improving solution: CP-SAT's bound (converted to a bound of the problem) and,
    at most every :data:`RETIME_SECONDS` on large models, the solution's orders timed by the
    engine (kept when best); then a progress line in the user's units. The line shows only
    values the result can stand by: the engine's value of a kept schedule and a valid bound."""

    def __init__(self, run: _Run, model: PipelineModel, scale: Scale, ratio: float) -> None:
        super().__init__()
        self._run, self._model, self._scale, self._ratio = run, model, scale, ratio
        self._timed_at = -math.inf

    def on_solution_callback(self) -> None:
        run = self._run
        bound = self._scale.to_float(self.best_objective_bound) * self._ratio
        run.cp_bound = max(run.cp_bound, bound)
        now = time.perf_counter()
        if run.problem.num_tasks <= DIRECT_TASK_LIMIT or now - self._timed_at >= RETIME_SECONDS:
            self._timed_at = now
            run.offer(run._read_back(self._model, self))
        run.say()


def _horizon(int_problem: Problem, hint: Schedule | None, objective: str) -> int:
    """An upper limit on every end time that cuts off no optimal schedule."""
    sequential = (
        int_problem.total_work()
        + 2 * int_problem.num_stages * int_problem.max_latency * int_problem.num_microbatches
    )
    if hint is None:
        return math.ceil(sequential)
    if objective == Objective.SPAN:
        return math.ceil(sequential)  # any tight schedule ends by then: the bound stays valid
    return math.ceil(hint.makespan)
