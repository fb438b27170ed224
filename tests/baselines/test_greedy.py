"""The memory-aware greedy list scheduler: never above its limit, never stuck, always valid and
tight once timed; hand-computed orders and memory on tiny cases; known optima and the
zero-bubble figures it must reach."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import problems

from ppopt.baselines import baseline
from ppopt.baselines.greedy import (
    applicable_preferences,
    best_greedy,
    greedy_orders,
    greedy_schedules,
)
from ppopt.baselines.policy import PREFERENCES
from ppopt.errors import NoScheduleError, ProblemError, UnknownScheduleError
from ppopt.metrics import compute_metrics, memory_profile
from ppopt.problem import Problem
from ppopt.tasks import Task
from ppopt.timeline import compute_timeline
from ppopt.validate import assert_valid, memory_peaks

#: The zero-bubble paper's published profile of its 1.5B model (issue 4), p=8, m=24.
PAPER = Problem.create(
    8, 24, forward=18.522, backward=18.086, weight=9.337, p2p=0.601, retained=0.3664
)


def needs(problem: Problem) -> list[float]:
    """Per device, the activation one micro-batch holds there at once (sum over its stages)."""
    return [
        sum(problem.activation[s] for s in problem.stages_on(d)) for d in range(problem.num_devices)
    ]


@st.composite
def limited(draw: st.DrawFn) -> tuple[Problem, tuple[float, ...]]:
    """A random problem and a random per-device limit that holds one micro-batch (often just)."""
    problem = draw(
        problems(
            max_devices=5, max_microbatches=7, placements=("interleaved", "vshape", "explicit")
        )
    )
    factors = st.sampled_from([1.0, 1.5, 2.0]) | st.floats(1.0, 4.0)
    if draw(st.booleans()):  # one value for all devices, as `Nx` gives
        return problem, (max(needs(problem)) * draw(factors),)
    return problem, tuple(need * draw(factors) for need in needs(problem))


@settings(max_examples=60)
@given(case=limited(), prefer=st.sampled_from(sorted(PREFERENCES)))
def test_greedy_stays_within_any_limit_and_is_valid(
    case: tuple[Problem, tuple[float, ...]], prefer: str
) -> None:
    """Every variant finishes (no deadlock), keeps every device at or below its limit and,
    timed by the engine, passes the independent validator including memory."""
    problem, limit = case
    schedule = compute_timeline(problem, greedy_orders(problem, limit, prefer), prefer)
    assert_valid(schedule, limit=limit, tight=True)
    caps = limit * problem.num_devices if len(limit) == 1 else limit
    for peak, cap in zip(memory_peaks(schedule), caps, strict=True):
        assert peak <= cap * (1 + 1e-9)


@settings(max_examples=25)
@given(problem=problems(max_devices=4, max_microbatches=6))
def test_greedy_without_limit_is_valid(problem: Problem) -> None:
    for prefer, schedule in greedy_schedules(problem).items():
        assert schedule.name == f"greedy-{prefer}"
        assert_valid(schedule, tight=True)


@settings(max_examples=25)
@given(problem=problems(max_devices=4, max_microbatches=6))
def test_limit_of_one_microbatch_runs_them_one_after_another_on_a_single_device(
    problem: Problem,
) -> None:
    """With the limit at exactly one micro-batch's need the scheduler still finishes, and a
    device never holds more than that need."""
    limit = tuple(needs(problem))
    schedule = best_greedy(problem, limit)
    assert_valid(schedule, limit=limit, tight=True)


def test_split_single_device_hand_computed() -> None:
    """p=1, m=2, F=B=W=1, activation 2, retained 0.5. Limit 2: F1 would need 0.5 + 2 after
    B0, so W0 must run first; limit 2.5: F1 fits before W0 (F before W when memory allows)."""
    problem = Problem.create(1, 2, forward=1, backward=1, weight=1, activation=2, retained=0.5)

    def order(text: str) -> list[list[Task]]:
        return [[Task(text[k], 0, int(text[k + 1])) for k in range(0, len(text), 2)]]

    assert greedy_orders(problem, (2.0,)) == order("F0B0W0F1B1W1")
    tight = compute_timeline(problem, greedy_orders(problem, (2.5,)), "greedy")
    assert tight.orders() == order("F0B0F1B1W0W1")
    # memory by hand: +2 at 0, -1.5 at 2 (B0 ends) and +2 (F1 starts), -1.5 at 4, -0.5, -0.5
    assert memory_profile(tight, 0) == ([0.0, 2.0, 4.0, 5.0, 6.0], [2.0, 2.5, 1.0, 0.5, 0.0])


def test_two_devices_at_one_microbatch_each() -> None:
    """p=2, m=3, unsplit, limit = one activation per device: micro-batches go strictly one at
    a time, so the makespan is m times one micro-batch's critical path 2(F+B)."""
    problem = Problem.create(2, 3, forward=1.0, backward=2.0)
    schedule = best_greedy(problem, (1.0,))
    assert schedule.makespan == pytest.approx(3 * 2 * (1.0 + 2.0))
    assert_valid(schedule, limit=(1.0,), tight=True)


@pytest.mark.parametrize("p", [1, 2, 3, 5])
@pytest.mark.parametrize("m", [1, 2, 4, 9])
def test_fill_reaches_the_optimum_on_equal_unsplit_stages(p: int, m: int) -> None:
    """Equal stages, no latency, unsplit: no schedule beats (m + p - 1)(F + B) (device 0 idles
    at least (p-1)(F+B)); ``fill`` reaches it, unlimited and at 1F1B's memory."""
    problem = Problem.create(p, m, forward=1.0, backward=2.0)
    optimum = (m + p - 1) * 3.0
    for limit in (None, (problem.reference_peak(),)):
        schedule = compute_timeline(problem, greedy_orders(problem, limit, "fill"))
        assert schedule.makespan == pytest.approx(optimum)


