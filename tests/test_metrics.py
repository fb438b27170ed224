"""Metrics (ppopt/metrics.py, docs/contract.md §5): hand-computed memory profiles, the bubble
and peak-memory closed forms of 1F1B and GPipe, and cross-checks against the validator's own
memory computation on random schedules."""

from __future__ import annotations

import pytest
from hypothesis import given
from strategies import timed

from ppopt.baselines import baseline
from ppopt.metrics import compute_metrics, memory_profile, peak_memory
from ppopt.problem import Problem
from ppopt.schedule import Schedule
from ppopt.tasks import Task
from ppopt.timeline import compute_timeline
from ppopt.validate import memory_peaks


def _one_device(order: str) -> Schedule:
    """One device, m=2, every pass of length 1, activation 3 of which W keeps 1.

    ``order`` spells the device order, e.g. ``"F1 F2 B1 W1 B2 W2"`` (1-based micro-batches).
    """
    problem = Problem.create(1, 2, forward=1, backward=1, weight=1, activation=3, retained=1)
    tasks = [Task(word[0], 0, int(word[1:]) - 1) for word in order.split()]
    return compute_timeline(problem, [tasks])


def test_memory_profile_split_backward() -> None:
    """F +3 at its start; B -(3-1) and W -1 at their ends. Times 0..6, one unit each."""
    schedule = _one_device("F1 F2 B1 W1 B2 W2")
    assert memory_profile(schedule, 0) == ([0.0, 1.0, 3.0, 4.0, 5.0, 6.0], [3, 6, 4, 3, 1, 0])
    assert peak_memory(schedule) == (6.0,) == memory_peaks(schedule)


def test_memory_profile_frees_before_allocating_at_one_time() -> None:
    """B1 ends at 2 when F2 starts: one step 3 -> 4 (not a spike to 6)."""
    schedule = _one_device("F1 B1 F2 W1 B2 W2")
    assert memory_profile(schedule, 0) == ([0.0, 2.0, 4.0, 5.0, 6.0], [3, 4, 3, 1, 0])
    assert peak_memory(schedule) == (4.0,) == memory_peaks(schedule)


def test_memory_profile_two_devices_per_stage_amounts() -> None:
    """p=2, m=1, 1F1B with W after B; activation (2, 1), retained (0.5, 1)."""
    problem = Problem.create(
        2, 1, forward=1, backward=1, weight=1, activation=[2, 1], retained=[0.5, 1]
    )
    schedule = baseline("1f1b", problem)  # d1: F 1-2, B 2-3, W 3-4; d0: F 0-1, B 3-4, W 4-5
    assert memory_profile(schedule, 0) == ([0.0, 4.0, 5.0], [2.0, 0.5, 0.0])
    assert memory_profile(schedule, 1) == ([0.0, 1.0, 4.0], [0.0, 1.0, 0.0])  # B frees nothing


def test_seed_metrics(seed_problem: Problem) -> None:
    metrics = compute_metrics(baseline("1f1b", seed_problem))
    assert metrics.busy == (24.0,) * 4 and metrics.idle == (9.0,) * 4
    assert metrics.span == 33.0  # device 0 runs from 0 to 33
    assert metrics.zb_bubble == pytest.approx(9 / 33)
    assert metrics.peak_memory == (4.0, 3.0, 2.0, 1.0)
    assert metrics.to_dict()["peak_memory"] == [4.0, 3.0, 2.0, 1.0]


# -------------------------------------------------------------- closed forms of the baselines


# (p, m) pairs including m < p, p = 1 and m = 1.
SHAPES = [(1, 1), (1, 5), (2, 3), (3, 3), (4, 2), (4, 8), (8, 1), (5, 13), (8, 3)]


def test_seed_example(seed_problem: Problem) -> None:
    """The seed's p=4, m=8, f=1, b=2: makespan 33, bubble rate 3/11, bubble ratio 0.375."""
    metrics = compute_metrics(baseline("1f1b", seed_problem))
    assert metrics.makespan == 33.0
    assert metrics.bubble_rate == pytest.approx(3 / 11)
    assert metrics.bubble_ratio == pytest.approx(0.375)


@pytest.mark.parametrize(("p", "m"), SHAPES)
def test_one_f_one_b_bubble_formulas(p: int, m: int) -> None:
    """Megatron's bubble ratio (p-1)/m and the idle share (p-1)/(m+p-1)."""
    metrics = compute_metrics(baseline("1f1b", Problem.create(p, m, forward=1.0, backward=2.0)))
    assert metrics.bubble_ratio == pytest.approx((p - 1) / m, abs=1e-12)
    assert metrics.bubble_rate == pytest.approx((p - 1) / (m + p - 1), abs=1e-12)


@pytest.mark.parametrize(("p", "m"), SHAPES)
def test_peak_memory_closed_forms(p: int, m: int) -> None:
    """1F1B holds min(p - d, m) activations on device d; GPipe holds all m everywhere."""
    problem = Problem.create(p, m)
    ofob, gpipe = baseline("1f1b", problem), baseline("gpipe", problem)
    expected = tuple(float(min(p - d, m)) for d in range(p))
    assert peak_memory(ofob) == expected == memory_peaks(ofob)
    assert peak_memory(gpipe) == (float(m),) * p == memory_peaks(gpipe)


# ----------------------------------------------------------------------------- properties


@given(schedule=timed())
def test_metrics_agree_with_the_validator_and_with_each_other(schedule: Schedule) -> None:
    problem = schedule.problem
    metrics = compute_metrics(schedule)
    assert metrics.peak_memory == pytest.approx(memory_peaks(schedule), abs=1e-9)
    for d in range(problem.num_devices):
        times, levels = memory_profile(schedule, d)
        assert times == sorted(set(times))
        assert max(levels) == pytest.approx(metrics.peak_memory[d], abs=1e-9)
        assert levels[-1] == pytest.approx(0.0, abs=1e-9)  # everything freed at the end
    p, makespan, work = problem.num_devices, metrics.makespan, problem.total_work()
    assert sum(metrics.busy) == pytest.approx(work)
    assert metrics.idle == pytest.approx(tuple(makespan - b for b in metrics.busy))
    assert metrics.bubble_rate == pytest.approx(1 - work / (p * makespan))
    assert metrics.bubble_ratio == pytest.approx(metrics.bubble_rate / (1 - metrics.bubble_rate))
    assert 0 < metrics.span <= makespan
    assert 0 <= metrics.zb_bubble < 1
