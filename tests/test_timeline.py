"""The timeline engine: closed forms, hand-computed latency cases, engine vs the independent
validator on random orders, deadlocks and malformed orders."""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import problems, valid_orders

from ppopt.baselines import baseline
from ppopt.errors import DeadlockError, OrderError
from ppopt.problem import Problem
from ppopt.tasks import Task
from ppopt.timeline import TaskTable, compute_timeline
from ppopt.validate import check_tight, validate

# (p, m) pairs including m < p, p = 1 and m = 1.
SHAPES = [(1, 1), (1, 5), (2, 3), (3, 3), (4, 2), (4, 8), (8, 1), (5, 13), (8, 3)]


@pytest.mark.parametrize("name", ["1f1b", "gpipe"])
@pytest.mark.parametrize(("p", "m"), SHAPES)
@pytest.mark.parametrize(("f", "b"), [(1.0, 2.0), (0.75, 1.25)])
def test_makespan_closed_form(name: str, p: int, m: int, f: float, b: float) -> None:
    """Equal stages, no latency: 1F1B and GPipe both take (m + p - 1)(f + b)."""
    schedule = baseline(name, Problem.create(p, m, forward=f, backward=b))
    assert schedule.makespan == pytest.approx((m + p - 1) * (f + b), rel=1e-12)
    assert validate(schedule) == [] and check_tight(schedule) == []


@given(
    p=st.integers(1, 10),
    m=st.integers(1, 20),
    f=st.floats(0.1, 10.0),
    b=st.floats(0.1, 10.0),
    name=st.sampled_from(["1f1b", "gpipe"]),
)
def test_makespan_closed_form_random(p: int, m: int, f: float, b: float, name: str) -> None:
    schedule = baseline(name, Problem.create(p, m, forward=f, backward=b))
    assert schedule.makespan == pytest.approx((m + p - 1) * (f + b), rel=1e-9)


def _times(schedule) -> dict[str, tuple[float, float]]:
    return {op.task.label(): (op.start, op.end) for op in schedule.ops()}


def test_one_f_one_b_with_latency_by_hand() -> None:
    """p=2, m=2, f=1, b=2, p2p=0.5, worked out on paper from the 1F1B orders
    device 1: F1 F2 B1 B2 and device 2: F1 B1 F2 B2."""
    schedule = baseline("1f1b", Problem.create(2, 2, forward=1.0, backward=2.0, p2p=0.5))
    assert _times(schedule) == {
        "F1@s1": (0.0, 1.0),
        "F2@s1": (1.0, 2.0),
        "F1@s2": (1.5, 2.5),  # F1@s1 ends at 1, + 0.5
        "B1@s2": (2.5, 4.5),  # same device as its F: no latency
        "F2@s2": (4.5, 5.5),  # device busy until 4.5 (data arrived at 2.5)
        "B2@s2": (5.5, 7.5),
        "B1@s1": (5.0, 7.0),  # B1@s2 ends at 4.5, + 0.5
        "B2@s1": (8.0, 10.0),  # B2@s2 ends at 7.5, + 0.5
    }
    assert schedule.makespan == 10.0 == 3 * 3 + 2 * 0.5


def test_vshape_latency_only_between_devices() -> None:
    """V-shape p=2 (stages 0 1 1 0), m=1, f=b=1, p2p=0.5: the turns at stages 2->3 and at the
    last stage stay on one device and wait nothing."""
    problem = Problem.create(
        2, 1, forward=1.0, backward=1.0, p2p=0.5, num_chunks=2, placement="vshape"
    )
    orders = [
        [Task("F", 0, 0), Task("F", 3, 0), Task("B", 3, 0), Task("B", 0, 0)],
        [Task("F", 1, 0), Task("F", 2, 0), Task("B", 2, 0), Task("B", 1, 0)],
    ]
    schedule = compute_timeline(problem, orders)
    assert _times(schedule) == {
        "F1@s1": (0.0, 1.0),
        "F1@s2": (1.5, 2.5),
        "F1@s3": (2.5, 3.5),
        "F1@s4": (4.0, 5.0),
        "B1@s4": (5.0, 6.0),
        "B1@s3": (6.5, 7.5),
        "B1@s2": (7.5, 8.5),
        "B1@s1": (9.0, 10.0),
    }


