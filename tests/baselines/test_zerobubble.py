"""ZB-H1 and ZB-H2: the paper's closed-form bubbles on equal stages, their memory against
1F1B's, a hand-computed tiny case, the paper's published figure, and validity everywhere."""

from __future__ import annotations

import pytest
from hypothesis import given
from strategies import problems

from ppopt.baselines import baseline
from ppopt.errors import ProblemError
from ppopt.metrics import compute_metrics, device_spans, memory_profile
from ppopt.problem import Problem
from ppopt.tasks import Task
from ppopt.validate import assert_valid, memory_peaks

#: (T_F, T_B, T_W) of the closed-form tests; each has T_W <= T_B, T_F and T_F + T_B >= 2 T_W.
TIMES = [(1.0, 1.0, 1.0), (1.0, 1.5, 0.5), (2.0, 2.0, 1.0)]
#: (p, m): m < p, m = p, p < m < 2p - 1, m = 2p - 1 and m > 2p - 1.
SIZES = [(1, 3), (2, 1), (3, 2), (4, 4), (4, 6), (4, 7), (4, 12), (5, 3), (6, 6), (6, 20)]


def equal(p: int, m: int, times: tuple[float, float, float]) -> Problem:
    """Equal stages, no latency, split backward, retained half the activation."""
    f, b, w = times
    return Problem.create(p, m, forward=f, backward=b, weight=w, activation=1.0, retained=0.5)


def span_bubble(problem: Problem, name: str) -> tuple[float, float, float]:
    """(largest per-device span - per-device work, device 0's span, makespan) of a baseline."""
    schedule = baseline(name, problem)
    assert_valid(schedule, tight=True)
    spans = device_spans(schedule)
    work = problem.device_work(0)
    return max(spans) - work, spans[0], schedule.makespan


@pytest.mark.parametrize("times", TIMES)
@pytest.mark.parametrize(("p", "m"), SIZES)
def test_zb_h1_bubble_closed_form(p: int, m: int, times: tuple[float, float, float]) -> None:
    """ZB-H1's bubble is (p-1)(T_F+T_B) - (min(m,p)-1) T_W: the paper's (p-1)(T_F+T_B-T_W)
    once m >= p. Device 0 has the largest span and (T_W <= T_B) ends last, so that bubble is
    also device 0's makespan bubble."""
    f, b, w = times
    bubble, span0, makespan = span_bubble(equal(p, m, times), "zb-h1")
    assert bubble == pytest.approx((p - 1) * (f + b) - (min(m, p) - 1) * w)
    if m >= p:
        assert bubble == pytest.approx((p - 1) * (f + b - w))
    assert span0 - m * (f + b + w) == pytest.approx(bubble)
    assert makespan == pytest.approx(span0)


@pytest.mark.parametrize("times", TIMES)
@pytest.mark.parametrize(("p", "m"), SIZES)
def test_zb_h2_bubble_closed_form(p: int, m: int, times: tuple[float, float, float]) -> None:
    """ZB-H2's bubble is (p-1)(T_F+T_B) - (min(m,2p-1)-1) T_W: the paper's (p-1)(T_F+T_B-2T_W)
    once m >= 2p-1, zero for T_F = T_B = T_W (a parallelogram: the makespan keeps the skew)."""
    f, b, w = times
    bubble, span0, makespan = span_bubble(equal(p, m, times), "zb-h2")
    assert bubble == pytest.approx((p - 1) * (f + b) - (min(m, 2 * p - 1) - 1) * w)
    if m >= 2 * p - 1:
        assert bubble == pytest.approx((p - 1) * (f + b - 2 * w))
        if f == b == w:
            assert bubble == pytest.approx(0.0)
            assert makespan == pytest.approx(m * 3 * f + (p - 1) * f)
    assert span0 - m * (f + b + w) == pytest.approx(bubble)


@pytest.mark.parametrize(("p", "m"), [(2, 2), (4, 4), (4, 9), (6, 13), (3, 1)])
@pytest.mark.parametrize("retained", [0.25, 0.5, 0.9])
def test_zb_h1_memory_is_1f1b_memory(p: int, m: int, retained: float) -> None:
    """Stage s holds min(p-s, m) activations plus its postponed W passes' retained parts
    (s of them once m >= p): the largest is stage 0's, exactly 1F1B's peak."""
    problem = Problem.create(p, m, forward=1, backward=1, weight=1, retained=retained)
    h1 = memory_peaks(baseline("zb-h1", problem))
    one_f_one_b = memory_peaks(baseline("1f1b", problem))
    assert max(h1) == pytest.approx(max(one_f_one_b)) == pytest.approx(min(p, m))
    if m >= p:
        assert h1 == pytest.approx([(p - s) + s * retained for s in range(p)])
    assert compute_metrics(baseline("zb-h1", problem)).peak_memory == pytest.approx(h1)