def test_staged_fit_matches_zb_h1_on_the_paper_profile_at_1x() -> None:
    """At 1F1B's memory the ``staged-fit`` variant finds ZB-H1's schedule quality (the
    paper's 0.1585 bubble), never above 1x; at 2x ``staged2`` beats ZB-H2's handcrafted one."""
    ref = PAPER.reference_peak()
    one_x = compute_metrics(compute_timeline(PAPER, greedy_orders(PAPER, (ref,), "staged-fit")))
    h1 = compute_metrics(baseline("zb-h1", PAPER))
    assert one_x.zb_bubble == pytest.approx(h1.zb_bubble) == pytest.approx(0.1585, abs=5e-5)
    assert max(one_x.peak_memory) <= ref * (1 + 1e-9)
    two_x = compute_metrics(best_greedy(PAPER, (2 * ref,), objective="span"))
    h2 = compute_metrics(baseline("zb-h2", PAPER))
    assert two_x.zb_bubble < h2.zb_bubble
    assert two_x.zb_bubble < 0.05


def test_registered_greedy_uses_the_problem_limit() -> None:
    """``baseline('greedy', …)`` takes ``problem.memory_caps``: at 1x it stays within
    1F1B's peak even though unlimited it would hold more."""
    problem = Problem.create(
        4, 12, forward=1, backward=1, weight=1, retained=0.5, memory_limit="none"
    )
    free = baseline("greedy", problem)
    capped = baseline("greedy", problem.with_limit(problem.memory_limit.parse("1x")))
    ref = problem.reference_peak()
    assert max(compute_metrics(free).peak_memory) > ref
    assert max(compute_metrics(capped).peak_memory) <= ref * (1 + 1e-9)
    assert capped.name == "greedy"


def test_best_greedy_is_the_best_variant() -> None:
    ref = PAPER.reference_peak()
    variants = greedy_schedules(PAPER, (ref,))
    best = best_greedy(PAPER, (ref,))
    assert best.makespan == min(s.makespan for s in variants.values())
    assert best.name == "greedy"


def test_limit_below_one_microbatch_is_refused() -> None:
    problem = Problem.create(2, 4, num_chunks=2, activation=[1, 2, 3, 4])  # device 0 needs 4
    with pytest.raises(NoScheduleError, match=r"^memory.limit: device 1 needs 4 .* limit is 3"):
        greedy_orders(problem, (3.0, 10.0))


def test_bad_arguments_are_named() -> None:
    problem = Problem.create(2, 2)
    with pytest.raises(UnknownScheduleError, match="^prefer: expected one of fill"):
        greedy_orders(problem, None, "lazy")
    with pytest.raises(
        ProblemError, match=r"^memory.limit: expected 1 or 2 values \(one per device\), got 3"
    ):
        greedy_orders(problem, (1.0, 1.0, 1.0))


@settings(max_examples=80)
@given(case=limited())
def test_deadline_variant_is_valid_within_any_limit(
    case: tuple[Problem, tuple[float, ...]],
) -> None:
    """One stage per device, where the deadlines apply: it finishes (waiting for urgent
    arrivals never stalls it), stays within the limit and passes the validator."""
    problem, limit = case
    assume(problem.num_chunks == 1)
    schedule = compute_timeline(problem, greedy_orders(problem, limit, "deadline"))
    assert_valid(schedule, limit=limit, tight=True)


def test_deadline_variant_needs_one_stage_per_device() -> None:
    """With chunks it has no deadlines to follow: it is ``fill``, and not offered."""
    chunked = Problem.create(2, 4, num_chunks=2, placement="vshape")
    assert "deadline" not in applicable_preferences(chunked)
    assert greedy_orders(chunked, None, "deadline") == greedy_orders(chunked, None, "fill")
    assert "deadline" in applicable_preferences(Problem.create(2, 4))


@settings(max_examples=40, deadline=None)
@given(
    p=st.sampled_from([2, 4, 6]),
    half=st.integers(1, 6),
    split=st.booleans(),
    seed=st.integers(0, 10**6),
    room=st.integers(0, 3),
)
def test_two_copies_never_stuck_never_above_the_limit(
    p: int, half: int, split: bool, seed: int, room: int
) -> None:
    """Two model copies (each admits its own micro-batches at its first stage, the banker's
    order the admission order): every variant finishes, valid and tight, within a limit from
    one micro-batch's need (a device's larger stage activation) to a few more."""
    import random

    rng = random.Random(seed)
    act = [float(rng.randint(1, 3)) for _ in range(p)]
    problem = Problem.create(
        p,
        2 * half,
        forward=[rng.uniform(0.5, 2) for _ in range(p)],
        backward=[rng.uniform(0.5, 2) for _ in range(p)],
        weight=[rng.uniform(0.2, 1) for _ in range(p)] if split else None,
        activation=act,
        p2p=rng.choice([0.0, 0.2]),
        copies=2,
        memory_limit="none",
    )
    limit = [problem.microbatch_memory(d) + room for d in range(p)]
    for prefer, schedule in greedy_schedules(problem, limit).items():
        assert_valid(schedule, limit, tight=True)
        assert all(
            pk <= cap + 1e-9 for pk, cap in zip(memory_peaks(schedule), limit, strict=True)
        ), prefer
