"""The chunked baselines: interleaved-1f1b (Megatron), zb-v and dualpipev (V placement).

Closed forms on equal stages, hand-written orders and memory peaks for small cases, the
placement / size rules, and validity (tight, within memory) on random unequal problems.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from strategies import problems

from ppopt.baselines import BASELINES, applicable_baselines, baseline
from ppopt.baselines.interleaved import (
    interleaved_orders,
    megatron_group_size,
    schedule_table,
)
from ppopt.baselines.onefoneb import one_f_one_b_orders
from ppopt.baselines.vshape import dualpipev_orders, dualpipev_slots, zbv_orders
from ppopt.errors import ProblemError
from ppopt.metrics import compute_metrics
from ppopt.problem import Problem
from ppopt.schedule import Schedule
from ppopt.tasks import Task
from ppopt.timeline import compute_timeline
from ppopt.validate import assert_valid, memory_peaks


def _tasks(text: str) -> list[Task]:
    """``"F0:1 B2:0"`` -> tasks (kind, stage, 0-based micro-batch); ``|`` marks phases only."""
    out = []
    for word in text.split():
        if word == "|":
            continue
        stage, microbatch = word[1:].split(":")
        out.append(Task(word[0], int(stage), int(microbatch)))
    return out


def _vshape(
    p: int, m: int, f: float = 1.0, b: float = 1.0, w: float | None = 1.0, **memory: object
) -> Problem:
    """A V-placement problem with equal stages (split unless ``w`` is None)."""
    return Problem.create(
        p, m, forward=f, backward=b, weight=w, num_chunks=2, placement="vshape", **memory
    )


def _timed(name: str, problem: Problem) -> Schedule:
    """The named baseline, checked valid and tight by the independent validator."""
    schedule = baseline(name, problem)
    assert_valid(schedule, tight=True)
    return schedule


# ------------------------------------------------------------------------ interleaved-1f1b


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
    metrics = compute_metrics(_timed("interleaved-1f1b", problem))
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
    metrics = compute_metrics(_timed("interleaved-1f1b", problem))
    assert metrics.makespan == pytest.approx(v * m * (f + b + w) + (p - 1) * (f + b))


def test_interleaved_hand_order_and_memory():
    """p=2, v=2, m=4 (g=2): rank 0 warms up 2 + 2 forwards, rank 1 two; peaks 5 and 3."""
    problem = Problem.create(2, 4, forward=1.0, backward=2.0, num_chunks=2)
    orders = interleaved_orders(problem)
    assert orders[0] == _tasks(
        "F0:0 F0:1 F2:0 F2:1 | F0:2 B2:0 F0:3 B2:1 F2:2 B0:0 F2:3 B0:1 | B2:2 B2:3 B0:2 B0:3"
    )
    assert orders[1] == _tasks(
        "F1:0 F1:1 | F3:0 B3:0 F3:1 B3:1 F1:2 B1:0 F1:3 B1:1 F3:2 B3:2 F3:3 B3:3 | B1:2 B1:3"
    )
    schedule = _timed("interleaved-1f1b", problem)
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
        ({"m": 3}, "num_batches: interleaved-1f1b needs at least num_stages = 4"),
        ({"m": 9, "group_size": 4}, "last group has 1 micro-batches"),
        ({"m": 8, "group_size": 3}, "group size must be in [4, 8]"),
        ({"m": 8, "group_size": 9}, "group size must be in [4, 8]"),
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
    peaks = memory_peaks(_timed("interleaved-1f1b", problem))
    assert peaks == tuple(min(2 * (p - r - 1) + (v - 1) * g + 1, v * m) for r in range(p))


def test_interleaved_one_chunk_is_1f1b_and_v_needs_interleaved_placement(seed_problem):
    assert interleaved_orders(seed_problem) == one_f_one_b_orders(seed_problem)
    with pytest.raises(ProblemError, match="^schedule: interleaved-1f1b needs placement"):
        interleaved_orders(_vshape(4, 8))


# ------------------------------------------------------------------------------------ zb-v


def test_zbv_issue_target_51():
    """p=4, m=8, f=b=w=1: device d runs from d to d + 48 without a gap, so makespan 51.

    51 is optimal: the last device cannot start before the (p-1) forwards ahead of it and then
    has 6m = 48 of work.
    """
    problem = _vshape(4, 8, activation=0.5, retained=0.25, memory_limit="1x")
    schedule = _timed("zb-v", problem)
    assert schedule.makespan == 51.0
    for d, row in enumerate(schedule.device_ops):
        assert row[0].start == d and row[-1].end == d + 48
        assert all(a.end == b.start for a, b in zip(row, row[1:], strict=False))
    bound = max(d * 1.0 + problem.device_work(d) for d in range(4))
    assert schedule.makespan == bound
    assert_valid(schedule, limit=problem.memory_caps, tight=True)


@pytest.mark.parametrize(
    ("p", "m", "t"), [(2, 3, 1.0), (3, 5, 2.0), (4, 8, 1.0), (5, 12, 0.5), (8, 16, 1.0)]
)
def test_zbv_zero_bubble_closed_form(p, m, t):
    """T_F = T_B = T_W = t, m >= 2p-1: span 6mt (zero bubble), makespan 6mt + (p-1)t."""
    metrics = compute_metrics(_timed("zb-v", _vshape(p, m, t, t, t)))
    assert metrics.span == pytest.approx(6 * m * t)
    assert metrics.zb_bubble == pytest.approx(0.0, abs=1e-12)
    assert metrics.makespan == pytest.approx(6 * m * t + (p - 1) * t)


def test_zbv_hand_order_and_memory():
    """p=2, m=3, activation 1, retained 0.5: the orders and peaks 4 = 2p (1F1B, merged)."""
    problem = _vshape(2, 3, activation=1.0, retained=0.5)
    orders = zbv_orders(problem)
    assert orders[0] == _tasks(
        "F0:0 F0:1 F0:2 | F3:0 B3:0 W3:0 F3:1 B3:1 W3:1 | B0:0 W0:0 F3:2 B3:2 W3:2 "
        "| B0:1 W0:1 B0:2 W0:2"
    )
    assert orders[1] == _tasks(
        "F1:0 | F2:0 F1:1 | F2:1 B2:0 W2:0 | F1:2 B1:0 W1:0 F2:2 B2:1 W2:1 "
        "| B1:1 B2:2 | B1:2 W1:1 | W2:2 W1:2"
    )
    schedule = _timed("zb-v", problem)
    assert memory_peaks(schedule) == (4.0, 4.0)
    assert problem.reference_peak() == 4.0


@pytest.mark.parametrize(("p", "m"), [(1, 3), (2, 3), (3, 5), (4, 7), (4, 12), (6, 11)])
def test_zbv_memory_is_1f1b_memory(p, m):
    """m >= 2p-1: every device peaks at 2p chunk activations, the merged 1F1B peak (1x)."""
    problem = _vshape(p, m, 1.0, 2.0, 1.5, activation=0.5, retained=0.2, memory_limit="1x")
    schedule = _timed("zb-v", problem)
    assert memory_peaks(schedule) == pytest.approx([2 * p * 0.5] * p)
    assert problem.reference_peak() == pytest.approx(2 * p * 0.5)
    assert_valid(schedule, limit=problem.memory_caps)


def test_zbv_needs_a_split_v_problem():
    with pytest.raises(ProblemError, match="^weight_times: zb-v"):
        zbv_orders(_vshape(4, 8, w=None))
    with pytest.raises(ProblemError, match="^schedule: zb-v needs placement vshape"):
        zbv_orders(Problem.create(4, 8, weight=1.0, num_chunks=2))


# ------------------------------------------------------------------------------- dualpipev


def test_dualpipev_hand_order_and_memory():
    """p=2, m=4, activation 1, retained 0.5: the eight steps by hand; peaks 5 = 2p + 1."""
    problem = _vshape(2, 4, activation=1.0, retained=0.5)
    orders = dualpipev_orders(problem)
    assert orders[0] == _tasks(
        "F0:0 F0:1 | F0:2 F3:0 | B3:0 W3:0 F3:1 | F0:3 B3:1 W3:1 F3:2 B0:0 W0:0 "
        "| B3:2 W3:2 F3:3 B0:1 W0:1 | B3:3 W3:3 B0:2 | W0:2 B0:3 | W0:3"
    )
    assert orders[1] == _tasks(
        "F1:0 F2:0 F1:1 F2:1 | F1:2 B2:0 W2:0 F2:2 B1:0 W1:0 F1:3 B2:1 W2:1 F2:3 B1:1 W1:1 "
        "| B2:2 W2:2 B1:2 W1:2 B2:3 B1:3 | W2:3 W1:3"
    )
    assert memory_peaks(_timed("dualpipev", problem)) == (5.0, 5.0)


@pytest.mark.parametrize(("p", "m"), [(1, 2), (2, 4), (3, 7), (4, 8), (5, 13)])
def test_dualpipev_memory_is_pp_plus_one(p, m):
    """The README's activation 'PP+1' with PP = 2p stages: 2p + 1 chunk activations each."""
    problem = _vshape(p, m, 1.0, 2.0, 0.5, activation=1.0, retained=0.25)
    assert memory_peaks(_timed("dualpipev", problem)) == (2 * p + 1.0,) * p


