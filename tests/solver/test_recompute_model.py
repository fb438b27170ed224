"""The optimizer with recomputation (solver/recompute_model.py, the floor's recompute
heuristic): its choice against an exhaustive search over every choice on tiny cases, never
above a baseline that fits, never worse with ``auto`` than without recomputation."""

from __future__ import annotations

import pytest
from exhaustive import exhaustive_optimum, exhaustive_recompute_optimum
from hypothesis import given, settings
from hypothesis import strategies as st
from solver_helpers import TOL, options

from ppopt.baselines import applicable_baselines
from ppopt.limits import fits
from ppopt.metrics import peak_memory
from ppopt.problem import Problem
from ppopt.solver import solve
from ppopt.solver.result import Status
from ppopt.tasks import Kind
from ppopt.validate import assert_valid

#: Tiny cases: (p, m, forward, backward, recompute time, checkpoint, limit).
TINY = [
    (1, 2, 1.0, 2.0, 1.0, 0.0, 1.0),  # one device, one activation: every second F recomputed
    (2, 2, 1.0, 2.0, 1.0, 0.0, 1.0),  # below what 1F1B needs on device 0
    (2, 3, 1.0, 2.0, 0.5, 0.25, 1.5),  # a cheap recompute, a checkpoint
    (2, 2, [1.0, 2.0], [2.0, 1.0], 1.0, 0.0, 1.0),  # unequal stages
    (2, 3, 1.0, 1.0, 2.0, 0.0, 2.0),  # an expensive recompute, memory for 1F1B: none needed
]


@pytest.mark.parametrize("case", TINY, ids=lambda c: f"p{c[0]}m{c[1]}r{c[4]}c{c[5]}L{c[6]}")
def test_choice_is_the_exhaustive_optimum(case: tuple[object, ...]) -> None:
    """Every choice of recomputed (stage, micro-batch) pairs, every tight schedule of each
    (no symmetry break): the optimizer's makespan is the least, proven, and valid."""
    p, m, f, b, r, c, limit = case
    problem = Problem.create(
        p, m, forward=f, backward=b, recompute="auto", recompute_times=r, checkpoint=c,
        memory_limit=limit,
    )  # fmt: skip
    best, _ = exhaustive_recompute_optimum(problem, problem.memory_caps)
    result = solve(problem, options(time_limit=10.0))
    assert result.status == Status.OPTIMAL
    assert result.objective_value == pytest.approx(best, rel=TOL)
    assert_valid(result.schedule, limit=problem.memory_caps, tight=True)


@st.composite
def recompute_problems(draw: st.DrawFn) -> Problem:
    """Small problems with recompute auto under a limit from one micro-batch to 1x."""
    p = draw(st.integers(1, 3))
    m = draw(st.integers(1, 4))
    split = draw(st.booleans())
    times = st.sampled_from([1.0, 1.5, 2.0])
    plain = Problem.create(p, m, memory_limit="none")
    lowest, unit = 1.0, plain.reference_peak()
    return Problem.create(
        p,
        m,
        forward=draw(st.lists(times, min_size=p, max_size=p)),
        backward=draw(st.lists(times, min_size=p, max_size=p)),
        weight=draw(st.lists(times, min_size=p, max_size=p)) if split else None,
        p2p=draw(st.sampled_from([0.0, 0.5])),
        recompute="auto",
        recompute_times=draw(st.lists(times, min_size=p, max_size=p)),
        checkpoint=draw(st.sampled_from([0.0, 0.25])),
        memory_limit=draw(st.sampled_from([lowest + 0.25, (lowest + unit) / 2, unit])),
    )


@settings(max_examples=12, deadline=None)
@given(recompute_problems())
def test_never_above_a_fitting_baseline_with_or_without_recompute(problem: Problem) -> None:
    """Optimal <= every baseline that fits, run without recomputation and with it (all)."""
    caps = problem.memory_caps
    result = solve(problem, options(time_limit=3.0))
    assert_valid(result.schedule, limit=caps)
    for variant in (problem.without_recompute(), problem.with_recompute("all")):
        for name, other in applicable_baselines(variant).items():
            if fits(peak_memory(other), caps):
                assert result.objective_value <= other.makespan * (1 + TOL), (name, variant)


@settings(max_examples=10, deadline=None)
@given(recompute_problems())
def test_auto_at_1x_never_worse_than_none(problem: Problem) -> None:
    """The auto model contains the model without recomputation (every literal false), so at
    1x (where no recompute is needed to fit) its optimum is at most the optimum without."""
    at_1x = problem.with_limit("1x")
    auto = solve(at_1x, options(time_limit=3.0))
    none = solve(at_1x.without_recompute(), options(time_limit=3.0))
    if auto.status == Status.OPTIMAL and none.status == Status.OPTIMAL:
        assert auto.objective_value <= none.objective_value * (1 + TOL)


def test_recomputes_in_the_bubbles_at_half_memory() -> None:
    """p=4, m=8, F 1, B 2 at 0.5x (2 activations): without recomputation the optimum is 51;
    recomputing some forwards in the idle time gets 1F1B's 33 back, proven, and the report's
    counts are the schedule's R tasks."""
    problem = Problem.create(4, 8, recompute="auto", memory_limit="0.5x")
    result = solve(problem, options(time_limit=10.0))
    assert result.objective_value == 33.0 and result.status == Status.OPTIMAL
    chosen = result.schedule.problem
    recomputes = [op for op in result.schedule.ops() if op.kind == Kind.R]
    assert 0 < len(recomputes) == chosen.num_recomputed < 32
    without = solve(problem.without_recompute(), options(time_limit=10.0))
    assert without.objective_value == 51.0


@pytest.mark.parametrize(("p", "m", "limit"), [(2, 2, 1.0), (2, 3, 1.5)])
def test_per_stage_choice_is_the_best_subset_of_stages(p: int, m: int, limit: float) -> None:
    """``recompute_per: stage``: the optimum over every subset of recomputed stages (each
    solved exhaustively) is the optimizer's, proven."""
    problem = Problem.create(
        p, m, recompute="auto", recompute_per="stage", memory_limit=limit, forward=[1.0, 1.5]
    )
    values = []
    for mask in range(1 << p):
        chosen = [(s, i) for s in range(p) if mask >> s & 1 for i in range(m)]
        try:
            values.append(exhaustive_optimum(problem.with_recomputed(chosen), (limit,) * p).value)
        except ValueError:
            continue
    result = solve(problem, options(time_limit=10.0))
    assert result.status == Status.OPTIMAL
    assert result.objective_value == pytest.approx(min(values), rel=TOL)


def test_a_tiny_time_limit_still_returns_the_floor() -> None:
    """auto at 1x with almost no time: the floor's schedule, valid, no error."""
    problem = Problem.create(4, 16, weight=1.0, backward=1.0, recompute="auto", memory_limit="1x")
    result = solve(problem, options(time_limit=0.01))
    assert_valid(result.schedule, limit=problem.memory_caps)
