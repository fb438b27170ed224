"""The optimizer on two model copies (``copies: 2``): its proven optimum equals the exhaustive
search's (which has no symmetry break, so the per-copy break loses nothing) on tiny cases,
with pairs the brute force over every order and pairing; the lower bound never exceeds
either; the floor holds DualPipe, and the large path (tabu search, windows) stays valid and
never worse than it."""

from __future__ import annotations

import random

import pytest
from exhaustive import exhaustive_optimum
from solver_helpers import TOL, paired_optimum

from ppopt.baselines import baseline
from ppopt.metrics import peak_memory
from ppopt.problem import Problem
from ppopt.solver import SolverOptions, solve
from ppopt.solver.bounds import lower_bound
from ppopt.solver.floor import floor_candidates
from ppopt.validate import validate


def _case(seed: int) -> Problem:
    """A tiny two-copy problem: p = 2 (m = 2 or 4) or p = 4 (m = 2), integer times 1-3,
    split or not, latency 0 or 1, activation 1-2 and a limit of none, one micro-batch's
    worth or one more."""
    rng = random.Random(seed)
    p = 4 if seed % 5 == 0 else 2
    m = 2 if p == 4 else rng.choice([2, 4])
    kwargs: dict = {
        "forward": [rng.randint(1, 3) for _ in range(p)],
        "backward": [rng.randint(1, 3) for _ in range(p)],
        "p2p": rng.choice([0, 0, 1]),
        "activation": [rng.randint(1, 2) for _ in range(p)],
    }
    if rng.random() < 0.5:
        kwargs["weight"] = [rng.randint(1, 2) for _ in range(p)]
    need = max(kwargs["activation"])
    limit = rng.choice(["none", need, need + 1])
    kwargs["memory_limit"] = "none" if limit == "none" else [limit] * p
    return Problem.create(p, m, copies=2, **kwargs)


CASES = [_case(seed) for seed in range(24)]
OPTIONS = SolverOptions(time_limit=20, workers=1)


@pytest.mark.parametrize("problem", CASES, ids=[f"seed{k}" for k in range(len(CASES))])
def test_optimal_equals_the_exhaustive_optimum(problem: Problem) -> None:
    caps = problem.memory_caps
    best = exhaustive_optimum(problem, caps)
    result = solve(problem, OPTIONS)
    assert result.status == "OPTIMAL"
    assert result.schedule.makespan == pytest.approx(best.value, rel=TOL)
    assert validate(result.schedule, caps) == []
    assert lower_bound(problem, "makespan", caps) <= best.value + TOL


@pytest.mark.parametrize(
    "kwargs",
    [
        {"forward": 1, "backward": 2, "overlap": 2.5},
        {"forward": [1, 2], "backward": [2, 1], "overlap": [2.5, 2.5], "p2p": 0.5},
        {"forward": 1, "backward": 1, "weight": 1, "overlap": 1.5},
        {"forward": [2, 1], "backward": [1, 2], "weight": [1, 1], "overlap": [2.0, 2.5]},
    ],
)
def test_optimal_with_pairs_equals_the_brute_force(kwargs: dict) -> None:
    """p = 2, m = 2 (one micro-batch per direction: every pair joins the two copies) under
    every order and every pairing of an F and the B after it, timed by the engine."""
    problem = Problem.create(2, 2, copies=2, memory_limit="none", **kwargs)
    best = paired_optimum(problem)
    result = solve(problem, OPTIONS)
    assert result.status == "OPTIMAL"
    assert result.schedule.makespan == pytest.approx(best, rel=TOL)
    assert validate(result.schedule) == []
    assert lower_bound(problem, "makespan") <= best + TOL
    assert lower_bound(problem, "span") <= best + TOL


def test_pairs_across_the_copies_pay() -> None:
    """p = 2, m = 4, F = 1, B = 2, pairs of 2.5: the proven optimum with pairs is shorter
    than the exhaustive optimum without them, and its pairs join the two copies (a
    forward of one direction with a backward of the other, DualPipe's idea)."""
    pairs = Problem.create(2, 4, copies=2, forward=1, backward=2, overlap=2.5, memory_limit="none")
    plain = Problem.create(2, 4, copies=2, forward=1, backward=2, memory_limit="none")
    result = solve(pairs, OPTIONS)
    assert result.status == "OPTIMAL"
    assert result.schedule.makespan < exhaustive_optimum(plain, None).value - TOL
    copy = pairs.copy_of_stage
    assert any(copy(f.stage) != copy(b.stage) for f, b in result.schedule.pairs)