@pytest.mark.parametrize(
    ("p", "m", "f", "w"),
    [
        (2, 4, 1.0, 1.0),
        (4, 8, 1.0, 1.0),
        (4, 10, 1.0, 1.0),
        (8, 20, 1.0, 1.0),
        (3, 9, 2.0, 0.5),
        (4, 11, 2.0, 1.0),
        (5, 10, 1.5, 3.0),
        (6, 12, 3.0, 1.0),
    ],
)
def test_dualpipev_closed_form_without_overlap(p, m, f, w):
    """f = b per chunk, any w, no latency: makespan 2m(2f + w) + (p-1) max(f, 2f - w).

    At f = b = w = t this is (p-1) t of idle on device 0, the same makespan as ZB-V; the
    README's (p-1)(F&B + B - 3W) = 2(p-1) t assumes F and B run as one atomic overlapped pair
    (checked below).
    """
    metrics = compute_metrics(_timed("dualpipev", _vshape(p, m, f, f, w)))
    assert metrics.makespan == pytest.approx(2 * m * (2 * f + w) + (p - 1) * max(f, 2 * f - w))


@pytest.mark.parametrize(("p", "m", "f"), [(2, 4, 1.0), (4, 8, 1.0), (5, 11, 2.0)])
def test_dualpipev_unsplit_closed_form(p, m, f):
    """Unsplit, f = b: makespan 4mf + 2(p-1)f, half the merged-1F1B bubble (p-1)(2f + 2b)."""
    metrics = compute_metrics(_timed("dualpipev", _vshape(p, m, f, f, None)))
    assert metrics.makespan == pytest.approx(4 * m * f + 2 * (p - 1) * f)


