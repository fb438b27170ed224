"""The greedy scheduler's policies (ppopt/baselines/policy.py): the deadlines the ``deadline``
variant follows, computed by hand from the bottleneck stage, the round trip and the memory cap.
The variants themselves, run by the scheduler, are tested in ``test_greedy.py``."""

from __future__ import annotations

import pytest

from ppopt.baselines.policy import deadlines
from ppopt.problem import Problem
from ppopt.tasks import Task


def test_deadlines_by_hand() -> None:
    """p=3, f=(1,2,1), b=1, w=0.5, latency 0.5, m=4, no limit. Heads 0, 1.5, 4; per
    micro-batch work 2.5, 3.5, 2.5: the bottleneck is stage 1, which (holding all 4) runs
    F(1,0..3) from 1.5 and wants B(1,j) at 1.5 + 2(j+4) + 1.5j = 9.5 + 3.5j. Stage 2 is
    one hop below: B(2,j) by 9.5 + 3.5j - 0.5 - 1, F(2,j) one forward (1) before that (no
    stage after it: no round trip). Stages 0 and 1 get no deadlines."""
    problem = Problem.create(3, 4, forward=[1.0, 2.0, 1.0], backward=1.0, weight=0.5, p2p=0.5)
    due = deadlines(problem, None)
    assert set(due) == {Task(kind, 2, j) for kind in "FB" for j in range(4)}
    for j in range(4):
        assert due[Task("B", 2, j)] == pytest.approx(8.0 + 3.5 * j)
        assert due[Task("F", 2, j)] == pytest.approx(7.0 + 3.5 * j)


def test_deadlines_follow_the_round_trip_and_the_memory_cap() -> None:
    """p=4, f=(1,3,1,1), b=1, no split, latency 0, m=6, limit 2 activations: the bottleneck
    stage 1 (head 1) holds 2, so it wants B(1,j) at 1 + 3(j+2) + j = 7 + 4j. B(2,j) by that
    less b=1; B(3,j) less b(2) and b(3): 5 + 4j; F(2,j) = B(2,j) due - the trip above it
    (f3 + b3 = 2) - f2; F(3,j) = B(3,j) due - f3."""
    problem = Problem.create(4, 6, forward=[1.0, 3.0, 1.0, 1.0], backward=1.0)
    due = deadlines(problem, (2.0,) * 4)
    for j in range(6):
        assert due[Task("B", 2, j)] == pytest.approx(6 + 4 * j)
        assert due[Task("B", 3, j)] == pytest.approx(5 + 4 * j)
        assert due[Task("F", 2, j)] == pytest.approx(3 + 4 * j)
        assert due[Task("F", 3, j)] == pytest.approx(4 + 4 * j)
