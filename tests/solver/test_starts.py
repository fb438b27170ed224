"""The large path's several starts (ppopt/solver/run.py, ``_starts`` and ``_tabu_from_starts``):
the tabu search runs from the best few baselines, not only the best one, and the turns go on
from the best it found.

* the starts are the best baseline first, then others with other orders, by value, within
  the margin, at most :data:`STARTS`, all of the problem the improvers see;
* a start that is not the best baseline but leads the search lower is where the result comes
  from (the tabu search replaced by one that improves only that start's orders), and a start
  that leads nowhere lower changes nothing;
* end to end on the large path: valid, never worse than the best baseline.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import ppopt.solver.run as run_module
from ppopt.problem import Problem
from ppopt.schedule import Schedule
from ppopt.solver import SolverOptions, solve
from ppopt.solver.floor import floor_candidates
from ppopt.timeline import compute_timeline
from ppopt.validate import assert_valid


def unequal_split() -> Problem:
    """Split backward, unequal stages, 1x memory: several baselines, close in makespan."""
    return Problem.create(
        4,
        8,
        [1.0, 1.2, 0.9, 1.1],
        [1.1, 0.9, 1.2, 1.0],
        weight=[0.6, 0.7, 0.5, 0.6],
        p2p=0.05,
        retained=0.4,
        memory_limit="1x",
    )


def floored_run(problem: Problem) -> run_module._Run:
    """A run with its baselines computed (its floor), the improvers not started."""
    run = run_module._Run(problem, SolverOptions(time_limit=30, workers=1, method="large"), None)
    run._floor()
    return run


def orders(schedule: Schedule) -> tuple[tuple[object, ...], ...]:
    return tuple(tuple(order) for order in schedule.orders())


def test_starts_are_the_best_baselines_with_other_orders_within_the_margin() -> None:
    problem = unequal_split()
    run = floored_run(problem)
    assert run.best is not None
    starts = run._starts(run.best)
    baselines = floor_candidates(problem, problem.memory_caps)
    best = min(s.makespan for s in baselines)
    assert starts[0] is run.best and run.best.makespan == best
    assert 2 <= len(starts) <= run_module.STARTS  # this problem has close runners-up
    assert len({orders(s) for s in starts}) == len(starts)
    assert [s.makespan for s in starts] == sorted(s.makespan for s in starts)
    assert all(s.makespan <= best * (1 + run_module.START_MARGIN) for s in starts)
    assert all(s.problem is problem for s in starts)
    # nothing left out: each baseline with other orders in reach is a start when room is left
    reach = [s for s in baselines if s.makespan <= best * (1 + run_module.START_MARGIN)]
    if len({orders(s) for s in reach}) <= run_module.STARTS:
        assert {orders(s) for s in starts} == {orders(s) for s in reach}


def test_the_run_keeps_only_the_baselines_a_start_can_come_from() -> None:
    problem = unequal_split()
    run = floored_run(problem)
    baselines = floor_candidates(problem, problem.memory_caps)
    reach = min(s.makespan for s in baselines) * (1 + run_module.START_MARGIN)
    kept = sorted(orders(s) for s in run.baselines)
    assert kept == sorted(orders(s) for s in baselines if s.makespan <= reach)
    assert len(kept) < len(baselines)  # some baselines of this problem are out of reach


def test_a_start_that_is_not_the_best_baseline_can_give_the_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    problem = unequal_split()
    run = floored_run(problem)
    assert run.best is not None
    starts = run._starts(run.best)
    runner_up = starts[1]
    # a hand-made shorter schedule that only a search from the runner-up's orders finds
    target = compute_timeline(problem, runner_up.orders(), "found")
    shorter = Schedule(
        problem,
        "found",
        tuple(
            tuple(op._replace(start=op.start - 1.0, end=op.end - 1.0) for op in row)
            for row in target.device_ops
        ),
    )
    searched = []

    def fake_tabu(schedule: Schedule, *args: object) -> Iterator[Schedule]:
        searched.append(orders(schedule))
        if orders(schedule) == orders(runner_up):
            yield shorter

    monkeypatch.setattr(run_module, "tabu_search", fake_tabu)
    run._tabu_from_starts(run.best, end=run.elapsed() + 30)
    # each start searched once, best first, until a schedule meets the bound
    assert searched == [orders(s) for s in starts][: len(searched)]
    assert len(searched) == len(starts) or run._proven(run.best)
    assert len(searched) >= 2
    assert run.best is not None and run.best.makespan == shorter.makespan
    assert run.best.name == "tabu"


def test_starts_that_lead_nowhere_lower_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    problem = unequal_split()
    run = floored_run(problem)
    floor = run.best
    assert floor is not None

    def worse(schedule: Schedule, *args: object) -> Iterator[Schedule]:
        yield schedule.renamed("worse")  # not below the best so far: not kept

    monkeypatch.setattr(run_module, "tabu_search", worse)
    run._tabu_from_starts(floor, end=run.elapsed() + 30)
    assert run.best is floor


def test_large_path_with_starts_is_valid_and_never_worse_than_the_floor() -> None:
    problem = unequal_split()
    caps = problem.memory_caps
    floor = min(floor_candidates(problem, caps), key=lambda s: s.makespan)
    result = solve(problem, SolverOptions(time_limit=3, workers=1, method="large"))
    assert_valid(result.schedule, limit=caps)
    assert result.schedule.makespan <= floor.makespan + 1e-9
    assert result.lower_bound <= result.schedule.makespan + 1e-9