# ----------------------------------------------------------------------- engine vs validator


@given(data=st.data(), problem=problems())
def test_engine_output_is_valid_and_tight(data: st.DataObject, problem: Problem) -> None:
    orders = data.draw(valid_orders(problem))
    schedule = compute_timeline(problem, orders, "random")
    assert schedule.orders() == orders  # the engine keeps each device's order
    assert [op.device for op in schedule.ops()] == [
        problem.device_of(op.stage) for op in schedule.ops()
    ]
    assert validate(schedule) == []
    assert check_tight(schedule) == []


@given(data=st.data(), problem=problems(max_devices=4, max_microbatches=5))
def test_engine_is_deterministic_and_bounded(data: st.DataObject, problem: Problem) -> None:
    """Timing the same orders twice gives identical floats; the makespan is at least the
    busiest device's work and one micro-batch's whole forward-backward chain with its
    latencies."""
    orders = data.draw(valid_orders(problem))
    once, twice = compute_timeline(problem, orders), compute_timeline(problem, orders)
    assert once.device_ops == twice.device_ops
    work = max(problem.device_work(d) for d in range(problem.num_devices))
    place = problem.placement
    hops = sum(place[s] != place[s + 1] for s in range(problem.num_stages - 1))
    chain = sum(problem.forward) + sum(problem.backward) + 2 * hops * problem.p2p
    assert once.makespan >= max(work, chain) * (1 - 1e-12)


# ----------------------------------------------------------------------------- deadlocks


def test_deadlock_across_two_devices_names_the_cycle() -> None:
    """Device 1 starts with B1@s1, which needs device 2's backward, which needs F1@s1."""
    problem = Problem.create(2, 1)
    orders = [
        [Task("B", 0, 0), Task("F", 0, 0)],
        [Task("F", 1, 0), Task("B", 1, 0)],
    ]
    with pytest.raises(DeadlockError) as info:
        compute_timeline(problem, orders)
    message = str(info.value)
    assert "deadlock" in message
    assert "B1@s1" in message and "F1@s2" in message  # the two waiting tasks
    assert "\n" not in message


def test_deadlock_on_one_device() -> None:
    problem = Problem.create(1, 2, weight=1.0)
    orders = [
        [
            Task("F", 0, 0),
            Task("W", 0, 0),
            Task("B", 0, 0),
            Task("F", 0, 1),
            Task("B", 0, 1),
            Task("W", 0, 1),
        ]
    ]
    with pytest.raises(DeadlockError, match="W1@s1"):
        compute_timeline(problem, orders)


def _stuck_heads(problem: Problem, orders: list[list[Task]]) -> tuple[set[Task], set[Task]]:
    """Run the orders ignoring time; return (first task of each stuck device, tasks never run)."""
    done: set[Task] = set()
    pos = [0] * len(orders)
    moved = True
    while moved:
        moved = False
        for d, order in enumerate(orders):
            while pos[d] < len(order) and all(
                dep in done for dep in problem.dependencies(order[pos[d]])
            ):
                done.add(order[pos[d]])
                pos[d] += 1
                moved = True
    heads = {order[pos[d]] for d, order in enumerate(orders) if pos[d] < len(order)}
    return heads, set(problem.tasks()) - done


