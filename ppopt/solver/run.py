"""One optimizer run: floor from the baselines, build the model, hint, solve, read back.

The result is never worse than the best baseline that fits the same memory limit (the
*floor*), and its times are always the float timeline of the chosen orders.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

from ortools.sat.python import cp_model

from ppopt.baselines import BASELINES, baseline
from ppopt.baselines.greedy import MEMORY_TOLERANCE, applicable_preferences, greedy_orders
from ppopt.baselines.onefoneb import one_f_one_b_orders
from ppopt.metrics import compute_metrics, peak_memory, resolve_limit
from ppopt.problem import Problem, ProblemError, Task
from ppopt.schedule import Schedule
from ppopt.solver.bounds import lower_bound
from ppopt.solver.front import (
    NoScheduleError,
    Progress,
    ProgressCallback,
    SolveResult,
    SolverOptions,
    check_one_microbatch_fits,
)
from ppopt.solver.local import tabu_search
from ppopt.solver.model import IntProblem, PipelineModel
from ppopt.solver.params import interruptible_solve, make_solver
from ppopt.solver.scaling import Scale, memory_scale, scaled_durations, time_scale
from ppopt.solver.window import Memory, sweep_windows
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
#: ``method: auto`` uses the direct model (full presolve) up to this many tasks.
DIRECT_TASK_LIMIT = 1500


def _large_model_parameters(solver: cp_model.CpSolver, options: SolverOptions) -> None:
    """Past a few thousand tasks CP-SAT's presolve and its full-model worker can run far past
    the time limit (measured: 39 s of a 12 s limit at 6k intervals, without checking the clock);
    large neighbourhood search alone starts from the heuristic hint and respects the limit."""
    if "cp_model_presolve" not in options.params:
        solver.parameters.cp_model_presolve = False
    if "use_lns_only" not in options.params:
        solver.parameters.use_lns_only = True
    if options.num_workers == 1:
        # One worker means no LNS: the single full-model worker runs, and its root probing and
        # first LP solve ignore the clock and Ctrl-C (measured at p=16, m=64 split, 1 worker:
        # 10.4 s for a 3 s limit, 7 s from stop_search to return; 3.1 s without them).
        if "linearization_level" not in options.params:
            solver.parameters.linearization_level = 0
        if "cp_model_probing_level" not in options.params:
            solver.parameters.cp_model_probing_level = 0


def _direct_model_parameters(solver: cp_model.CpSolver, options: SolverOptions) -> None:
    """Give one of the workers to CP-SAT's lower-bound tree search, which is what proves
    optimality on the direct model. Measured on p=8 m=16 split (384 tasks), 2 workers, 60 s:
    the default portfolio (``default_lp`` + LNS) left a 0.21 % gap; ``quick_restart`` +
    ``lb_tree_search`` proved it in 9.8, 11.0 and 16.3 s (three runs); ``default_lp`` +
    ``lb_tree_search`` in 7.5 to 48 s in four runs, and once not within 60 s. With more
    workers the tree search joins CP-SAT's own portfolio; one worker keeps CP-SAT's default."""
    if "subsolvers" in options.params or "extra_subsolvers" in options.params:
        return
    workers = options.num_workers
    if workers == 2:
        solver.parameters.subsolvers.extend(["quick_restart", "lb_tree_search"])
    elif workers > 2:
        solver.parameters.extra_subsolvers.append("lb_tree_search")


def _method(problem: Problem, options: SolverOptions) -> str:
    """``direct`` or ``large``: the user's choice, or by task count for ``auto``."""
    if options.method != "auto":
        return options.method
    return "direct" if problem.num_tasks <= DIRECT_TASK_LIMIT else "large"


