"""Variable-length micro-batches (``microbatch_scale``) in the solver: the class-wise
symmetry break against the exhaustive search (which has none), a tiny case where the old
all-micro-batch break loses the optimum, bounds below the exhaustive optimum, and the
optimizer at or below every baseline in every micro-batch order."""

from __future__ import annotations

import itertools
import random

import pytest
from exhaustive import exhaustive_optimum
from hypothesis import given, settings
from hypothesis import strategies as st
from solver_helpers import TOL, options

from ppopt.baselines import applicable_baselines, baseline
from ppopt.errors import DeadlockError
from ppopt.problem import Problem
from ppopt.solver import solve
from ppopt.solver.bounds import lower_bound
from ppopt.timeline import compute_timeline
from ppopt.validate import assert_valid

#: Scales exact in binary, so the integer model is the float problem.
SCALES = [0.5, 1.0, 1.5, 2.0, 3.0]


def scaled_problem(seed: int) -> Problem:
    """A tiny reproducible problem with unequal micro-batches: p = 2, m = 2 or 3, random
    times, split or not, latency 0 or 0.5, no limit or 1x."""
    rng = random.Random(seed)
    m = rng.choice([2, 3])
    split = rng.random() < 0.4
    return Problem.create(
        2,
        m,
        forward=[rng.choice([1.0, 1.5, 2.0]) for _ in range(2)],
        backward=[rng.choice([1.0, 2.0, 3.0]) for _ in range(2)],
        weight=[1.0, 1.0] if split else None,
        p2p=rng.choice([0.0, 0.5]),
        microbatch_scale=[rng.choice(SCALES) for _ in range(m)],
        memory_limit=rng.choice(["none", "1x"]),
    )


SCALED_CASES = [problem for problem in map(scaled_problem, range(40)) if problem.is_scaled][:24]


def in_microbatch_order(orders: list[list]) -> bool:  # type: ignore[type-arg]
    """Whether every (kind, stage) runs its micro-batches in index order (the old break)."""
    for row in orders:
        last: dict[tuple[str, int], int] = {}
        for task in row:
            if last.get((task.kind, task.stage), -1) > task.microbatch:
                return False
            last[task.kind, task.stage] = task.microbatch
    return True


def best_in_microbatch_order(problem: Problem) -> float:
    """Brute force over every pair of device orders that keeps micro-batch order."""
    rows = [
        [t for t in problem.tasks() if problem.device_of(t.stage) == d]
        for d in range(problem.num_devices)
    ]
    best = float("inf")
    for orders in itertools.product(*(itertools.permutations(row) for row in rows)):
        if not in_microbatch_order([list(row) for row in orders]):
            continue
        try:
            best = min(best, compute_timeline(problem, orders).makespan)
        except DeadlockError:
            continue
    return best


def test_old_symmetry_break_loses_the_optimum() -> None:
    """p = 2, m = 2, F = 1, B = 2, micro-batch 0 three times as long: the exhaustive optimum
    (19) runs the short micro-batch first somewhere; keeping micro-batch order everywhere
    gets no better than 20. The solver, with the class-wise break, finds 19."""
    problem = Problem.create(
        2, 2, forward=1.0, backward=2.0, microbatch_scale=[3.0, 1.0], memory_limit="none"
    )
    found = exhaustive_optimum(problem)
    assert found.value == 19.0
    assert not in_microbatch_order(found.orders)
    assert best_in_microbatch_order(problem) == 20.0
    result = solve(problem, options(3.0))
    assert result.objective_value == 19.0


@pytest.mark.parametrize("problem", SCALED_CASES, ids=lambda p: str(p.microbatch_scale))
def test_solver_matches_exhaustive_on_scaled_cases(problem: Problem) -> None:
    """CP-SAT with the class-wise symmetry break reaches the exhaustive optimum (no break),
    and the ppopt bound stays below it."""
    caps = problem.memory_caps
    best = exhaustive_optimum(problem, caps).value
    result = solve(problem, options(5.0))
    assert abs(result.objective_value - best) <= TOL * best
    assert_valid(result.schedule, caps)
    assert lower_bound(problem, "makespan", caps) <= best * (1 + TOL)
    assert (
        lower_bound(problem, "span", caps) <= exhaustive_optimum(problem, caps, "span").value + TOL
    )


@st.composite
def scaled_problems(draw: st.DrawFn) -> Problem:
    """2-4 devices, 2-6 micro-batches of random scales, random times, split or not."""
    p = draw(st.integers(2, 4))
    m = draw(st.integers(2, 6))
    times = st.sampled_from([1.0, 1.5, 2.0])
    split = draw(st.booleans())
    return Problem.create(
        p,
        m,
        forward=draw(st.lists(times, min_size=p, max_size=p)),
        backward=draw(st.lists(times, min_size=p, max_size=p)),
        weight=draw(st.lists(times, min_size=p, max_size=p)) if split else None,
        p2p=draw(st.sampled_from([0.0, 0.5])),
        microbatch_scale=draw(st.lists(st.sampled_from(SCALES), min_size=m, max_size=m)),
        memory_limit="none",
    )


@settings(max_examples=12, deadline=None)
@given(scaled_problems())
def test_optimizer_at_most_every_baseline_order_and_bound_below(problem: Problem) -> None:
    """Every baseline in every micro-batch order is a valid schedule; the optimizer is at or
    below each and the bound at or below the optimizer."""
    schedules = applicable_baselines(problem)
    assert any("@longest-first" in name for name in schedules) == problem.is_scaled
    for schedule in schedules.values():
        assert_valid(schedule, None)
    result = solve(problem, options(1.0))
    assert_valid(result.schedule, None)
    for name, schedule in schedules.items():
        assert result.objective_value <= schedule.makespan * (1 + TOL), name
    assert result.lower_bound <= result.objective_value * (1 + TOL)


@pytest.mark.parametrize(("p", "m", "c"), [(2, 3, 2.0), (4, 5, 3.0), (3, 2, 1.5)])
@pytest.mark.parametrize("order", ["given", "shortest-first"])
def test_gpipe_closed_form_with_one_long_microbatch(p: int, m: int, c: float, order: str) -> None:
    """GPipe, F = B = 1 per stage, micro-batch 0 ``c >= 1`` times as long, the rest 1.

    Given order (long first): F(d, i) ends at ``(d+1)c + i`` (the long one delays each
    stage by c, the unit ones follow one per step), so the last device's forwards end at
    ``pc + m - 1``; its backwards then run 0..m-1 and each device's B(d, i) waits for
    B(d+1, i): B(d, m-1) ends at ``pc + (p-d)c + 2(m-1)``, so device 0 ends at
    ``2pc + 2(m-1)``. Shortest-first (long last): the forwards end at ``m-1 + pc`` on the
    last device, the backward of the long one goes last everywhere and B(d, m-1) waits c on
    each of the p devices after the last unit backward of the last device, which again
    gives ``2pc + 2(m-1)`` (c = 1: GPipe's ``2(m+p-1)``)."""
    problem = Problem.create(
        p, m, forward=1.0, backward=1.0, microbatch_scale=[c] + [1.0] * (m - 1)
    )
    schedule = baseline("gpipe" if order == "given" else f"gpipe@{order}", problem)
    assert_valid(schedule, None)
    assert schedule.makespan == pytest.approx(2 * p * c + 2 * (m - 1))