def _atomic_pair_makespan(problem: Problem, slots: list[list[tuple[Task, ...]]]) -> float:
    """Time DualPipe's slots with each overlapped pair atomic: it starts once the device is
    free and every task of the pair is ready, lasts F + full B, and all its tasks end with it.
    """
    end: dict[Task, float] = {}
    pos, free = [0] * len(slots), [0.0] * len(slots)
    moved = True
    while moved:
        moved = False
        for d, row in enumerate(slots):
            while pos[d] < len(row):
                slot = row[pos[d]]
                deps = [
                    (dep, t) for t in slot for dep in problem.dependencies(t) if dep not in slot
                ]
                if any(dep not in end for dep, _ in deps):
                    break
                start = max([free[d]] + [end[dep] + problem.latency(dep, t) for dep, t in deps])
                free[d] = start + sum(problem.duration(t.kind, t.stage) for t in slot)
                end.update((t, free[d]) for t in slot)
                pos[d] += 1
                moved = True
    assert pos == [len(row) for row in slots]
    return max(free)


@pytest.mark.parametrize(("p", "m", "expected"), [(2, 4, 26.0), (4, 10, 66.0), (8, 20, 134.0)])
def test_dualpipev_readme_bubble_with_atomic_pairs(p, m, expected):
    """With atomic F&B pairs (F&B = F + B, no overlap gain) and f = b = w = 1, each device
    idles (p-1)(F&B + B - 3W) = (p-1)(3 + 2 - 3), the README's figure for PP = 2p stages
    (4 devices, 10 micro-batches: 66 units as in DeepSeek's DualPipeV picture).
    """
    problem = _vshape(p, m)
    slots = dualpipev_slots(problem)
    assert sum(len(slot) > 1 for slot in slots[0]) == 2 * (m - 2 * p + 1) + (p - 1)
    makespan = _atomic_pair_makespan(problem, slots)
    assert makespan == expected == 6 * m + (p - 1) * (3 + 2 - 3)


def test_dualpipev_needs_v_placement_and_2p_microbatches():
    with pytest.raises(
        ProblemError, match="^num_batches: dualpipev needs at least 2 \\* num_stages = 8"
    ):
        dualpipev_orders(_vshape(4, 7))
    with pytest.raises(ProblemError, match="^schedule: dualpipev needs placement vshape"):
        dualpipev_orders(Problem.create(4, 8, num_chunks=2))


# ---------------------------------------------------------------- registry and robustness


def test_registry_and_applicability():
    """The names are registered; each baseline is offered exactly where it applies."""
    for name in ("interleaved-1f1b", "zb-v", "dualpipev"):
        assert name in BASELINES
    on_v = applicable_baselines(_vshape(4, 8))
    assert {"zb-v", "dualpipev"} <= set(on_v) and "interleaved-1f1b" not in on_v
    on_v_unsplit = applicable_baselines(_vshape(4, 8, w=None))
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
            ("zb-v", _vshape(p, m)),
            ("dualpipev", _vshape(p, m)),
            ("dualpipev", _vshape(p, m, w=None)),
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