@given(data=st.data(), problem=problems(max_devices=4, max_microbatches=4))
def test_moving_a_task_before_its_ancestor_deadlocks(data: st.DataObject, problem: Problem) -> None:
    """Put a B before its own F (or a W before its own B) on their device: a cycle. The error
    names only tasks that really wait: each 'waits at X for Y' has X a stuck device's next
    task and Y a task that can never run."""
    orders = [list(order) for order in data.draw(valid_orders(problem))]
    late = data.draw(st.sampled_from([t for t in problem.tasks() if t.kind != "F"]))
    early = (
        problem.dependencies(late)[0]
        if late.kind == "W"
        else Task("F", late.stage, late.microbatch)
    )
    order = orders[problem.device_of(late.stage)]
    order.remove(late)
    order.insert(order.index(early), late)
    with pytest.raises(DeadlockError) as info:
        compute_timeline(problem, orders)
    heads, never = _stuck_heads(problem, orders)
    pairs = re.findall(r"waits at (\S+) for (\S+)", str(info.value))
    assert pairs, str(info.value)
    head_labels = {t.label() for t in heads}
    never_labels = {t.label() for t in never}
    for waiting, blocker in pairs:
        assert waiting in head_labels
        assert blocker in never_labels


# ----------------------------------------------------------------------------- bad orders


def _seed_orders(problem: Problem) -> list[list[Task]]:
    return baseline("1f1b", problem).orders()


def test_missing_task_is_an_order_error(seed_problem: Problem) -> None:
    orders = _seed_orders(seed_problem)
    orders[2].remove(Task("B", 2, 5))
    with pytest.raises(OrderError, match=r"1 tasks are in no device order, e.g. B6@s3"):
        compute_timeline(seed_problem, orders)


def test_duplicate_task_is_an_order_error(seed_problem: Problem) -> None:
    orders = _seed_orders(seed_problem)
    orders[1].append(Task("F", 1, 0))
    with pytest.raises(OrderError, match=r"device 2: F1@s2 appears twice"):
        compute_timeline(seed_problem, orders)


def test_task_on_the_wrong_device_is_an_order_error(seed_problem: Problem) -> None:
    orders = _seed_orders(seed_problem)
    orders[0].remove(Task("F", 0, 3))
    orders[3].insert(0, Task("F", 0, 3))
    with pytest.raises(OrderError, match=r"device 4: F4@s1 belongs on device 1"):
        compute_timeline(seed_problem, orders)


@pytest.mark.parametrize(
    "intruder",
    [
        Task("W", 0, 0),  # no W in an unsplit problem
        Task("F", 0, 8),  # micro-batch 8 of 0..7
        Task("F", -1, 0),  # no stage -1
    ],
)
def test_foreign_task_is_an_order_error(seed_problem: Problem, intruder: Task) -> None:
    orders = _seed_orders(seed_problem)
    orders[0].append(intruder)
    with pytest.raises(OrderError, match="is not a task of this problem"):
        compute_timeline(seed_problem, orders)


def test_wrong_number_of_device_orders(seed_problem: Problem) -> None:
    with pytest.raises(OrderError, match="expected 4 device orders, got 3"):
        compute_timeline(seed_problem, _seed_orders(seed_problem)[:3])


# ------------------------------------------------------------------- timing after a cut


def _timing_or_deadlock(timing: Callable[[], tuple[list[float], list[float]]]) -> object:
    try:
        return timing()
    except DeadlockError:
        return "deadlock"


@given(data=st.data(), problem=problems(max_devices=4, max_microbatches=5))
def test_timing_after_a_cut_equals_the_whole_timing(data: st.DataObject, problem: Problem) -> None:
    """Orders changed only from some time ``t`` on (each device's tasks that started at ``t``
    or later reshuffled at random, deadlocks included) timed after the cut at ``t`` give the
    very floats (or the deadlock) of timing them whole."""
    table = TaskTable(problem)
    before = table.ids(data.draw(valid_orders(problem)))
    start, end = table.times(before)
    t = data.draw(st.sampled_from(sorted(set(start[tid] for row in before for tid in row))))
    cuts = [bisect_left(row, t, key=start.__getitem__) for row in before]
    shuffle = data.draw(st.randoms(use_true_random=False)).shuffle
    after = []
    for row, cut in zip(before, cuts, strict=True):
        rest = row[cut:]
        shuffle(rest)
        after.append(row[:cut] + rest)
    whole = _timing_or_deadlock(lambda: table.times(after))
    assert _timing_or_deadlock(lambda: table.times_after(after, start, end, cuts)) == whole
