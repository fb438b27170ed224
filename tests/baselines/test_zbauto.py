"""The zero-bubble authors' adaptive heuristics (ppopt/baselines/zbauto.py): valid and within
the memory limit on random problems, the equal-time closed forms of ZB-H1/ZB-H2/ZB-V met or
beaten, and the authors' published figures reproduced on the papers' profiles."""

from __future__ import annotations

import pytest
from baselines_helpers import checked, vshape_problem
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import TIMES, problems

from ppopt.baselines import baseline
from ppopt.errors import NotApplicableError
from ppopt.limits import fits
from ppopt.metrics import compute_metrics, peak_memory
from ppopt.problem import Problem
from ppopt.validate import assert_valid


def _span(name: str, problem: Problem) -> float:
    return compute_metrics(checked(name, problem)).span


@settings(max_examples=40, deadline=None)
@given(
    problem=problems(max_devices=5, max_microbatches=12, max_chunks=2, split=True),
    limit=st.sampled_from(["1x", "2x"]),
)
def test_valid_and_within_the_limit_on_random_problems(problem: Problem, limit: str) -> None:
    """Unequal stages, latency, unequal memory: each heuristic that applies is valid, tight
    and within the limit (it declines with one line when no knob setting fits)."""
    problem = problem.with_limit(limit)
    for name in ("zb-auto", "zbv-auto"):
        try:
            schedule = baseline(name, problem)
        except NotApplicableError as error:
            assert str(error).startswith("schedule: ") and "\n" not in str(error)
            continue
        assert_valid(schedule, tight=True, limit=problem.memory_caps)
        assert problem.memory_caps is not None and fits(peak_memory(schedule), problem.memory_caps)


@settings(max_examples=30, deadline=None)
@given(
    p=st.integers(1, 6),
    m=st.integers(1, 14),
    times=st.lists(TIMES, min_size=3, max_size=3),
    p2p=st.sampled_from([0.0, 0.3]),
    limit=st.sampled_from(["1x", "2x"]),
)
def test_one_chunk_always_applies_with_equal_memory(p, m, times, p2p, limit) -> None:
    """With the same memory on every stage the warm-up fits by construction: zb-auto never
    declines, at 1x or 2x, whatever the times."""
    f, b, w = times
    problem = Problem.create(p, m, f, b, weight=w, p2p=p2p, retained=0.3, memory_limit=limit)
    schedule = baseline("zb-auto", problem)
    assert_valid(schedule, tight=True, limit=problem.memory_caps)


@pytest.mark.parametrize("p", [2, 3, 4, 6])
def test_equal_times_at_2x_reach_zb_h2_zero_bubble(p: int) -> None:
    """F = B = W, no latency, 2x memory, m >= 2p-1: ZB-H2's bubble (p-1)(F+B-2W) is zero, so
    the span is the per-device work 3m; zb-auto reaches it too."""
    for m in (2 * p - 1, 2 * p, 4 * p):
        problem = Problem.create(p, m, 1.0, 1.0, weight=1.0, memory_limit="2x")
        assert _span("zb-auto", problem) == pytest.approx(3 * m)


@pytest.mark.parametrize("p", [2, 3, 4, 6])
def test_equal_times_at_1x_not_worse_than_zb_h1(p: int) -> None:
    """At 1x, ZB-H1's span is m(F+B+W) + (p-1)(F+B-W) once m >= p; zb-auto is never longer."""
    for m in (p, 2 * p, 3 * p):
        problem = Problem.create(p, m, 1.0, 1.0, weight=1.0, memory_limit="1x")
        assert _span("zb-auto", problem) <= 3 * m + (p - 1) * 1.0 + 1e-9
        assert _span("zb-auto", problem) <= _span("zb-h1", problem) + 1e-9


@pytest.mark.parametrize("p", [2, 3, 4])
def test_v_equal_times_zero_bubble(p: int) -> None:
    """ZB-V's closed form: F = B = W, no latency, 1x, m >= 2p-1 gives span 6m (no bubble);
    zbv-auto is never longer than that."""
    for m in (2 * p, 3 * p):
        assert _span("zbv-auto", vshape_problem(p, m)) == pytest.approx(6 * m)


