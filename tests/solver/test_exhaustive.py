"""The exhaustive search written here (``exhaustive.py``), pinned down before the solver is
compared with it: it counts every tight schedule once, matches closed forms, and its optimum
re-times to the same value through the engine and passes the validator."""

from __future__ import annotations

import itertools

import pytest
from exhaustive import exhaustive_optimum
from solver_helpers import CASES, TOL, describe

from ppopt.baselines import applicable_baselines
from ppopt.errors import DeadlockError
from ppopt.metrics import peak_memory
from ppopt.problem import Problem
from ppopt.timeline import compute_timeline
from ppopt.validate import assert_valid


def _runnable_order_sets(problem: Problem, limit: tuple[float, ...] | None) -> int:
    """Brute force: how many combinations of per-device orders run (no deadlock) and fit the
    limit. Each is one distinct tight schedule."""
    per_device = [
        [task for task in problem.tasks() if problem.device_of(task.stage) == d]
        for d in range(problem.num_devices)
    ]
    count = 0
    for orders in itertools.product(*(itertools.permutations(row) for row in per_device)):
        try:
            schedule = compute_timeline(problem, orders)
        except DeadlockError:
            continue
        peaks = peak_memory(schedule)
        if limit is None or all(pk <= cap + TOL for pk, cap in zip(peaks, limit, strict=True)):
            count += 1
    return count


@pytest.mark.parametrize(
    ("problem", "limit"),
    [
        (Problem.create(2, 2, forward=[1.0, 1.5], backward=[2.0, 1.0], p2p=0.5), None),
        (Problem.create(2, 2, forward=[1.0, 1.5], backward=[2.0, 1.0]), (1.0, 1.0)),
        (Problem.create(1, 2, forward=1.0, backward=1.0, weight=1.0, retained=0.5), None),
        (Problem.create(1, 2, forward=1.0, backward=1.0, weight=1.0, retained=0.5), (1.5,)),
        (Problem.create(3, 2, forward=[1.0, 2.0, 1.5], backward=2.0, p2p=0.5), None),
        (Problem.create(2, 1, forward=1.0, backward=1.0, num_chunks=2, placement="vshape"), None),
    ],
)
def test_search_reaches_every_tight_schedule_once(
    problem: Problem, limit: tuple[float, ...] | None
) -> None:
    """Without pruning the search's leaves are exactly the runnable order combinations under
    the limit (a brute force over all per-device permutations): none missed, none twice."""
    result = exhaustive_optimum(problem, limit, prune=False)
    assert result.leaves == _runnable_order_sets(problem, limit)


@pytest.mark.parametrize(("p", "m"), [(1, 3), (2, 3), (3, 3), (3, 4), (2, 4)])
def test_search_closed_forms(p: int, m: int) -> None:
    """Equal stages, no latency, unsplit: (m+p-1)(f+b) (the last device waits (p-1)f, works
    m(f+b), then (p-1)b of backward follows). One device: all the work, never idle. A limit of
    one micro-batch per device: micro-batches run one after another, m times the critical
    path."""
    equal = Problem.create(p, m, forward=1.0, backward=2.0)
    assert exhaustive_optimum(equal).value == (m + p - 1) * 3.0
    one = Problem.create(1, m, forward=1.5, backward=2.5, weight=1.0, retained=0.5)
    assert exhaustive_optimum(one).value == m * 5.0
    forward, backward = [1.0, 2.5, 1.5][:p], [2.0, 1.0, 3.0][:p]
    serial = Problem.create(p, m, forward=forward, backward=backward, p2p=0.5)
    path = sum(forward) + sum(backward) + 2 * (p - 1) * 0.5
    assert exhaustive_optimum(serial, (1.0,) * p).value == m * path


@pytest.mark.parametrize("problem", CASES[:12], ids=describe)
def test_search_optimum_is_a_valid_schedule(problem: Problem) -> None:
    """The search's orders, timed by the engine, give its value, pass the independent
    validator under the limit, and beat no baseline that fits the limit by accident (the
    optimum is at most every fitting baseline)."""
    limit = problem.memory_caps
    result = exhaustive_optimum(problem, limit)
    schedule = compute_timeline(problem, result.orders, "exhaustive")
    assert schedule.makespan == result.value
    assert_valid(schedule, limit=limit, tight=True)
    for name, other in applicable_baselines(problem).items():
        fits = limit is None or all(
            pk <= cap + TOL for pk, cap in zip(peak_memory(other), limit, strict=True)
        )
        if fits:
            assert result.value <= other.makespan + TOL, name