def run_solver(
    problem: Problem, options: SolverOptions, progress: ProgressCallback | None
) -> SolveResult:
    """Solve one problem (see :func:`ppopt.solver.solve`)."""
    started = time.perf_counter()
    limit = resolve_limit(problem)
    check_one_microbatch_fits(problem, limit)
    if options.order == "fixed":
        if problem.num_chunks != 1:
            raise ProblemError("solver.order: fixed needs num_chunks = 1 (the 1F1B order)")
        fixed = one_f_one_b_orders(problem)
        return _solve(problem, options, progress, limit, None, fixed, started)
    floor = None
    bound = lower_bound(problem, options.objective, limit)

    def report(schedule: Schedule) -> None:
        """The progress callback's line for a new best schedule."""
        if progress is not None:
            value = objective_value(schedule, options.objective)
            progress(Progress(time.perf_counter() - started, value, bound))

    try:
        for candidates in floor_stages(problem, limit):
            pool = [*candidates, *([floor] if floor is not None else [])]
            if not pool:
                continue
            floor = min(pool, key=_key(options.objective))
            report(floor)
        if floor is not None and objective_value(floor, options.objective) > bound * (1 + 1e-12):
            for better in _tabu_rounds(problem, options, limit, floor, bound, started):
                floor = better
                report(floor)
            rounds = _window_rounds(problem, options, limit, floor, started)
            for improved, interrupted in rounds:
                floor = improved
                report(floor)
                if interrupted:
                    raise KeyboardInterrupt
        return _solve(problem, options, progress, limit, floor, None, started)
    except KeyboardInterrupt:  # outside CP-SAT (heuristics, model build): keep what we have
        if floor is None:
            raise
        return _interrupted_floor(problem, options, floor, bound, started)


def _tabu_rounds(
    problem: Problem,
    options: SolverOptions,
    limit: tuple[float, ...] | None,
    floor: Schedule,
    bound: float,
    started: float,
) -> Iterator[Schedule]:
    """The large path's tabu search on the best schedule with part of the time left; yields
    each improvement (Ctrl-C propagates, and the caller keeps the best so far)."""
    if options.objective != "makespan" or _method(problem, options) != "large":
        return
    left = options.time_limit - (time.perf_counter() - started)
    share = TABU_SHARE * (options.time_limit if options.deterministic else left)
    search = tabu_search(floor, limit, share, options.deterministic, TABU_PATIENCE)
    for improved in search:
        yield improved
        if improved.makespan <= bound * (1 + 1e-12):
            return


def _window_rounds(
    problem: Problem,
    options: SolverOptions,
    limit: tuple[float, ...] | None,
    floor: Schedule,
    started: float,
) -> Iterator[tuple[Schedule, bool]]:
    """Sweep exact window re-solves over the best schedule with part of the time left
    (:mod:`ppopt.solver.window`); yields each improvement and whether Ctrl-C came. For the
    direct model this only sharpens its hint, on problems larger than one window."""
    if options.objective != "makespan":
        return
    if _method(problem, options) == "large":
        fraction = WINDOW_SHARE
    elif problem.num_tasks > WINDOW_TASKS:
        fraction = DIRECT_WINDOW_SHARE
    else:
        return
    left = options.time_limit - (time.perf_counter() - started)
    share = fraction * (options.time_limit if options.deterministic else left)
    memory = _memory_data(problem, limit)
    steps = sweep_windows(
        floor, time_scale(problem), memory, options, share, WINDOW_TASKS, WINDOW_SECONDS
    )
    for step in steps:
        if step.schedule is not None:
            floor = step.schedule
        yield floor, step.interrupted


def _interrupted_floor(
    problem: Problem, options: SolverOptions, floor: Schedule, bound: float, started: float
) -> SolveResult:
    """The best heuristic schedule so far as the result of a solve stopped by Ctrl-C before
    CP-SAT answered (CP-SAT's own search handles Ctrl-C in :func:`interruptible_solve`)."""
    value = objective_value(floor, options.objective)
    return SolveResult(
        schedule=Schedule(problem, "optimal", floor.device_ops, interrupted=True),
        status="OPTIMAL" if value <= bound * (1 + 1e-12) else "FEASIBLE",
        objective=options.objective,
        objective_value=value,
        lower_bound=bound,
        wall_time=time.perf_counter() - started,
        source=floor.name,
        interrupted=True,
    )


def _key(objective: str) -> Callable[[Schedule], float]:
    return lambda schedule: objective_value(schedule, objective)


def fits(schedule: Schedule, limit: tuple[float, ...] | None) -> bool:
    """Whether a schedule's peak memory stays within the limit on every device."""
    if limit is None:
        return True
    peaks = peak_memory(schedule)
    return all(peak <= cap * (1 + MEMORY_TOLERANCE) for peak, cap in zip(peaks, limit, strict=True))


def objective_value(schedule: Schedule, objective: str) -> float:
    """The schedule's makespan or largest per-device span."""
    metrics = compute_metrics(schedule)
    return metrics.span if objective == "span" else metrics.makespan


