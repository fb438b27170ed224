"""Lower bounds (ppopt/solver/bounds.py): no schedule beats them.

On random problems (hypothesis, 600 derandomised examples, more with ``PPOPT_PROPERTY_SCALE``)
every applicable baseline is valid and tight and none is below either bound (the bound under
the limit for baselines that fit it); on the seeded small problems the bound is at most the
exhaustive optimum, and equal to it on equal stages, where it proves 1F1B optimal; the chunked
tail idle by hand."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from solver_helpers import (
    CASES,
    CHUNK_CASES,
    OPTIONS,
    SCALE,
    TOL,
    at_most,
    describe,
    limited_problems,
    optimum,
    paired_optimum,
)

from ppopt.baselines import applicable_baselines, baseline
from ppopt.metrics import peak_memory
from ppopt.problem import Problem
from ppopt.solver import solve
from ppopt.solver.bounds import (
    chunked_head_idle,
    chunked_tail_idle,
    device_bound,
    lower_bound,
    makespan_lower_bound,
    unavoidable_idle,
)
from ppopt.solver.floor import objective_value, schedule_fits
from ppopt.validate import assert_valid, memory_peaks

OBJECTIVES = ("makespan", "span")


BASELINE_EXAMPLES = 600 * SCALE


@settings(max_examples=BASELINE_EXAMPLES, deadline=None, derandomize=True)
@given(limited_problems())
def test_every_baseline_is_valid_tight_and_above_the_bounds(problem: Problem) -> None:
    """Baselines pass the validator (tight); the two peak computations agree; no baseline that
    fits the limit beats either lower bound."""
    limit = problem.memory_caps
    schedules = applicable_baselines(problem)
    assert "1f1b" in schedules or problem.num_chunks > 1  # 1F1B applies to every v=1 problem
    bounds = {objective: lower_bound(problem, objective, limit) for objective in OBJECTIVES}
    free = {objective: lower_bound(problem, objective, None) for objective in OBJECTIVES}
    for name, schedule in schedules.items():
        assert_valid(schedule, None, tight=True)
        assert memory_peaks(schedule) == peak_memory(schedule), name
        for objective in OBJECTIVES:
            value = objective_value(schedule, objective)
            assert at_most(free[objective], value), (name, objective, free[objective], value)
            if schedule_fits(schedule, limit):
                assert at_most(bounds[objective], value), (name, objective, bounds, value)


# -------------------------------------------------------------- against the exhaustive search


@pytest.mark.parametrize("problem", CASES + CHUNK_CASES, ids=describe)
def test_lower_bound_never_above_exhaustive_optimum(problem: Problem) -> None:
    limit = problem.memory_caps
    assert lower_bound(problem, "makespan", limit) <= optimum(problem) + TOL
    assert lower_bound(problem, "makespan", None) <= optimum(problem) + TOL


@pytest.mark.parametrize(("p", "m"), [(2, 2), (2, 4), (3, 3), (3, 4)])
@pytest.mark.parametrize("limit", ["none", "1x"])
def test_lower_bound_is_the_exhaustive_optimum_for_equal_stages(p: int, m: int, limit: str) -> None:
    """Equal stages, unsplit, no latency: bound = (m+p-1)(f+b) = the exhaustive optimum."""
    problem = Problem.create(p, m, forward=1.5, backward=2.5, memory_limit=limit)
    assert optimum(problem) == (m + p - 1) * 4.0
    assert makespan_lower_bound(problem, problem.memory_caps) == optimum(problem)


@pytest.mark.parametrize(("p", "m"), [(4, 4), (4, 8), (8, 8), (8, 32), (16, 20)])
@pytest.mark.parametrize("limit", ["none", "1x"])
def test_lower_bound_proves_1f1b_optimal_for_equal_stages(p: int, m: int, limit: str) -> None:
    """Equal stages, unsplit, no latency: the bound equals 1F1B's (m+p-1)(f+b), so 1F1B is
    optimal there and the optimizer proves it at once."""
    problem = Problem.create(p, m, forward=1.0, backward=2.0, memory_limit=limit)
    closed = (m + p - 1) * 3.0
    assert baseline("1f1b", problem).makespan == closed
    assert makespan_lower_bound(problem, problem.memory_caps) == closed
    if p * m <= 64:
        result = solve(problem, OPTIONS)
        assert (result.status, result.objective_value, result.gap) == ("OPTIMAL", closed, 0.0)


@pytest.mark.parametrize("m", [2, 3])
def test_chunked_tail_idle_when_one_microbatch_fits(m: int) -> None:
    """V placement, device 1 holds stages 1 and 2, memory for one micro-batch: nothing can be
    pending when F(2,m-1) starts, so the round trip through stage 3 (f3 + b3 + 2 latencies =
    3.5) is idle on device 1, the closed form counts it beside the head idle, and the whole
    bound (which the one-machine warm-up cases may raise further) stays at or below the
    exhaustive optimum."""
    problem = Problem.create(
        2,
        m,
        forward=[1.0, 1.5, 2.0, 1.0],
        backward=[2.0, 1.0, 2.5, 1.5],
        p2p=0.5,
        num_chunks=2,
        placement="vshape",
        activation=1.0,
        memory_limit=2.0,
    )
    limit = problem.memory_caps
    assert limit is not None
    assert chunked_tail_idle(problem, 1, limit[1]) == 3.5
    head = chunked_head_idle(problem, 1, limit[1])
    assert unavoidable_idle(problem, 1, limit[1]) == head + 3.5
    closed = problem.device_work(1) + head + 3.5 + problem.forward_head(1) + 2.0 + 0.5
    assert device_bound(problem, 1, limit[1]) == closed
    bound = makespan_lower_bound(problem, limit)  # with m=3 the warm-up cases add 1 (32.5)
    assert closed <= bound <= optimum(problem) + TOL
    assert chunked_tail_idle(problem, 1, None) == 0.0


@pytest.mark.parametrize(
    "kwargs",
    [
        # one device, two chunks of unequal savings (0.5 and 2): the cap m*sum - min = 4.5
        {
            "num_devices": 1,
            "num_microbatches": 2,
            "forward": [1.0, 2.0],
            "backward": [1.0, 2.0],
            "overlap": [1.5, 2.0],
            "num_chunks": 2,
        },
        {"num_devices": 1, "num_microbatches": 3, "forward": 1.0, "backward": 2.0, "overlap": 2.25},
        {
            "num_devices": 1,
            "num_microbatches": 2,
            "forward": [1.0, 1.5],
            "backward": [2.0, 1.0],
            "weight": [0.5, 1.0],
            "overlap": [2.0, 1.5],
            "num_chunks": 2,
        },
        {
            "num_devices": 2,
            "num_microbatches": 2,
            "forward": [1.0, 0.5],
            "backward": [1.0, 1.5],
            "overlap": [1.2, 1.5],
            "p2p": 0.25,
        },
        {
            "num_devices": 2,
            "num_microbatches": 2,
            "forward": 1.0,
            "backward": 1.0,
            "weight": 1.0,
            "overlap": 1.0,
        },
    ],
)
def test_pair_bound_is_below_the_brute_force_optimum(kwargs: dict) -> None:
    """The bound with pairs (work less :func:`pair_saving_cap`, the forward head, the
    critical path) never exceeds the shortest makespan of every order and every pairing."""
    from ppopt.solver.bounds import lower_bound

    problem = Problem.create(**kwargs, memory_limit="none")
    optimum = paired_optimum(problem)
    assert lower_bound(problem, "makespan") <= optimum + 1e-9
    assert lower_bound(problem, "span") <= optimum + 1e-9


def test_pair_saving_cap_closed_form() -> None:
    """Savings 0.5 and 2 on one device, m = 2: at most 2 (0.5 + 2) - 0.5 = 4.5 saved (the
    old cap, every forward saving the largest, was 2 * 2 * 2 = 8); a tight case: one stage,
    m = 3, F = 1, B = 2, pairs of 2.25 (saving 0.75): the optimum F + 2 pairs + B = 7.5 saves
    1.5 against 9, and the cap 3 * 0.75 - 0.75 = 1.5 is met."""
    from ppopt.solver.bounds import pair_saving_cap

    two = Problem.create(
        1,
        2,
        forward=[1.0, 2.0],
        backward=[1.0, 2.0],
        overlap=[1.5, 2.0],
        num_chunks=2,
        memory_limit="none",
    )
    assert pair_saving_cap(two, 0) == pytest.approx(4.5)
    one = Problem.create(1, 3, forward=1.0, backward=2.0, overlap=2.25, memory_limit="none")
    assert pair_saving_cap(one, 0) == pytest.approx(1.5)
    assert paired_optimum(one) == pytest.approx(9.0 - 1.5)
