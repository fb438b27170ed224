"""Per-link latency, ``p2p_time`` as a list or a matrix (issue 20, docs/contract.md §1)."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import TIMES, problems, random_orders

from ppopt.baselines import applicable_baselines
from ppopt.config import build_problem
from ppopt.errors import ConfigError, ProblemError
from ppopt.problem import Problem
from ppopt.report import problem_line
from ppopt.solver import SolverOptions, solve
from ppopt.solver.bounds import lower_bound
from ppopt.tasks import Kind, Task
from ppopt.timeline import compute_timeline
from ppopt.validate import validate


@pytest.mark.parametrize(
    ("p2p", "message"),
    [
        ([0.1, 0.2], "p2p_time: expected one number, 3 values"),  # S-1 = 3 boundaries
        ([0.1, -1.0, 0.1], "p2p_time[1]: must be >= 0, got -1"),
        ([0.1, float("nan"), 0.1], "p2p_time[1]: must be finite"),
        ([[0] * 4] * 3, "p2p_time: a matrix must be 4x4"),  # one row short
        ([[0] * 4] * 3 + [[0] * 3], "p2p_time: a matrix must be 4x4"),  # ragged
        ([[0, 1, 1, 1]] * 3 + [[0, 1, -2, 0]], "p2p_time[3][2]: must be >= 0, got -2"),
        ([[0, 1, 1, 1], 0.5, [0] * 4, [0] * 4], "p2p_time[1]: expected a row of the matrix"),
        (["a", 1, 1], "p2p_time[0]: expected a number"),
    ],
)
def test_bad_latencies_name_the_key_and_index(p2p: object, message: str) -> None:
    with pytest.raises(ProblemError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Problem.create(4, 4, p2p=p2p)


def test_config_takes_a_list_and_a_matrix() -> None:
    listed = build_problem({"num_stages": 3, "num_batches": 2, "p2p_time": [0.1, 1]})
    assert listed.p2p == (0.1, 1.0)
    assert [listed.hop(0, 1), listed.hop(1, 0), listed.hop(2, 1)] == [0.1, 0.1, 1.0]
    rows = [[9, 0.1, 0.2], [0.3, 9, 0.4], [0.5, 0.6, 9]]  # the diagonal is never used
    matrix = build_problem({"num_stages": 3, "num_batches": 2, "p2p_time": rows})
    assert [matrix.hop(0, 1), matrix.hop(1, 0), matrix.hop(1, 2), matrix.hop(2, 1)] == [
        0.1,
        0.3,
        0.4,
        0.6,
    ]
    with pytest.raises(ConfigError, match=r"p2p_time\[2\]: must be >= 0"):
        build_problem({"num_stages": 4, "num_batches": 2, "p2p_time": [0, 0, -3]})


def test_a_boundary_inside_one_device_waits_nothing() -> None:
    """V placement: stages p-1 and p are both on device p-1; their list entry is unused."""
    problem = Problem.create(2, 2, num_chunks=2, placement="vshape", p2p=[0.1, 7.0, 0.2])
    assert problem.hop(1, 2) == 0.0 and problem.hop(2, 1) == 0.0
    assert problem.hop(0, 1) == 0.1 and problem.hop(3, 2) == 0.2
    assert "7" not in problem_line(problem)


def test_report_names_the_slow_link() -> None:
    problem = Problem.create(8, 4, p2p=[0.05] * 3 + [0.5] + [0.05] * 3)
    assert "p2p 0.05 (stage 4→5: 0.5)" in problem_line(problem)
    rows = [
        [0.0 if a == b else (1.0 if {a, b} == {1, 2} else 0.1) for b in range(3)] for a in range(3)
    ]
    assert "p2p 0.1 (device 2↔3: 1)" in problem_line(Problem.create(3, 2, p2p=rows))


def test_one_slow_boundary_closed_form_gpipe() -> None:
    """p devices, m micro-batches, F = f, B = b on every stage, boundary k (between device k
    and k+1) of latency L, every other boundary 0, GPipe (all forwards, then all backwards).

    Device p-1 receives its forwards back to back once the first arrives at (p-1) f + L (the
    forward chain crosses the slow boundary once); its m forwards end at (p-1) f + L + m f,
    then its m backwards run back to back, and the last micro-batch's backward chain crosses
    p-1 boundaries down to device 0, one of them of latency L:
    T = (p-1) f + L + m f + m b + (p-1) b + L = (m+p-1)(f+b) + 2L.
    (The same holds for every position k of the slow boundary.)"""
    p, m, f, b, slow = 4, 6, 1.0, 1.5, 0.5
    for k in range(p - 1):
        latencies = [slow if s == k else 0.0 for s in range(p - 1)]
        problem = Problem.create(p, m, forward=f, backward=b, p2p=latencies, memory_limit=None)
        schedule = applicable_baselines(problem)["gpipe"]
        assert validate(schedule) == []
        assert schedule.makespan == pytest.approx((m + p - 1) * (f + b) + 2 * slow, rel=1e-12)


@st.composite
def linked_problems(draw: st.DrawFn, max_devices: int = 4, max_microbatches: int = 4) -> Problem:
    """A random problem of :func:`problems` with random per-link latencies: a list per
    boundary or a device matrix (asymmetric, random diagonal)."""
    base = draw(problems(max_devices=max_devices, max_microbatches=max_microbatches))
    S, p = base.num_stages, base.num_devices
    latency = TIMES | st.just(0.0)
    if draw(st.booleans()):
        p2p: object = draw(st.lists(latency, min_size=S - 1, max_size=S - 1))
    else:
        p2p = [draw(st.lists(latency, min_size=p, max_size=p)) for _ in range(p)]
    return Problem.create(
        num_devices=p,
        num_microbatches=base.num_microbatches,
        forward=base.forward,
        backward=base.backward,
        weight=base.weight,
        p2p=p2p,
        num_chunks=base.num_chunks,
        placement=list(base.placement),
        activation=base.activation,
        retained=base.retained,
        memory_limit=None,
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(linked_problems(), st.randoms(use_true_random=False))
def test_engine_timelines_under_per_link_latency_are_valid(problem: Problem, rng: object) -> None:
    """Random orders timed by the engine pass the validator, which reads every link's
    latency itself; and each cross-device edge waits at least its own latency."""
    schedule = compute_timeline(problem, random_orders(problem, rng))  # type: ignore[arg-type]
    assert validate(schedule) == []
    ends = {op.task: op for op in schedule.ops()}
    for op in schedule.ops():
        for dep in problem.dependencies(op.task):
            assert op.start >= ends[dep].end + problem.latency(dep, op.task) - 1e-9


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(linked_problems(max_devices=3, max_microbatches=3))
def test_optimizer_between_bound_and_every_baseline(problem: Problem) -> None:
    result = solve(problem, SolverOptions(time_limit=2.0, workers=1, deterministic=True))
    best = result.schedule
    assert validate(best) == []
    bound = lower_bound(problem, "makespan", problem.memory_caps)
    assert best.makespan >= bound - 1e-9
    for name, schedule in applicable_baselines(problem).items():
        assert best.makespan <= schedule.makespan + 1e-9, name


def test_matrix_round_trips_through_the_schedule_file(tmp_path: object) -> None:
    from ppopt.export.schedule_json import read_schedule_file, write_schedule

    rows = [[0, 0.1, 0.1], [0.1, 0, 1.0], [0.2, 0.3, 0]]
    problem = Problem.create(3, 3, p2p=rows, memory_limit=None)
    schedule = applicable_baselines(problem)["1f1b"]
    path = tmp_path / "s.json"  # type: ignore[operator]
    write_schedule(path, schedule)
    assert json.loads(path.read_text())["problem"]["p2p_time"] == [
        [0.0, 0.1, 0.1],
        [0.1, 0.0, 1.0],
        [0.2, 0.3, 0.0],
    ]
    back = read_schedule_file(path)
    assert back.schedule.problem.p2p == problem.p2p
    assert validate(back.schedule) == []
    assert back.schedule.problem.latency(Task(Kind.F, 1, 0), Task(Kind.F, 2, 0)) == 1.0


def test_exhaustive_search_agrees_with_cp_sat_under_a_non_uniform_list() -> None:
    """The exhaustive search (tests/solver/exhaustive.py) and CP-SAT find the same optimum
    on tiny split and unsplit problems with one slow boundary."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "solver"))
    from exhaustive import exhaustive_optimum

    for weight in (None, 0.5):
        problem = Problem.create(
            3,
            3,
            forward=[1.0, 0.5, 1.5],
            backward=[1.0, 2.0, 1.0],
            weight=weight,
            p2p=[0.2, 1.3],
            memory_limit=None,
        )
        exact = exhaustive_optimum(problem).value
        result = solve(problem, SolverOptions(time_limit=10.0, workers=1, deterministic=True))
        assert result.schedule.makespan == pytest.approx(exact, rel=1e-9)
        assert str(result.status) == "OPTIMAL"