def test_floor_holds_dualpipe_and_the_answer_is_never_worse() -> None:
    problem = Problem.create(
        4, 8, copies=2, forward=[1, 1.5, 1, 0.5], backward=2, weight=1, overlap=[2.4, 3, 2.4, 2],
        memory_limit="none",
    )  # fmt: skip
    names = {schedule.name for schedule in floor_candidates(problem, None)}
    assert "dualpipe" in names
    rival = baseline("dualpipe", problem)
    for method in ("direct", "large"):
        result = solve(problem, SolverOptions(time_limit=4, workers=1, method=method))
        assert validate(result.schedule) == []
        assert result.schedule.makespan <= rival.makespan + TOL
        assert result.lower_bound <= result.schedule.makespan + TOL


def test_memory_limit_holds_on_two_copies() -> None:
    """Under 1x (p activations: 1F1B's peak on one copy) DualPipe (p + 1) does not fit; the
    optimizer's answer does, from the greedy floor on."""
    problem = Problem.create(4, 8, copies=2, forward=1, backward=2, weight=1, memory_limit="1x")
    result = solve(problem, SolverOptions(time_limit=4, workers=1))
    assert validate(result.schedule, problem.memory_caps) == []
    assert max(peak_memory(result.schedule)) <= problem.memory_caps[0] + TOL
    assert max(peak_memory(baseline("dualpipe", problem))) > problem.memory_caps[0]


def test_large_path_without_pairs_sweeps_windows_on_two_copies() -> None:
    """Without overlap_times the large path runs the tabu search and the window sweep (single
    tasks, exact re-solves of windows of the best schedule) on two copies: valid, within
    the limit, never worse than DualPipe, the bound below."""
    problem = Problem.create(
        8, 16, copies=2, forward=[1, 1.2, 0.9, 1.1] * 2, backward=2, weight=1,
        memory_limit=[9.0] * 8,
    )  # fmt: skip
    rival = baseline("dualpipe", problem)
    result = solve(problem, SolverOptions(time_limit=6, workers=1, method="large"))
    assert validate(result.schedule, problem.memory_caps) == []
    assert result.schedule.makespan <= rival.makespan + TOL
    assert result.lower_bound <= result.schedule.makespan + TOL


def _paired_case(seed: int) -> Problem:
    """p = 2, m = 2 with pairs: integer F and B of 1-3, a pair time anywhere in its range,
    latency 0 or 0.5, split (W 1-2) or not."""
    rng = random.Random(seed)
    f = [rng.randint(1, 3) for _ in range(2)]
    b = [rng.randint(1, 3) for _ in range(2)]
    kwargs: dict = {
        "forward": f,
        "backward": b,
        "overlap": [round(rng.uniform(max(x, y), x + y), 2) for x, y in zip(f, b, strict=True)],
        "p2p": rng.choice([0, 0.5]),
    }
    if rng.random() < 0.5:
        kwargs["weight"] = [rng.randint(1, 2) for _ in range(2)]
    return Problem.create(2, 2, copies=2, memory_limit="none", **kwargs)


@pytest.mark.parametrize("seed", range(10))
def test_pair_cap_windows_stay_below_the_brute_force(seed: int) -> None:
    """The two-copy bound with the pair cap's head and tail windows of lone tasks
    (:func:`~ppopt.solver.bounds.two_copy_pair_saving_cap`) never exceeds the shortest
    makespan over every order and pairing, and the solver proves that optimum. (Checked
    by hand on p = 4, m = 2 too, where the brute force takes minutes a case: five seeds,
    the bound met the optimum on each.)"""
    problem = _paired_case(seed)
    best = paired_optimum(problem)
    assert lower_bound(problem, "makespan") <= best + TOL
    assert lower_bound(problem, "span") <= best + TOL
    result = solve(problem, OPTIONS)
    assert result.status == "OPTIMAL"
    assert result.schedule.makespan == pytest.approx(best, rel=TOL)


def test_pair_cap_windows_by_hand() -> None:
    """p = 8, m = 20, F = B = W = 1, pairs of 1.2 (saving 0.8 a stage, rho = 0.8): device 4
    (stages 4 of copy 1 and 5 of copy 2) waits at least min(1 + 8, 1 + 6) = 7 for its first
    backward, so its forwards lose at least 0.8 * 7 = 5.6 of the 16 they could save: the
    bound is its forward head 3 + work 60 - 10.4 = 52.6 (the forward-side cap alone, less
    the first forward's 0.8, gave 47.8)."""
    from ppopt.solver.bounds import two_copy_pair_saving_cap

    problem = Problem.create(
        8, 20, copies=2, forward=1, backward=1, weight=1, overlap=1.2, memory_limit="none"
    )
    assert two_copy_pair_saving_cap(problem, 3) == pytest.approx(16 - 5.6)
    assert two_copy_pair_saving_cap(problem, 0) == pytest.approx(16 - 0.8)
    assert lower_bound(problem, "makespan") == pytest.approx(3 + 60 - 10.4)