def floor_stages(problem: Problem, limit: tuple[float, ...] | None) -> Iterator[list[Schedule]]:
    """Baseline schedules that fit the memory limit, in small batches, cheapest first, so a
    valid schedule is there within about a second at any size: each static baseline, 1F1B
    capped in flight (which fits any limit that holds one micro-batch), then each greedy
    variant (the first of them early when nothing has fitted yet)."""
    found = False
    for name in BASELINES:
        if name == "greedy":
            continue  # its variants come below
        try:
            schedule = baseline(name, problem)
        except ProblemError:
            continue
        if fits(schedule, limit):
            found = True
            yield [schedule]
    if problem.num_chunks == 1 and limit is not None:
        capped = _capped_one_f_one_b(problem, limit)
        found = found or bool(capped)
        yield capped
    preferences = applicable_preferences(problem)
    if not found:
        first = preferences.pop(0)
        yield _fitting_greedy(problem, limit, first)
    for prefer in preferences:
        yield _fitting_greedy(problem, limit, prefer)


def _fitting_greedy(
    problem: Problem, limit: tuple[float, ...] | None, prefer: str
) -> list[Schedule]:
    """One greedy variant's schedule, if it fits the limit."""
    orders = greedy_orders(problem, limit, prefer)
    schedule = compute_timeline(problem, orders, f"greedy-{prefer}")
    return [schedule] if fits(schedule, limit) else []


def _capped_one_f_one_b(problem: Problem, limit: tuple[float, ...]) -> list[Schedule]:
    """1F1B with the warm-up cut so few enough micro-batches are in flight to fit the limit."""
    fit = (
        min(
            int(limit[problem.device_of(s)] / problem.activation[s] + 1e-9)
            for s in range(problem.num_stages)
            if problem.activation[s] > 0
        )
        if any(a > 0 for a in problem.activation)
        else problem.num_stages
    )
    for cap in range(min(max(fit, 1), problem.num_stages), 0, -1):
        orders = one_f_one_b_orders(problem, max_in_flight=cap)
        schedule = compute_timeline(problem, orders, f"1f1b-cap{cap}")
        if fits(schedule, limit):
            return [schedule]
    return []


def floor_candidates(problem: Problem, limit: tuple[float, ...] | None) -> list[Schedule]:
    """Every schedule :func:`floor_stages` offers."""
    return [schedule for stage in floor_stages(problem, limit) for schedule in stage]


def best_floor(
    problem: Problem, limit: tuple[float, ...] | None, objective: str
) -> Schedule | None:
    """The best baseline under the limit, by the chosen objective."""
    candidates = floor_candidates(problem, limit)
    return min(candidates, key=_key(objective)) if candidates else None


def integer_problem(problem: Problem, scale: Scale) -> Problem:
    """The problem with every time in the solver's integer units (as floats)."""
    durations = scaled_durations(problem, scale)

    def column(kind: str) -> tuple[float, ...]:
        return tuple(float(durations[(kind, s)]) for s in range(problem.num_stages))

    return replace(
        problem,
        forward=column("F"),
        backward=column("B"),
        weight=column("W") if problem.is_split else None,
        p2p=float(scale.to_int(problem.p2p)),
    )


def _memory_data(problem: Problem, limit: tuple[float, ...] | None) -> Memory | None:
    """Integer activation, retained and capacity (``None`` without a limit), rounded so the
    model never exceeds the true limit (demands up, capacity down) when the scaling is not
    exact."""
    if limit is None:
        return None
    freed = [a - r for a, r in zip(problem.activation, problem.retained, strict=True)]
    scale = memory_scale([*problem.activation, *problem.retained, *freed, *limit])
    up = (
        (lambda x: round(x * scale.factor))
        if scale.exact
        else (lambda x: math.ceil(x * scale.factor))
    )
    retained = tuple(up(r) for r in problem.retained)
    activation = tuple(up(f) + r for f, r in zip(freed, retained, strict=True))
    if scale.exact:
        capacity = tuple(round(c * scale.factor) for c in limit)
    else:
        capacity = tuple(math.floor(c * scale.factor) for c in limit)
    return activation, retained, capacity


