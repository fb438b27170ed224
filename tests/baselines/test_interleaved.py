"""interleaved-1f1b (Megatron, ppopt/baselines/interleaved.py): closed forms on equal stages, a
hand-written order with its memory peaks, Megatron's schedule table and group size, and the
sizes and placements it refuses."""

from __future__ import annotations

import pytest
from baselines_helpers import checked, tasks, vshape_problem

from ppopt.baselines.interleaved import interleaved_orders, megatron_group_size, schedule_table
from ppopt.baselines.onefoneb import one_f_one_b_orders
from ppopt.errors import ProblemError
from ppopt.metrics import compute_metrics
from ppopt.problem import Problem
from ppopt.validate import memory_peaks


@pytest.mark.parametrize(
    ("p", "v", "m", "f", "b"),
    [
        (2, 2, 4, 1.0, 2.0),
        (4, 2, 8, 1.0, 1.0),
        (4, 2, 8, 1.0, 2.0),
        (4, 3, 12, 1.0, 2.0),
        (3, 2, 9, 1.5, 2.5),
        (2, 4, 6, 1.0, 2.0),
        (8, 2, 16, 1.0, 2.0),
        (4, 4, 4, 1.0, 2.0),
    ],
)
def test_interleaved_closed_form(p, v, m, f, b):
    """Megatron: makespan (m + (p-1)/v) * v * (f + b), bubble ratio (p-1)/(v m) per chunk."""
    problem = Problem.create(p, m, forward=f, backward=b, num_chunks=v)
    metrics = compute_metrics(checked("interleaved-1f1b", problem))
    assert metrics.makespan == pytest.approx((m + (p - 1) / v) * v * (f + b))
    assert metrics.bubble_ratio == pytest.approx((p - 1) / (v * m))


@pytest.mark.parametrize(
    ("p", "v", "m", "f", "b", "w"),
    [
        (4, 2, 8, 1.0, 1.0, 1.0),
        (8, 2, 16, 1.0, 1.0, 1.0),
        (3, 3, 6, 1.5, 1.0, 0.75),
        (5, 4, 10, 1.0, 3.0, 1.0),
        (2, 2, 4, 1.0, 2.0, 0.5),
    ],
)
def test_interleaved_split_closed_form(p, v, m, f, b, w):
    """Split, W right after B, w <= min(f, b): each device adds only (p-1)(f + b) to its work,
    since a B hands its gradient on before its W runs.
    """
    problem = Problem.create(p, m, forward=f, backward=b, weight=w, num_chunks=v)
    metrics = compute_metrics(checked("interleaved-1f1b", problem))
    assert metrics.makespan == pytest.approx(v * m * (f + b + w) + (p - 1) * (f + b))


def test_interleaved_hand_order_and_memory():
    """p=2, v=2, m=4 (g=2): rank 0 warms up 2 + 2 forwards, rank 1 two; peaks 5 and 3."""
    problem = Problem.create(2, 4, forward=1.0, backward=2.0, num_chunks=2)
    orders = interleaved_orders(problem)
    assert orders[0] == tasks(
        "F0:0 F0:1 F2:0 F2:1 | F0:2 B2:0 F0:3 B2:1 F2:2 B0:0 F2:3 B0:1 | B2:2 B2:3 B0:2 B0:3"
    )
    assert orders[1] == tasks(
        "F1:0 F1:1 | F3:0 B3:0 F3:1 B3:1 F1:2 B1:0 F1:3 B1:1 F3:2 B3:2 F3:3 B3:3 | B1:2 B1:3"
    )
    schedule = checked("interleaved-1f1b", problem)
    assert memory_peaks(schedule) == (5.0, 3.0)
    assert compute_metrics(schedule).peak_memory == (5.0, 3.0)
    assert schedule.makespan == 27.0  # (4 + 1/2) * 2 * 3


def test_schedule_table_matches_megatron_example():
    """Megatron's own comment: PP2, group 3, M5, VP2."""
    table = schedule_table(5, 2, 3)
    assert [i for i, _ in table] == [0, 1, 2, 0, 1, 2, 3, 4, 3, 4]
    assert [c for _, c in table] == [0, 0, 0, 1, 1, 1, 0, 0, 1, 1]


@pytest.mark.parametrize(
    ("p", "m", "g"),
    [
        (4, 8, 4),  # a multiple of p: Megatron's default g = p
        (4, 4, 4),
        (4, 6, 6),  # 6 mod 4 = 2, 6 mod 5 = 1 are too small a last group; one group of 6
        (4, 9, 5),  # 9 mod 5 = 4 >= p
        (3, 7, 4),  # 7 mod 3 = 1 < 3, 7 mod 4 = 3 >= 3
        (1, 5, 1),
    ],
)
def test_default_group_size(p, m, g):
    assert megatron_group_size(p, m) == g


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"m": 3}, "num_batches: interleaved-1f1b needs at least num_stages = 4"),  # m < p
        ({"m": 9, "group_size": 4}, "last group has 1 micro-batches"),  # last group < p
        ({"m": 8, "group_size": 3}, "group size must be in [4, 8]"),  # group below p
        ({"m": 8, "group_size": 9}, "group size must be in [4, 8]"),  # group above m
    ],
)
def test_interleaved_rejects_what_megatron_rejects(kwargs, message):
    m = kwargs.pop("m")
    problem = Problem.create(4, m, num_chunks=2)
    with pytest.raises(ProblemError, match=r"^(schedule|num_batches): ") as caught:
        interleaved_orders(problem, **kwargs)
    assert message in str(caught.value)


@pytest.mark.parametrize(("p", "m"), [(4, 6), (4, 9), (3, 7), (4, 10)])
def test_interleaved_uneven_m_runs_and_holds_the_group_memory(p, m):
    """Any m Megatron accepts: valid and tight; peak = warm-up + 1 chunk activations."""
    v = 2
    problem = Problem.create(p, m, forward=1.0, backward=2.0, num_chunks=v)
    g = megatron_group_size(p, m)
    peaks = memory_peaks(checked("interleaved-1f1b", problem))
    assert peaks == tuple(min(2 * (p - r - 1) + (v - 1) * g + 1, v * m) for r in range(p))


def test_interleaved_one_chunk_is_1f1b_and_v_needs_interleaved_placement(seed_problem):
    assert interleaved_orders(seed_problem) == one_f_one_b_orders(seed_problem)
    with pytest.raises(ProblemError, match="^schedule: interleaved-1f1b needs placement"):
        interleaved_orders(vshape_problem(4, 8))
