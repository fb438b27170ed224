"""V-Half and V-Min (ppopt/baselines/vmemory.py) against the closed forms of the
controllable-memory paper (arXiv:2405.15362) on equal times: peak activation memory
``(p+4)//3`` (V-Min) and ``(p+2)//2`` (V-Half) micro-batches when activations are held until
the weight pass, against 1F1B's ``p``; bubble rate about ``2p/(3m)`` and ``p/(2m)``. The
peaks are measured by the independent validator, not by the code under test."""

from __future__ import annotations

import pytest
from baselines_helpers import checked, vshape_problem
from hypothesis import given, settings
from hypothesis import strategies as st

from ppopt.baselines import baseline
from ppopt.errors import NotApplicableError
from ppopt.metrics import compute_metrics
from ppopt.problem import Problem
from ppopt.validate import assert_valid, memory_peaks

#: The paper's peak in micro-batches (a micro-batch is two chunk activations on a device).
PAPER_PEAK = {"v-min": lambda p: (p + 4) // 3, "v-half": lambda p: (p + 2) // 2}
#: The paper's bubble rate (1 - work / longest device span) at T_F = T_B = T_W.
PAPER_BUBBLE = {"v-min": lambda p, m: 2 * p / (3 * m), "v-half": lambda p, m: p / (2 * m)}


@pytest.mark.parametrize("name", ["v-min", "v-half"])
@pytest.mark.parametrize("p", [2, 3, 4, 5, 6, 8, 12, 16])
def test_peak_is_the_papers_when_w_frees_the_activation(name: str, p: int) -> None:
    """Held until W (retained = activation, the paper's memory model): exactly its peak."""
    problem = vshape_problem(p, 4 * p, retained=1.0, memory_limit="none")
    schedule = checked(name, problem)
    assert max(memory_peaks(schedule)) == 2 * PAPER_PEAK[name](p)


@pytest.mark.parametrize("name", ["v-min", "v-half"])
@pytest.mark.parametrize("p", [4, 8, 16])
@pytest.mark.parametrize("factor", [2, 4])
def test_bubble_within_the_papers_closed_form(name: str, p: int, factor: int) -> None:
    """Equal times, no latency: the zero-bubble bubble (span - work) / span is at most the
    paper's approximate 2p/(3m) (V-Min) and p/(2m) (V-Half), and at least ZB-V's zero."""
    m = factor * p
    schedule = checked(name, vshape_problem(p, m, memory_limit="none"))
    bubble = compute_metrics(schedule).zb_bubble
    assert 0 < bubble <= PAPER_BUBBLE[name](p, m)


@pytest.mark.parametrize("p", [4, 8, 16])
def test_v_min_below_v_half_below_one_f_one_b(p: int) -> None:
    """Memory orders as the names say: V-Min < V-Half < 1F1B (the 1x reference, 2p chunks)."""
    problem = vshape_problem(p, 4 * p, retained=1.0, memory_limit="none")
    peaks = {name: max(memory_peaks(baseline(name, problem))) for name in PAPER_PEAK}
    assert peaks["v-min"] < peaks["v-half"] < problem.reference_peak() == 2 * p


@settings(max_examples=25, deadline=None)
@given(
    p=st.integers(2, 6),
    m=st.integers(1, 14),
    split=st.booleans(),
    times=st.lists(st.floats(0.5, 3.0), min_size=3, max_size=3),
)
def test_valid_and_tight_for_any_size_and_times(
    p: int, m: int, split: bool, times: list[float]
) -> None:
    """Any m (also m < p) and any durations: the order runs, valid and tight."""
    f, b, w = times
    problem = vshape_problem(p, m, f=f, b=b, w=w if split else None, memory_limit="none")
    for name in PAPER_PEAK:
        assert_valid(baseline(name, problem), tight=True)


@pytest.mark.parametrize("name", ["v-min", "v-half"])
def test_needs_the_v_placement(name: str) -> None:
    with pytest.raises(NotApplicableError, match="vshape"):
        baseline(name, Problem.create(4, 8, num_chunks=2))