class _Reporter(cp_model.CpSolverSolutionCallback):
    """Forwards each improving solution to the progress callback, in the user's units."""

    def __init__(self, progress: ProgressCallback, scale: Scale, started: float) -> None:
        super().__init__()
        self._progress, self._scale, self._started = progress, scale, started

    def on_solution_callback(self) -> None:
        self._progress(
            Progress(
                elapsed=time.perf_counter() - self._started,
                best=self._scale.to_float(self.objective_value),
                bound=self._scale.to_float(self.best_objective_bound),
            )
        )


def _solve(
    problem: Problem,
    options: SolverOptions,
    progress: ProgressCallback | None,
    limit: tuple[float, ...] | None,
    floor: Schedule | None,
    fixed: list[list[Task]] | None,
    started: float,
) -> SolveResult:
    """Build, hint and run the model; return the better of its answer and the floor."""
    objective = options.objective
    scale = time_scale(problem)
    int_problem = integer_problem(problem, scale)
    hint_orders = fixed if fixed is not None else (floor.orders() if floor is not None else None)
    hint = compute_timeline(int_problem, hint_orders) if hint_orders is not None else None
    horizon = _horizon(int_problem, hint, objective)
    own_bound = lower_bound(problem, objective, limit)
    memory = _memory_data(problem, limit)
    activation, retained, capacity = memory if memory is not None else (None, None, None)
    data = IntProblem(
        problem=problem,
        duration=scaled_durations(problem, scale),
        p2p=scale.to_int(problem.p2p),
        horizon=horizon,
        lower_bound=min(math.floor(lower_bound(int_problem, objective, limit)), horizon),
        objective=objective,
        activation=activation,
        retained=retained,
        capacity=capacity,
    )
    model = PipelineModel(data, fixed_orders=fixed)
    if hint is not None:
        model.add_hint(hint)
    remaining = options.time_limit - (time.perf_counter() - started)
    budget = options.time_limit if options.deterministic else remaining
    solver = make_solver(options, time_limit=max(budget, MIN_SOLVE_SECONDS))
    if _method(problem, options) == "large":
        _large_model_parameters(solver, options)
    else:
        _direct_model_parameters(solver, options)
    status, interrupted = cp_model.UNKNOWN, False
    if budget >= MIN_SOLVE_SECONDS or floor is None:
        callback = _Reporter(progress, scale, started) if progress else None
        status, interrupted = interruptible_solve(solver, model.model, callback)
    status_name = solver.status_name(status)

    best, source = floor, floor.name if floor is not None else "none"
    if status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        found = compute_timeline(problem, model.orders(solver), "optimal")
        if best is None or objective_value(found, objective) <= objective_value(best, objective):
            best, source = found, "cp-sat"
    if best is None:
        raise NoScheduleError(f"no schedule found within {options.time_limit:g} s ({status_name})")

    value = objective_value(best, objective)
    bound = own_bound
    if scale.exact and objective == "makespan" and status in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        # For ``span`` the model pins each device's first task (see
        # PipelineModel._first_tasks_start_early), so its bound is not a bound of the problem.
        bound = max(bound, scale.to_float(solver.best_objective_bound))
    # Proven only when the reported (tight) value meets the bound: with ``span`` the tight
    # timeline of CP-SAT's orders can exceed the model's optimum (the model may delay a
    # device's first task), so CP-SAT's OPTIMAL alone proves nothing about ``value``.
    proven = value <= bound * (1 + 1e-12)
    word = "OPTIMAL" if proven else "FEASIBLE"
    name = "1f1b-fixed" if fixed is not None else "optimal"
    schedule = Schedule(problem, name, best.device_ops, interrupted=interrupted)
    return SolveResult(
        schedule=schedule,
        status=word,
        objective=objective,
        objective_value=value,
        lower_bound=bound,
        wall_time=time.perf_counter() - started,
        source=source,
        interrupted=interrupted,
    )


def _horizon(int_problem: Problem, hint: Schedule | None, objective: str) -> int:
    """An upper limit on every end time that cuts off no optimal schedule."""
    sequential = (
        int_problem.total_work()
        + 2 * int_problem.num_stages * int_problem.p2p * int_problem.num_microbatches
    )
    if hint is None:
        return math.ceil(sequential)
    if objective == "span":
        return math.ceil(min(sequential, 2 * hint.makespan))
    return math.ceil(hint.makespan)
