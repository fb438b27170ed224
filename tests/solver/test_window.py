"""Window re-optimization (ppopt.solver.window) and the ``large`` method that sweeps it.

The window model's objective claims to be the exact makespan of the whole schedule (earlier
tasks fixed in time, later ones in order, their effect an exact longest-path tail). Checked
against the timeline engine: with exactly scaled times, a proven window optimum equals the
retimed makespan of the orders it returns, and any solution is an upper bound of it. Every
schedule the sweep returns is valid under the memory limit and never worse than its start.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import problems

from ppopt.baselines import baseline
from ppopt.limits import MemoryLimit
from ppopt.problem import Problem
from ppopt.solver import SolverOptions, solve
from ppopt.solver.bounds import makespan_lower_bound
from ppopt.solver.cpsat import make_solver
from ppopt.solver.floor import best_floor
from ppopt.solver.scaling import IntMemory, memory_data, time_scale
from ppopt.solver.window import (
    Cursor,
    WindowModel,
    improve_window,
    sweep_windows,
    window_bounds,
)
from ppopt.timeline import compute_timeline
from ppopt.validate import assert_valid

OPTIONS = SolverOptions(workers=1, deterministic=True, time_limit=2.0)
ROUND_TIMES = st.sampled_from([0.5, 1.0, 1.5, 2.0, 2.5])
PLACEMENTS = {1: ["interleaved"], 2: ["interleaved", "vshape"]}


def memory_of(problem: Problem) -> IntMemory | None:
    """The solver's integer memory data for the problem's own limit (None: no limit)."""
    return memory_data(problem, problem.memory_caps)


@st.composite
def round_problems(draw: st.DrawFn) -> Problem:
    """Small problems with times whose integer scaling is exact."""
    p = draw(st.integers(2, 4))
    m = draw(st.integers(2, 6))
    chunks = draw(st.sampled_from([1, 1, 2]))
    n = p * chunks
    split = draw(st.booleans())
    times = st.lists(ROUND_TIMES, min_size=n, max_size=n)
    return Problem.create(
        p,
        m,
        forward=draw(times),
        backward=draw(times),
        weight=draw(times) if split else None,
        p2p=draw(st.sampled_from([0.0, 0.5])),
        num_chunks=chunks,
        placement=draw(st.sampled_from(PLACEMENTS[chunks])),
        activation=1.0,
        retained=0.5 if split else 0.0,
        memory_limit=draw(st.sampled_from(["1x", "none", "2x"])),
    )


@settings(max_examples=60, deadline=None, derandomize=True)
@given(problem=round_problems(), size=st.integers(3, 24), pick=st.integers(0, 100))
def test_window_objective_is_the_retimed_makespan(problem: Problem, size: int, pick: int) -> None:
    limit = problem.memory_caps
    start = best_floor(problem, limit, "makespan")
    assert start is not None
    scale = time_scale(problem)
    assert scale.exact
    windows = window_bounds(start, size)
    t0, t1 = windows[pick % len(windows)]
    window = WindowModel(start, t0, t1, scale, memory_of(problem))
    solver = make_solver(OPTIONS)
    status = solver.solve(window.model)
    assert solver.status_name(status) in ("OPTIMAL", "FEASIBLE")  # the hint is a solution
    found = compute_timeline(problem, window.orders(solver))
    assert_valid(found, limit=limit)
    retimed = scale.to_int(found.makespan)
    assert retimed <= solver.objective_value <= scale.to_int(start.makespan)
    if solver.status_name(status) == "OPTIMAL":
        assert retimed == solver.objective_value


def test_whole_schedule_as_one_window_finds_the_known_optimum() -> None:
    """Issue 3's example: 1F1B takes 41, the optimum is 40; one window over everything (the
    cool-down from time 0) is the full problem and reaches 40."""
    problem = Problem.create(4, 8, forward=1.0, backward=2.0, p2p=0.5, memory_limit="1x")
    start = baseline("1f1b", problem)
    assert start.makespan == 41.0
    step = improve_window(
        start, 0.0, float("inf"), time_scale(problem), memory_of(problem), OPTIONS, 5.0
    )
    assert step.schedule is not None
    assert step.schedule.makespan == 40.0
    assert_valid(step.schedule, limit=problem.memory_caps)


def test_empty_window_changes_nothing() -> None:
    problem = Problem.create(3, 4)
    start = baseline("1f1b", problem)
    after = start.makespan + 1.0
    step = improve_window(start, after, after + 1.0, time_scale(problem), None, OPTIONS, 1.0)
    assert step.schedule is None and not step.interrupted


def test_window_bounds_cover_every_task_with_overlap() -> None:
    problem = Problem.create(4, 8)
    schedule = baseline("1f1b", problem)
    windows = window_bounds(schedule, 10)
    assert windows[0][0] == 0.0 and windows[-1][1] == float("inf")
    for (a0, a1), (b0, _) in zip(windows, windows[1:], strict=False):
        assert a0 < b0 < a1  # consecutive windows overlap
    covered = {op.task for op in schedule.ops() for t0, t1 in windows if t0 <= op.start < t1}
    assert len(covered) == problem.num_tasks


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    problem=problems(max_devices=4, max_microbatches=6),
    size=st.integers(4, 30),
    factor=st.sampled_from([None, 1.0, 1.5]),
)
def test_sweep_keeps_schedules_valid_and_never_worse(
    problem: Problem, size: int, factor: float | None
) -> None:
    """Arbitrary float times and memory amounts (scaling may round), with or without a
    limit: every improvement is valid under the limit and strictly better than the last."""
    if factor is not None:
        problem = problem.with_limit(MemoryLimit(factor=factor))
    limit = problem.memory_caps
    start = best_floor(problem, limit, "makespan")
    if start is None:
        return  # nothing fits the limit; the solver reports that elsewhere
    best = start.makespan
    steps = sweep_windows(start, time_scale(problem), memory_of(problem), OPTIONS, 3.0, size, 0.5)
    for step in steps:
        assert step.schedule is not None
        assert_valid(step.schedule, limit=limit)
        assert step.schedule.makespan < best
        best = step.schedule.makespan


def test_a_sweep_in_slices_resumes_at_the_next_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sweep given a cursor starts at its window, goes round to the start, and leaves the
    cursor after the last window it solved (slices of a long sweep visit every window)."""
    import ppopt.solver.window as window_module

    problem = Problem.create(4, 8, [1.0, 1.5, 1.0, 1.2], 2.0, p2p=0.1)
    start = baseline("1f1b", problem)
    windows = window_bounds(start, 10)
    assert len(windows) >= 4
    seen: list[float] = []

    def record(schedule, t0, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(t0)
        return window_module.WindowStep(None, False)

    monkeypatch.setattr(window_module, "improve_window", record)
    cursor = Cursor(next=2)
    list(sweep_windows(start, time_scale(problem), None, OPTIONS, 100.0, 10, 0.5, cursor))
    assert seen == [t0 for t0, _ in windows[2:] + windows[:2]]
    assert cursor.next == 2  # after the last one solved, window 1: the next is 2 again
    seen.clear()
    options = SolverOptions(workers=1, deterministic=True, time_limit=1.0)
    list(sweep_windows(start, time_scale(problem), None, options, 1.0, 10, 0.5, cursor))
    assert seen == [windows[2][0], windows[3][0]]  # two windows of 0.5 s fit a 1 s slice
    assert cursor.next == 4


@pytest.mark.parametrize("seed", range(6))
def test_large_method_on_small_problems_matches_the_rules(seed: int) -> None:
    """``method: large`` forced on small problems: valid, no worse than the best baseline,
    never below the lower bound, and no better than the direct model's proven optimum."""
    import random

    rng = random.Random(seed)
    p, m = rng.choice([(3, 6), (4, 8), (4, 4)])
    split = seed % 2 == 0
    problem = Problem.create(
        p,
        m,
        forward=[rng.choice([1.0, 1.5, 2.0]) for _ in range(p)],
        backward=[rng.choice([1.0, 2.0, 2.5]) for _ in range(p)],
        weight=[rng.choice([0.5, 1.0]) for _ in range(p)] if split else None,
        p2p=0.5,
        activation=1.0,
        retained=0.5 if split else 0.0,
        memory_limit="1x",
    )
    limit = problem.memory_caps
    options = SolverOptions(workers=1, deterministic=True, time_limit=3.0, method="large")
    large = solve(problem, options)
    assert_valid(large.schedule, limit=limit)
    floor = best_floor(problem, limit, "makespan")
    assert floor is not None
    assert large.objective_value <= floor.makespan + 1e-9
    assert large.objective_value >= makespan_lower_bound(problem, limit) - 1e-9
    direct = solve(problem, SolverOptions(workers=1, deterministic=True, time_limit=10.0))
    if direct.status == "OPTIMAL":
        assert large.objective_value >= direct.objective_value - 1e-9


def test_span_sweep_keeps_only_narrower_schedules() -> None:
    """Issue 17: the sweep for ``span`` keeps a window's result only when the largest
    per-device span drops (or stays and the makespan drops): on ZB-V's static order of an
    unequal V instance every kept step is valid and no wider, and the sweep shortens it."""
    from ppopt.metrics import compute_metrics

    problem = Problem.create(
        4, 8, 10.0, 14.0, weight=10.0, p2p=0.5, num_chunks=2, placement="vshape"
    )
    start = baseline("zb-v", problem)
    span_options = SolverOptions(workers=1, deterministic=True, time_limit=2.0, objective="span")
    best = (compute_metrics(start).span, start.makespan)
    steps = sweep_windows(
        start, time_scale(problem), memory_of(problem), span_options, 4.0, 60, 0.5
    )
    kept = 0
    for step in steps:
        assert step.schedule is not None
        assert_valid(step.schedule, limit=problem.memory_caps)
        now = (compute_metrics(step.schedule).span, step.schedule.makespan)
        assert now < best
        best, kept = now, kept + 1
    assert kept and best[0] < compute_metrics(start).span
