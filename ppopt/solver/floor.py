"""The floor of every solve: the best baseline schedule that fits the memory limit.

The optimizer's result is never worse than its floor, and the floor's first schedule is there
within about a second at any size (a valid answer even if the time limit is tiny).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from ppopt.baselines import BASELINES, baseline, ordered_names
from ppopt.baselines.greedy import applicable_preferences, greedy_orders
from ppopt.baselines.offload import offload_to_fit
from ppopt.baselines.onefoneb import one_f_one_b_orders
from ppopt.baselines.recompute import (
    drop_needless_recomputes,
    insert_recomputes,
    recompute_to_fit,
)
from ppopt.errors import NoScheduleError, NotApplicableError
from ppopt.limits import fits
from ppopt.metrics import device_spans, peak_memory
from ppopt.offload import Offload
from ppopt.problem import Problem
from ppopt.recompute import Recompute
from ppopt.schedule import Schedule
from ppopt.solver.options import Objective
from ppopt.tasks import Task
from ppopt.timeline import compute_timeline

Caps = tuple[float, ...] | None


def objective_value(schedule: Schedule, objective: str) -> float:
    """The schedule's makespan or largest per-device span: the values of
    :func:`~ppopt.metrics.compute_metrics`, without the rest of the metrics (its peak memory
    alone costs about 0.1 s at 49k tasks, and the solver values every schedule it keeps)."""
    if objective == Objective.SPAN:
        return max(device_spans(schedule))
    return schedule.makespan


def by_objective(objective: str) -> Callable[[Schedule], float]:
    """A sort key: a schedule's value of the objective."""
    return lambda schedule: objective_value(schedule, objective)


def schedule_fits(schedule: Schedule, caps: Caps) -> bool:
    """Whether a schedule's peak memory stays within the limit on every device."""
    return caps is None or fits(peak_memory(schedule), caps)


def floor_stages(problem: Problem, caps: Caps) -> Iterator[list[Schedule]]:
    """Baseline schedules that fit the memory limit, in small batches, cheapest first, so a
    valid schedule is there within about a second at any size: each static baseline, 1F1B
    capped in flight (which fits any limit that holds one micro-batch), then each greedy
    variant (the first of them early when nothing has fitted yet)."""
    found = False
    if problem.offloads:
        offloading = _offloading_baselines(problem, caps)
        found = bool(offloading)
        yield offloading
        if problem.offload == Offload.ALL:
            return  # the orders below have no copies
    for name in ordered_names(problem, BASELINES):
        if name == "greedy":
            continue  # its variants come below (in the given order; the others here)
        try:
            schedule = baseline(name, problem)
        except NotApplicableError:
            continue
        if schedule_fits(schedule, caps):
            found = True
            yield [schedule]
        elif problem.recompute == Recompute.AUTO and caps is not None:
            fitted = _made_to_fit(schedule, caps, recompute_to_fit, "recompute")
            fitted += _all_recomputed(name, problem, caps)
            found = found or bool(fitted)
            yield fitted
        elif problem.offload == Offload.AUTO and caps is not None:
            fitted = _made_to_fit(schedule, caps, offload_to_fit, "offload-to-fit")
            found = found or bool(fitted)
            yield fitted
    if problem.num_chunks == 1 and caps is not None:
        capped = _capped_one_f_one_b(problem, caps)
        found = found or bool(capped)
        yield capped
    preferences = applicable_preferences(problem)
    if not found:
        first = preferences.pop(0)
        yield _fitting_greedy(problem, caps, first)
    for prefer in preferences:
        yield _fitting_greedy(problem, caps, prefer)


def floor_candidates(problem: Problem, caps: Caps) -> list[Schedule]:
    """Every schedule :func:`floor_stages` offers."""
    return [schedule for stage in floor_stages(problem, caps) for schedule in stage]


def best_floor(problem: Problem, caps: Caps, objective: str) -> Schedule | None:
    """The best baseline under the limit, by the chosen objective."""
    candidates = floor_candidates(problem, caps)
    return min(candidates, key=by_objective(objective)) if candidates else None


def _fitting_greedy(problem: Problem, caps: Caps, prefer: str) -> list[Schedule]:
    """One greedy variant's schedule, if it fits the limit (the list scheduler does not
    recompute: on a problem that does, its order gets each R right before its B)."""
    try:
        orders = greedy_orders(problem.without_recompute().without_offload(), caps, prefer)
    except NoScheduleError:
        return []  # one micro-batch fits only with recomputation
    schedule = compute_timeline(problem, insert_recomputes(problem, orders), f"greedy-{prefer}")
    return [schedule] if schedule_fits(schedule, caps) else []


def _offloading_baselines(problem: Problem, caps: Caps) -> list[Schedule]:
    """Each baseline with every micro-batch offloaded (``offload: all`` copies, or the same
    as an ``auto`` choice), if it fits the limit."""
    every = [(s, i) for s in range(problem.num_stages) for i in range(problem.num_microbatches)]
    full = problem if problem.offload == Offload.ALL else problem.with_offloaded(every)
    out = []
    for name in BASELINES:
        try:
            schedule = baseline(name, full)
        except (NotApplicableError, NoScheduleError):
            continue
        if schedule_fits(schedule, caps):
            out.append(schedule.renamed(f"{name}-offload"))
    return out


#: A greedy choice that makes compute orders fit a limit: (problem, orders, caps) ->
#: (the problem with its choice, the orders with the chosen tasks merged in), or None.
FitChoice = Callable[
    [Problem, Sequence[Sequence[Task]], Sequence[float]], tuple[Problem, list[list[Task]]] | None
]


def _made_to_fit(
    schedule: Schedule, caps: tuple[float, ...], fit: FitChoice, suffix: str
) -> list[Schedule]:
    """An ``auto`` problem's baseline that exceeds the limit, with the micro-batches ``fit``
    (:func:`recompute_to_fit`, :func:`offload_to_fit`) chooses, if the choice makes it fit."""
    fitted = fit(schedule.problem, schedule.orders(), caps)
    if fitted is None:
        return []
    problem, orders = fitted
    timed = compute_timeline(problem, orders, f"{schedule.name}-{suffix}")
    return [timed] if schedule_fits(timed, caps) else []


def _all_recomputed(name: str, problem: Problem, caps: tuple[float, ...]) -> list[Schedule]:
    """An ``auto`` problem's baseline with every micro-batch recomputed (R right before each
    B), less the recomputes memory does not need, if it fits."""
    every = [(s, i) for s in range(problem.num_stages) for i in range(problem.num_microbatches)]
    full = baseline(name, problem.with_recomputed(every))
    if not schedule_fits(full, caps):
        return []
    kept, orders = drop_needless_recomputes(full.problem, full.orders(), caps)
    return [compute_timeline(kept, orders, f"{name}-recompute")]


def _capped_one_f_one_b(problem: Problem, caps: tuple[float, ...]) -> list[Schedule]:
    """1F1B with the warm-up cut so few enough micro-batches are in flight to fit the limit."""
    fit = (
        min(
            int(caps[problem.device_of(s)] / problem.activation[s] + 1e-9)
            for s in range(problem.num_stages)
            if problem.activation[s] > 0
        )
        if any(a > 0 for a in problem.activation)
        else problem.num_stages
    )
    for cap in range(min(max(fit, 1), problem.num_stages), 0, -1):
        orders = insert_recomputes(problem, one_f_one_b_orders(problem, max_in_flight=cap))
        schedule = compute_timeline(problem, orders, f"1f1b-cap{cap}")
        if schedule_fits(schedule, caps):
            return [schedule]
    return []
