"""Hypothesis properties over random problems (issue 9): nothing wrong gets out.

Random problems: 1-8 devices, 1-16 micro-batches, 1-2 chunks placed interleaved or as a V,
split backward or not, latency 0 or not, random stage times and activations, and a memory
limit anywhere from *just feasible* (one micro-batch's activations on each device: the sum of
its stages' activations) to none. For every such problem:

* every baseline that applies, and every optimizer result, passes the independent validator
  (:mod:`ppopt.validate`) and is tight (no task could start earlier in its device's order);
* the optimizer respects the resolved memory limit;
* the optimizer's objective is no worse than every baseline that fits the same limit (by
  peak memory), and its lower bound is no higher than its objective (nor than any fitting
  baseline's: a lower bound holds for every schedule under the limit).

CI runs 600 baseline examples and 120 optimizer examples (720 problems), derandomised so a
run is reproducible; ``HYPOTHESIS_PROFILE=thorough`` does not change these counts (they are
fixed per test), raise them locally with ``PPOPT_PROPERTY_SCALE``.
"""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import problems

from ppopt.baselines import applicable_baselines
from ppopt.limits import MemoryLimit
from ppopt.metrics import peak_memory
from ppopt.problem import Problem
from ppopt.solver import SolverOptions, solve
from ppopt.solver.bounds import lower_bound
from ppopt.solver.floor import objective_value, schedule_fits
from ppopt.validate import assert_valid, memory_peaks

#: Multiplies every example count (``PPOPT_PROPERTY_SCALE=10`` for a long local run).
SCALE = max(1, int(os.environ.get("PPOPT_PROPERTY_SCALE", "1")))
BASELINE_EXAMPLES = 600 * SCALE
OPTIMIZER_EXAMPLES = 120 * SCALE
#: Relative slack for comparing two float objectives / a bound with an objective.
TOL = 1e-9
OBJECTIVES = ("makespan", "span")

RANDOM_PROBLEMS = problems(max_devices=8, max_microbatches=16, max_chunks=2)


def one_microbatch_need(problem: Problem) -> tuple[float, ...]:
    """Per device, the memory one micro-batch needs there: its stages' activations summed."""
    return tuple(
        sum(problem.activation[s] for s in problem.stages_on(d)) for d in range(problem.num_devices)
    )


@st.composite
def limited_problems(draw: st.DrawFn) -> Problem:
    """A random problem with a memory limit from just feasible to none.

    The limit is one of: per device, the one-micro-batch need times ``1 + slack`` (slack 0 is
    *just feasible*; listed first, so hypothesis shrinks towards it); none; ``Nx`` with N >= 1
    (never below one micro-batch: the 1F1B reference holds at least one micro-batch on its most
    loaded device); or one value for all devices, the largest need times ``1 + slack``.
    """
    problem = draw(RANDOM_PROBLEMS)
    need = one_microbatch_need(problem)
    slack = st.sampled_from([0.0, 0.0, 0.5, 1.0, 2.0]) | st.floats(0.0, 4.0)
    kind = draw(st.sampled_from(["per-device", "none", "factor", "uniform"]))
    if kind == "none":
        limit = MemoryLimit()
    elif kind == "factor":
        limit = MemoryLimit(factor=draw(st.sampled_from([1.0, 1.5, 2.0, 3.0])))
    elif kind == "per-device":
        limit = MemoryLimit(values=tuple(n * (1 + draw(slack)) for n in need))
    else:
        limit = MemoryLimit(values=(max(need) * (1 + draw(slack)),))
    return problem.with_limit(limit)


def at_most(smaller: float, larger: float) -> bool:
    """``smaller <= larger`` up to float rounding of sums of durations."""
    return smaller <= larger + TOL * max(1.0, abs(larger))


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


@settings(max_examples=OPTIMIZER_EXAMPLES, deadline=None, derandomize=True)
@given(limited_problems(), st.sampled_from(["makespan", "makespan", "span"]))
def test_optimizer_is_valid_within_the_limit_and_beats_every_fitting_baseline(
    problem: Problem, objective: str
) -> None:
    """The optimizer's schedule is valid, tight, under the limit, and no worse than any baseline
    that fits the same limit; its lower bound is below its objective and every fitting
    baseline's; its reported objective is the schedule's own."""
    options = SolverOptions(time_limit=0.4, workers=1, deterministic=True, objective=objective)
    result = solve(problem, options)
    limit = problem.memory_caps
    schedule = result.schedule
    assert not result.interrupted and not schedule.interrupted
    assert_valid(schedule, limit, tight=True)
    assert schedule_fits(schedule, limit)
    value = objective_value(schedule, objective)
    assert result.objective_value == value
    assert at_most(result.lower_bound, value), (result.lower_bound, value)
    assert result.status in ("OPTIMAL", "FEASIBLE")
    if result.status == "OPTIMAL":  # proven: the bound meets the objective
        assert result.gap < 1e-9, (result.lower_bound, value)
    for name, other in applicable_baselines(problem).items():
        if schedule_fits(other, limit):
            theirs = objective_value(other, objective)
            assert at_most(value, theirs), (name, value, theirs)
            assert at_most(result.lower_bound, theirs), (name, result.lower_bound, theirs)
