"""The registry (ppopt/baselines/__init__.py): every registered baseline yields valid, tight
schedules or declines with a one-line error naming the key; each is offered exactly where it
applies; unknown names are refused; the chunked ones never deadlock at any size and their
memory follows their orders alone."""

from __future__ import annotations

import re

import pytest
from baselines_helpers import vshape_problem
from hypothesis import given, settings
from strategies import problems

from ppopt.baselines import BASELINES, applicable_baselines, baseline
from ppopt.errors import ProblemError, UnknownScheduleError
from ppopt.problem import Problem
from ppopt.timeline import compute_timeline
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


def test_registry_and_applicability():
    """The names are registered; each baseline is offered exactly where it applies."""
    for name in ("interleaved-1f1b", "zb-v", "dualpipev"):
        assert name in BASELINES
    on_v = applicable_baselines(vshape_problem(4, 8))
    assert {"zb-v", "dualpipev"} <= set(on_v) and "interleaved-1f1b" not in on_v
    on_v_unsplit = applicable_baselines(vshape_problem(4, 8, w=None))
    assert "dualpipev" in on_v_unsplit and "zb-v" not in on_v_unsplit
    interleaved = applicable_baselines(Problem.create(4, 8, num_chunks=2))
    assert "interleaved-1f1b" in interleaved and not {"zb-v", "dualpipev"} & set(interleaved)


@pytest.mark.parametrize("p", [1, 2, 3, 4, 5])
def test_no_deadlock_for_any_size(p):
    """Deadlock depends on the orders only, not on durations: unit times cover every case."""
    for m in range(1, 3 * p + 3):
        for name, problem in [
            ("interleaved-1f1b", Problem.create(p, m, num_chunks=2)),
            ("interleaved-1f1b", Problem.create(p, m, num_chunks=3, weight=1.0)),
            ("zb-v", vshape_problem(p, m)),
            ("dualpipev", vshape_problem(p, m)),
            ("dualpipev", vshape_problem(p, m, w=None)),
        ]:
            try:
                orders = BASELINES[name](problem)
            except ProblemError:
                assert (name == "interleaved-1f1b" and m < p) or (name == "dualpipev" and m < 2 * p)
                continue
            compute_timeline(problem, orders, name)  # raises DeadlockError on a cycle


@settings(max_examples=60)
@given(problems(max_devices=5, max_microbatches=12, placements=("interleaved", "vshape")))
def test_random_unequal_problems_are_valid_and_memory_follows_the_order(problem):
    """Unequal stages, latency, any memory: every applicable chunked baseline is valid and
    tight, and its memory peaks are those of the same orders at unit times (one device runs
    one task at a time, so its memory steps follow its order alone).
    """
    unit = Problem.create(
        problem.num_devices,
        problem.num_microbatches,
        forward=1.0,
        backward=1.0,
        weight=1.0 if problem.is_split else None,
        num_chunks=problem.num_chunks,
        placement=list(problem.placement),
        activation=list(problem.activation),
        retained=list(problem.retained),
    )
    for name in ("interleaved-1f1b", "zb-v", "dualpipev"):
        try:
            orders = BASELINES[name](problem)
        except ProblemError:
            continue
        schedule = compute_timeline(problem, orders, name)
        assert_valid(schedule, tight=True)
        at_unit = compute_timeline(unit, orders, name)
        assert memory_peaks(schedule) == pytest.approx(memory_peaks(at_unit))