#: The 28.3B profile of the zero-bubble paper's Table 9 (p=32, m=96; ms), M_W / M_B = 32h /
#: (34h + 5as) with h=6144, a=64, s=3072.
ZB_28B = {"forward": 10.419, "backward": 10.207, "weight": 7.715, "p2p": 0.408}


def test_zb_2p_28b_row_reproduces_the_authors_heuristic() -> None:
    """ZB-2p, 28.3B, p=32, m=96 at 2x: the authors' heuristic gives 2731.00 ms (issue 17;
    the published bubble 0.0038); ours is at most that, and within 2x."""
    problem = Problem.create(32, 96, **ZB_28B, activation=1.0, retained=0.16495, memory_limit="2x")
    schedule = checked("zb-auto", problem)
    assert round(compute_metrics(schedule).span, 2) <= 2731.00  # the issue quotes 2 decimals
    assert compute_metrics(schedule).zb_bubble <= 0.0038 + 5e-5
    assert fits(peak_memory(schedule), problem.memory_caps or ())


def test_zbv_6b_row_reproduces_the_published_bubble() -> None:
    """ZB-V, 6.2B, p=16, m=48, 1x (per-chunk 14407/14380/9676 µs, p2p 1610 µs): the
    published bubble is 0.0697, where the static zb-v order gives 0.0712 (issue 17)."""
    problem = Problem.create(
        16,
        48,
        14.407,
        14.380,
        weight=9.676,
        p2p=1.610,
        num_chunks=2,
        placement="vshape",
        activation=0.5,
        retained=0.5 * 0.11679,
        memory_limit="1x",
    )
    bubble = compute_metrics(checked("zbv-auto", problem)).zb_bubble
    assert bubble <= 0.0697 + 5e-5
    assert bubble < compute_metrics(checked("zb-v", problem)).zb_bubble


def test_declines_outside_its_shape() -> None:
    with pytest.raises(NotApplicableError, match="^schedule: zb-auto needs a split backward"):
        baseline("zb-auto", Problem.create(4, 8))
    with pytest.raises(NotApplicableError, match="^schedule: zbv-auto needs placement vshape"):
        baseline("zbv-auto", Problem.create(4, 8, weight=1.0))


def test_issue_unequal_v_instance_beats_the_authors_figure() -> None:
    """Issue 17's V instance (p=8, m=32, F=10 B=14 W=10 ms, p2p 0.5, 1x): the authors'
    heuristic gives 0.0299, ppopt's static zb-v 0.0337; zbv-auto is at most the former."""
    problem = Problem.create(
        8, 32, 10.0, 14.0, weight=10.0, p2p=0.5, num_chunks=2, placement="vshape"
    )
    assert compute_metrics(checked("zbv-auto", problem)).zb_bubble <= 0.0299


@settings(max_examples=15, deadline=None)
@given(
    p=st.integers(2, 8),
    m_per_p=st.integers(2, 4),
    spread=st.floats(0.0, 0.3),
    seed=st.integers(0, 1000),
    limit=st.sampled_from(["1x", "2x"]),
)
def test_v_applies_on_unequal_stages(p, m_per_p, spread, seed, limit) -> None:
    """Unequal stage times stall the V greedy built on them (an input not yet placed); the
    median-time construction, timed on the true times, still gives a valid order within the
    limit, so zbv-auto never declines with equal memory and m >= 2p."""
    import random

    rng = random.Random(seed)
    n = 2 * p
    f = [1.0 + rng.uniform(-spread, spread) for _ in range(n)]
    problem = Problem.create(
        p, m_per_p * p, f, [1.1 * x for x in f], weight=[0.8 * x for x in f], p2p=0.05,
        num_chunks=2, placement="vshape", activation=0.5, retained=0.15, memory_limit=limit,
    )  # fmt: skip
    schedule = baseline("zbv-auto", problem)
    assert_valid(schedule, tight=True, limit=problem.memory_caps)
