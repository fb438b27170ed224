"""The optimizer's contract on random and known problems.

* the known optimum of issue 3 (p=4, m=8, f=1, b=2, p2p 0.5, 1x: 40, 1F1B 41), proven;
* ``order: fixed`` is the 1F1B baseline through the solver, op for op, and CP-SAT's optimum
  of that fixed order is the engine's makespan;
* on random small problems (hypothesis): a valid tight schedule under the limit, never worse
  than a baseline that fits the same limit, lower bound <= objective, gap in [0, 1];
* bad input: a limit below one micro-batch, bad options, a misspelt CP-SAT parameter;
* determinism: the same input twice gives the same schedule.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import problems

from ppopt.baselines import applicable_baselines, baseline
from ppopt.errors import NoScheduleError, SolverOptionError
from ppopt.limits import MemoryLimit
from ppopt.metrics import peak_memory
from ppopt.problem import Problem
from ppopt.schedule import Schedule
from ppopt.solver import SolverOptions, solve
from ppopt.solver.floor import objective_value, schedule_fits
from ppopt.validate import assert_valid

TOL = 1e-9

#: Durations whose integer scaling is exact, so CP-SAT's bound is a bound on the float problem.
ROUND_TIMES = st.sampled_from([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])


def options(time_limit: float = 1.0, **kwargs: object) -> SolverOptions:
    """Test options: one worker, deterministic, a small time limit."""
    return SolverOptions(workers=1, deterministic=True, time_limit=time_limit, **kwargs)  # type: ignore[arg-type]


def ops(schedule: Schedule) -> list[tuple[int, str, int, int, float, float]]:
    """Every op as a plain tuple (device, kind, stage, micro-batch, start, end), in run order."""
    return [tuple(op) for op in schedule.ops()]  # type: ignore[misc]


# ---------------------------------------------------------------------- known optimum


def test_issue_example_optimum_is_40_against_1f1b_41() -> None:
    """Issue 3's target: at 1x memory the optimum is 40 where 1F1B takes 41, and it is proven
    (lower bound 40, gap 0); the schedule is valid, tight and within the 1F1B peak."""
    problem = Problem.create(4, 8, forward=1.0, backward=2.0, p2p=0.5, memory_limit="1x")
    limit = problem.memory_caps
    assert baseline("1f1b", problem).makespan == 41.0
    result = solve(problem, options(10.0))
    assert (result.status, result.objective_value) == ("OPTIMAL", 40.0)
    assert (result.lower_bound, result.gap) == (40.0, 0.0)
    assert_valid(result.schedule, limit=limit, tight=True)
    assert max(peak_memory(result.schedule)) <= max(peak_memory(baseline("1f1b", problem)))


# ------------------------------------------------------------------------ fixed order


@st.composite
def round_problems(draw: st.DrawFn, max_devices: int = 4, max_microbatches: int = 6) -> Problem:
    """One chunk per device, times in steps of 0.5 (exact integer scaling), split or not,
    latency 0 or not, memory limit none or at least 1x (1F1B always fits)."""
    p = draw(st.integers(1, max_devices))
    m = draw(st.integers(1, max_microbatches))
    split = draw(st.booleans())
    per_stage = st.lists(ROUND_TIMES, min_size=p, max_size=p)
    activation = draw(st.lists(st.sampled_from([0.5, 1.0, 2.0]), min_size=p, max_size=p))
    return Problem.create(
        p,
        m,
        forward=draw(per_stage),
        backward=draw(per_stage),
        weight=draw(per_stage) if split else None,
        p2p=draw(st.sampled_from([0.0, 0.5, 1.0])),
        activation=activation,
        retained=[a / 2 for a in activation] if split else 0.0,
        memory_limit=draw(st.sampled_from(["none", "1x", "2x"])),
    )


@settings(max_examples=15, deadline=None, derandomize=True)
@given(round_problems())
def test_fixed_order_is_the_1f1b_baseline(problem: Problem) -> None:
    """``order: fixed`` returns 1F1B op for op, and CP-SAT's proven optimum of the fixed order
    (its bound) is the engine's makespan: the integer model times the order exactly as the
    float engine does."""
    engine = baseline("1f1b", problem)
    result = solve(problem, options(order="fixed"))
    assert ops(result.schedule) == ops(engine)
    assert result.objective_value == engine.makespan
    assert result.status == "OPTIMAL"
    assert result.lower_bound == pytest.approx(engine.makespan, abs=TOL)


@settings(max_examples=8, deadline=None, derandomize=True)
@given(problems(max_devices=4, max_microbatches=6, max_chunks=1))
def test_fixed_order_with_arbitrary_float_times(problem: Problem) -> None:
    """Times that no power of ten makes whole (rounded integer model): the returned schedule
    is still 1F1B's exact float timeline, op for op (no memory limit here, see the xfail
    below for the limit)."""
    problem = problem.with_limit(MemoryLimit())
    result = solve(problem, options(order="fixed"))
    assert ops(result.schedule) == ops(baseline("1f1b", problem))
    assert result.lower_bound <= result.objective_value + TOL


def test_fixed_order_at_1x_with_fine_grained_activations() -> None:
    """Memory amounts with up to 9 decimals scale exactly, so 1F1B (the 1x reference itself)
    stays feasible in the integer model."""
    problem = Problem.create(3, 4, activation=[0.1234567, 0.7654321, 0.33333333], memory_limit="1x")
    result = solve(problem, options(order="fixed"))
    assert ops(result.schedule) == ops(baseline("1f1b", problem))


def test_fixed_order_refuses_chunks() -> None:
    problem = Problem.create(2, 4, num_chunks=2)
    with pytest.raises(SolverOptionError, match=r"^solver\.order: fixed needs num_chunks = 1"):
        solve(problem, options(order="fixed"))


# ------------------------------------------------------------------- random problems


@st.composite
def limited_problems(draw: st.DrawFn) -> Problem:
    """Devices 1-4, micro-batches 1-6, one chunk, split or not, latency 0 or not; a memory
    limit from just feasible (the largest one-micro-batch need) through 1x to none."""
    problem = draw(problems(max_devices=4, max_microbatches=6, max_chunks=1))
    need = max(problem.activation)
    top = problem.reference_peak()
    kind = draw(st.sampled_from(["absolute", "factor", "none"]))
    if kind == "none":
        return problem.with_limit(MemoryLimit())
    if kind == "factor":
        return problem.with_limit(MemoryLimit(factor=draw(st.sampled_from([1.0, 1.5, 2.0]))))
    share = draw(st.sampled_from([0.0, 1.0]) | st.floats(0.0, 1.0))
    return problem.with_limit(MemoryLimit(values=(need + share * (top - need),)))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(limited_problems(), st.sampled_from(["makespan", "makespan", "span"]))
def test_random_problems_valid_and_no_worse_than_fitting_baselines(
    problem: Problem, objective: str
) -> None:
    limit = problem.memory_caps
    # A wall-clock cap beside the deterministic limit: on some problems CP-SAT's max_lp worker
    # spends ~20x the deterministic time in wall time (3 devices, 6 micro-batches, span: 6 s
    # for a 0.3 s limit), which would make this test's run time depend on the examples drawn.
    capped = {"max_time_in_seconds": "1.5"}
    result = solve(problem, options(0.3, objective=objective, params=capped))
    assert_valid(result.schedule, limit=limit, tight=True)
    value = objective_value(result.schedule, objective)
    assert result.objective_value == value
    assert result.lower_bound <= value + TOL * max(1.0, value)
    assert 0.0 <= result.gap <= 1.0
    assert result.status in ("OPTIMAL", "FEASIBLE")
    if result.status == "OPTIMAL":
        assert result.gap <= TOL
    for name, other in applicable_baselines(problem).items():
        if schedule_fits(other, limit):
            theirs = objective_value(other, objective)
            assert value <= theirs + TOL * max(1.0, theirs), (name, value, theirs)


# -------------------------------------------------------------------------- bad input


def test_limit_below_one_microbatch_names_the_device_and_amount() -> None:
    """Device 2 needs 2 (its activation) but may hold 1.5: no schedule exists at all."""
    problem = Problem.create(3, 4, activation=[1.0, 1.0, 2.0], memory_limit=[2.0, 2.0, 1.5])
    with pytest.raises(NoScheduleError, match=r"device 2 needs 2 memory .*limit is 1\.5"):
        solve(problem, options())


def test_limit_below_one_microbatch_with_chunks_counts_every_chunk() -> None:
    """With two chunks a device holds both stages' activations for one micro-batch."""
    problem = Problem.create(2, 2, num_chunks=2, activation=1.0, memory_limit=1.5)
    with pytest.raises(NoScheduleError, match=r"device 0 needs 2 memory"):
        solve(problem, options())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"time_limit": -1}, r"^solver\.time_limit: must be > 0"),  # negative
        ({"time_limit": 0}, r"^solver\.time_limit: must be > 0"),  # zero
        ({"workers": -2}, r"^solver\.workers: must be >= 0"),
        ({"order": "random"}, r"^solver\.order: expected free or fixed, got 'random'"),
        ({"objective": "cost"}, r"^solver\.objective: expected makespan or span"),
    ],
)
def test_bad_solver_options(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(SolverOptionError, match=message):
        SolverOptions(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "params",
    [
        {"no_such_param": "1"},  # unknown name
        {"num_search_workers_typo": "2"},  # close to a real name
        {"max_time_in_seconds": "soon"},  # known name, value of the wrong type
    ],
)
def test_misspelt_cp_sat_parameter_is_an_error_naming_it(params: dict[str, str]) -> None:
    (name,) = params
    problem = Problem.create(2, 2)
    with pytest.raises(SolverOptionError, match=rf"^solver\.params: .*'{name}'"):
        solve(problem, options(params=params))


def test_known_cp_sat_parameter_is_accepted() -> None:
    """The check is not a blanket refusal: a real parameter passes and the solve runs."""
    problem = Problem.create(2, 2)
    result = solve(problem, options(params={"log_search_progress": "false"}))
    assert result.objective_value == baseline("1f1b", problem).makespan


def test_same_input_twice_gives_the_same_schedule() -> None:
    """Deterministic mode on a problem CP-SAT cannot close within the limit (the search path
    matters): two runs return identical ops, status and bound."""
    problem = Problem.create(
        4,
        10,
        forward=[1.1, 0.9, 1.3, 1.0],
        backward=[2.2, 1.7, 2.5, 2.1],
        weight=[0.9, 1.2, 0.8, 1.0],
        p2p=0.1,
        retained=0.4,
        memory_limit="1x",
    )
    first = solve(problem, options(0.2))
    second = solve(problem, options(0.2))
    assert ops(first.schedule) == ops(second.schedule)
    assert (first.status, first.lower_bound, first.source) == (
        second.status,
        second.lower_bound,
        second.source,
    )


@pytest.mark.parametrize(
    ("workers", "params", "subsolvers", "extra"),
    [
        (2, {}, ["quick_restart", "lb_tree_search"], []),
        (4, {}, [], ["lb_tree_search"]),
        (1, {}, [], []),
        (2, {"subsolvers": '"default_lp"'}, ["default_lp"], []),
    ],
)
def test_direct_model_gives_a_worker_to_the_lower_bound_tree_search(
    workers: int, params: dict[str, str], subsolvers: list[str], extra: list[str]
) -> None:
    """The direct model's portfolio: on two workers the bound-proving tree search beside a
    restarting search, added to CP-SAT's own list with more, untouched with one worker or
    when the caller names the subsolvers."""
    from ppopt.solver.cpsat import direct_model_parameters, make_solver

    opts = SolverOptions(workers=workers, params=params)
    solver = make_solver(opts)
    direct_model_parameters(solver, opts)
    assert list(solver.parameters.subsolvers) == subsolvers
    assert list(solver.parameters.extra_subsolvers) == extra
