"""Baselines: every registered baseline yields valid, tight schedules; 1F1B and GPipe have
the structure the literature gives them."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import problems

from ppopt.baselines import BASELINES, applicable_baselines, baseline
from ppopt.errors import ProblemError, UnknownScheduleError
from ppopt.problem import Problem
from ppopt.tasks import Task
from ppopt.validate import assert_valid, memory_peaks


@pytest.mark.parametrize("name", sorted(BASELINES))
@given(problem=problems(placements=("interleaved", "vshape", "explicit")))
def test_every_baseline_is_valid_and_tight(name: str, problem: Problem) -> None:
    """Each baseline either declines the problem with a one-line ProblemError naming the config
    key at fault (``schedule: ...``, ``num_batches: ...``) or returns a schedule that passes the
    independent validator and is tight."""
    try:
        schedule = baseline(name, problem)
    except ProblemError as error:
        assert re.match(r"^[a-z_.]+(\[\d+\])?: \S", str(error)), str(error)
        assert "\n" not in str(error)
        return
    assert schedule.name == name
    assert_valid(schedule, tight=True)


@given(problem=problems())
def test_applicable_baselines_are_the_ones_that_run(problem: Problem) -> None:
    found = applicable_baselines(problem)
    for name in BASELINES:
        try:
            baseline(name, problem)
        except ProblemError:
            assert name not in found
        else:
            assert name in found
    assert "gpipe" in found  # GPipe schedules any problem
    assert ("1f1b" in found) == (problem.num_chunks == 1)


def test_unknown_baseline_names_the_known_ones(seed_problem: Problem) -> None:
    known = r"^schedule: unknown baseline 'zz' \(known: .*1f1b"
    with pytest.raises(UnknownScheduleError, match=known):
        baseline("zz", seed_problem)


def test_one_f_one_b_refuses_chunks() -> None:
    with pytest.raises(ProblemError, match="^schedule: "):
        baseline("1f1b", Problem.create(2, 4, num_chunks=2))


@given(p=st.integers(1, 8), m=st.integers(1, 12), split=st.booleans())
def test_one_f_one_b_structure(p: int, m: int, split: bool) -> None:
    """Device d runs min(p-d-1, m) warm-up forwards and one more forward (if any is left)
    before its first backward, so it never holds more than min(p-d, m) micro-batches;
    forwards and backwards each go in micro-batch order; W follows its B at once."""
    problem = Problem.create(p, m, weight=1.0 if split else None)
    schedule = baseline("1f1b", problem)
    for d, order in enumerate(schedule.orders()):
        kinds = [t.kind for t in order]
        assert kinds.index("B") == min(p - d, m)
        assert [t.microbatch for t in order if t.kind == "F"] == list(range(m))
        assert [t.microbatch for t in order if t.kind == "B"] == list(range(m))
        if split:
            for k, task in enumerate(order):
                if task.kind == "B":
                    assert order[k + 1] == Task("W", d, task.microbatch)
    assert memory_peaks(schedule) == tuple(float(min(p - d, m)) for d in range(p))


@given(problem=problems(max_devices=5, max_microbatches=6))
def test_gpipe_runs_every_forward_first(problem: Problem) -> None:
    schedule = baseline("gpipe", problem)
    for d, order in enumerate(schedule.orders()):
        kinds = [t.kind for t in order]
        forwards = len(problem.stages_on(d)) * problem.num_microbatches
        assert set(kinds[:forwards]) == {"F"} and "F" not in kinds[forwards:]
    # every activation is alive at once on each device: the peak is the whole device's memory
    for d, peak in enumerate(memory_peaks(schedule)):
        expected = problem.num_microbatches * sum(
            problem.activation[s] for s in problem.stages_on(d)
        )
        assert peak == pytest.approx(expected)