@pytest.mark.parametrize(("p", "m"), [(2, 3), (4, 7), (4, 12), (6, 20), (4, 3)])
@pytest.mark.parametrize("retained", [0.25, 0.5, 1.0])
def test_zb_h2_memory_is_under_twice_1f1b(p: int, m: int, retained: float) -> None:
    """Stage s holds 2(p-s)-1 activations plus 2s retained parts once m >= 2p-1: stage 0's
    2p-1 is the peak, under twice 1F1B's p."""
    problem = Problem.create(p, m, forward=1, backward=1, weight=1, retained=retained)
    h2 = memory_peaks(baseline("zb-h2", problem))
    one_f_one_b = max(memory_peaks(baseline("1f1b", problem)))
    assert max(h2) <= 2 * one_f_one_b
    assert max(h2) == pytest.approx(min(m, 2 * p - 1))
    if m >= 2 * p - 1:
        assert h2 == pytest.approx([2 * (p - s) - 1 + 2 * s * retained for s in range(p)])


def test_zb_h1_tiny_case_by_hand() -> None:
    """p=2, m=2, F=B=W=1, activation 2, retained 0.5, computed on paper:

    device 0: F1 F2 B1 W1 B2 W2 at 0,1,3,4,5,6 -> memory 2, 4, 2.5 (B1 ends at 4), 2, 0.5, 0
    device 1: F1 B1 F2 B2 W1 W2 at 1,2,3,4,5,6 -> memory 2, 0.5 then +2 = 2.5 at 3, 1, 0.5, 0
    """
    problem = Problem.create(2, 2, forward=1, backward=1, weight=1, activation=2, retained=0.5)
    schedule = baseline("zb-h1", problem)

    def row(text: str, stage: int) -> list[Task]:
        return [Task(text[k], stage, int(text[k + 1])) for k in range(0, len(text), 2)]

    assert schedule.orders() == [row("F0F1B0W0B1W1", 0), row("F0B0F1B1W0W1", 1)]
    assert [op.start for op in schedule.device_ops[0]] == [0, 1, 3, 4, 5, 6]
    assert [op.start for op in schedule.device_ops[1]] == [1, 2, 3, 4, 5, 6]
    assert memory_profile(schedule, 0) == ([0, 1, 4, 5, 6, 7], [2, 4, 2.5, 2, 0.5, 0])
    assert memory_profile(schedule, 1) == ([0, 1, 3, 5, 6, 7], [0, 2, 2.5, 1, 0.5, 0])
    assert_valid(schedule, limit=(4.0, 2.5), tight=True)


def test_paper_profile_figures() -> None:
    """The issue's published figures (zero-bubble paper, 1.5B model, p=8, m=24): the classic
    unsplit 1F1B has bubble 0.2431 and ZB-H1 0.1585 in the paper's (span - work) / span."""
    problem = Problem.create(
        8, 24, forward=18.522, backward=18.086, weight=9.337, p2p=0.601, retained=0.3664
    )
    h1 = compute_metrics(baseline("zb-h1", problem))
    classic = compute_metrics(baseline("1f1b", problem.unsplit()))
    assert h1.zb_bubble == pytest.approx(0.1585, abs=5e-5)
    assert classic.zb_bubble == pytest.approx(0.2431, abs=5e-5)
    assert compute_metrics(baseline("zb-h2", problem)).zb_bubble < h1.zb_bubble


@given(problem=problems(split=True, max_chunks=1, placements=("interleaved", "explicit")))
def test_zb_orders_are_valid_on_any_one_chunk_split_problem(problem: Problem) -> None:
    """Unequal stages, latency, any placement, m < p: static orders that never deadlock."""
    for name in ("zb-h1", "zb-h2"):
        schedule = baseline(name, problem)
        assert_valid(schedule, tight=True)
        for row in schedule.device_ops:  # each W after its own B on the device
            seen = set()
            for op in row:
                if op.kind == "B":
                    seen.add(op.microbatch)
                assert op.kind != "W" or op.microbatch in seen


@pytest.mark.parametrize("name", ["zb-h1", "zb-h2"])
def test_refusals_name_the_schedule(name: str) -> None:
    with pytest.raises(ProblemError, match=f"^schedule: {name} needs a split backward"):
        baseline(name, Problem.create(4, 8))
    with pytest.raises(ProblemError, match=f"^schedule: {name} runs one chunk per device"):
        baseline(name, Problem.create(2, 4, weight=1.0, num_chunks=2))
