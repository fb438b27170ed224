"""Two model copies (``copies: 2``, DualPipe; docs/contract.md §1): the layout and its rules in
the problem, the validator catching a task of the wrong copy, a missing or extra task and a
broken chain at the copy boundary, and the engine timing two-copy orders (with pairs) tight
and valid. Closed forms are written from the contract, not read from the code."""

from __future__ import annotations

import random
import re

import pytest
from strategies import random_orders

from ppopt.baselines import baseline
from ppopt.errors import OrderError, ProblemError
from ppopt.problem import Problem
from ppopt.schedule import Schedule
from ppopt.tasks import Kind, Task
from ppopt.timeline import compute_timeline
from ppopt.validate import check_tight, validate


def _two(p: int = 4, m: int = 8, **kwargs: object) -> Problem:
    kwargs.setdefault("memory_limit", "none")
    return Problem.create(p, m, copies=2, **kwargs)


# ------------------------------------------------------------------------------- the rule


def test_layout_two_chunks_on_the_v_with_each_model_stage_twice() -> None:
    problem = _two(4, 8, forward=[1, 2, 3, 4], backward=[5, 6, 7, 8], activation=[1, 2, 3, 4])
    assert problem.num_chunks == 2 and problem.placement_name == "vshape"
    # copy 0 stage j on device j, copy 1 stage j (virtual p+j) on device p-1-j
    assert problem.placement == (0, 1, 2, 3, 3, 2, 1, 0)
    assert problem.forward == (1, 2, 3, 4) * 2 and problem.backward == (5, 6, 7, 8) * 2
    assert problem.activation == (1, 2, 3, 4) * 2
    # one value per virtual stage is taken as it is (the schedule file's form)
    assert _two(2, 4, forward=[1, 2, 3, 4]).forward == (1, 2, 3, 4)


def test_tasks_are_each_micro_batch_on_its_own_copy() -> None:
    p, m = 4, 6
    problem = _two(p, m, weight=1.0)
    expected = {
        Task(kind, s, i)
        for kind in (Kind.F, Kind.B, Kind.W)
        for s in range(2 * p)
        for i in range(m)
        if (s < p) == (i < m // 2)
    }
    assert set(problem.tasks()) == expected and len(problem.tasks()) == len(expected)
    assert problem.num_tasks == 3 * p * m
    for kind, s, i in [(k, s, i) for k in "FBW" for s in range(2 * p) for i in range(m)]:
        assert problem.has_task(Task(Kind(kind), s, i)) == (Task(Kind(kind), s, i) in expected)


def test_each_copy_is_a_chain_of_its_own() -> None:
    p = 4
    problem = _two(p, 8, p2p=0.5)
    # copy 1 starts at virtual stage p: its first F waits for nothing
    assert problem.edges[Kind.F, p] == ()
    assert problem.dependencies(Task(Kind.F, p, 5)) == ()
    # copy 0 turns at stage p-1: its B waits for its own F there, not for B of stage p
    assert problem.dependencies(Task(Kind.B, p - 1, 1)) == (Task(Kind.F, p - 1, 1),)
    assert problem.dependencies(Task(Kind.B, 2 * p - 1, 5)) == (Task(Kind.F, 2 * p - 1, 5),)
    assert problem.dependencies(Task(Kind.F, p + 1, 5)) == (Task(Kind.F, p, 5),)
    assert problem.latency(Task(Kind.F, p, 5), Task(Kind.F, p + 1, 5)) == 0.5


def test_chains_work_and_memory_unit_by_hand() -> None:
    """p=4, F 1..4, B 2 everywhere, p2p 0.5, m=8: sums written out per copy."""
    problem = _two(4, 8, forward=[1, 2, 3, 4], backward=2, p2p=0.5, activation=[1, 2, 1, 1])
    # copy 1 stage j is virtual 4+j: the same heads as copy 0
    assert [problem.forward_head(s) for s in range(8)] == [0, 1.5, 4, 7.5] * 2
    assert [problem.backward_chain(s) for s in range(8)] == [0, 2.5, 5, 7.5] * 2
    # from the end of F(s) to the start of B(s): forwards and backwards above, 2 hops each
    assert problem.round_trip(0) == (2 + 3 + 4) + 3 * 2 + 6 * 0.5
    assert problem.round_trip(3) == problem.round_trip(7) == 0
    # each device runs its two stages for m/2 micro-batches each
    for d in range(4):
        stages = (d, 7 - d)
        work = sum((problem.forward[s] + 2) * 4 for s in stages)
        assert problem.device_work(d) == work
    assert problem.total_work() == sum((f + 2) * 8 for f in (1, 2, 3, 4))
    # the Nx unit: 1F1B of one copy running all 8 micro-batches (device 0 holds 4 x 1,
    # device 1 3 x 2), a micro-batch meets one of a device's stages
    assert problem.reference_peak() == 6.0
    assert baseline("1f1b", problem.one_copy()).makespan > 0
    assert [problem.microbatch_memory(d) for d in range(4)] == [1, 2, 2, 1]


def test_link_list_is_one_latency_per_device_link_both_copies_cross() -> None:
    """``p2p_time`` of ``p-1`` values: entry d is the link between devices d and d+1; copy
    1's stage j -> j+1 runs from device p-1-j to p-2-j, so it crosses link p-2-j."""
    p = 4
    problem = _two(p, 8, p2p=[0.1, 0.2, 0.3])
    for j in range(p - 1):
        assert problem.hop(j, j + 1) == [0.1, 0.2, 0.3][j]
        assert problem.hop(p + j, p + j + 1) == [0.1, 0.2, 0.3][p - 2 - j]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"copies": 3}, "copies: must be 1 or 2, got 3"),
        ({"copies": 2, "num_devices": 3}, "num_stages: copies 2 needs an even num_stages"),
        ({"copies": 2, "num_microbatches": 5}, "num_batches: copies 2 needs an even num_batches"),
        ({"copies": 2, "num_chunks": 3}, "copies: 2 runs copy 1 on the devices in reverse"),
        ({"copies": 2, "placement": [0, 1, 1, 0, 0, 1, 1, 0]}, "placement: expected"),
        ({"copies": 2, "placement": [0, 1, 0, 1]}, "copies: 2 runs copy 1 on the devices"),
        ({"copies": 2, "recompute": "all"}, "copies: 2 cannot be combined with memory.recompute"),
        ({"copies": 2, "offload": "all"}, "copies: 2 cannot be combined with memory.offload"),
        (
            {"copies": 2, "microbatch_scale": [1, 2, 1, 2]},
            "copies: 2 cannot be combined with microbatch_scale",
        ),
        ({"copies": 2, "runtime": "torch"}, "copies: 2 cannot be combined with runtime: torch"),
    ],
)
def test_unsupported_combinations_are_refused_in_one_line(kwargs: dict, words: str) -> None:
    args = {"num_devices": 2, "num_microbatches": 4, "memory_limit": "none", **kwargs}
    with pytest.raises(ProblemError, match="^" + re.escape(words)) as caught:
        Problem.create(**args)
    assert "\n" not in str(caught.value)


# -------------------------------------------------------------------------- the validator


def _dualpipe() -> Schedule:
    return baseline("dualpipe", _two(4, 8, forward=[1, 1.5, 1, 0.5], backward=2, p2p=0.25))


def _with_ops(schedule: Schedule, rows: list[list]) -> Schedule:
    return Schedule(schedule.problem, "edited", tuple(tuple(row) for row in rows))


def test_validator_accepts_dualpipe() -> None:
    schedule = _dualpipe()
    assert validate(schedule) == [] and check_tight(schedule) == []


def test_validator_catches_a_task_of_the_wrong_copy() -> None:
    """Micro-batch 1 (copy 1) on copy 2's first stage: not a task of the problem, and its
    own task there is then missing."""
    good = _dualpipe()
    rows = [list(row) for row in good.device_ops]
    k = next(n for n, op in enumerate(rows[3]) if (op.kind, op.stage) == (Kind.F, 4))
    moved = rows[3][k]
    rows[3][k] = moved._replace(microbatch=0)
    found = validate(_with_ops(good, rows))
    assert any(
        "F1@s5 runs micro-batch 1 of model copy 1 on stage 5, a stage of copy 2" in v for v in found
    )
    assert any(
        f"{Task(Kind.F, 4, moved.microbatch).label()} is in no device's ops" in v for v in found
    )


def test_validator_catches_a_missing_and_an_extra_task() -> None:
    good = _dualpipe()
    rows = [list(row) for row in good.device_ops]
    dropped = rows[0].pop()
    assert any(
        f"{Task(dropped.kind, dropped.stage, dropped.microbatch).label()} is in no device's ops"
        in v
        for v in validate(_with_ops(good, rows))
    )
    rows = [list(row) for row in good.device_ops]
    last = rows[0][-1]
    # B of micro-batch 8 (copy 2) on stage 1 (copy 1) appended after the device's last op
    rows[0].append(
        last._replace(kind=Kind.B, stage=0, microbatch=7, start=last.end, end=last.end + 2)
    )
    assert any(
        "B8@s1 runs micro-batch 8 of model copy 2" in v for v in validate(_with_ops(good, rows))
    )


def test_validator_checks_the_chains_at_the_copy_boundary() -> None:
    """The turn of copy 1 (B of its last stage after its F) is checked, and no edge joins the
    copies: copy 2's first forward at time 0 is fine, whatever copy 1's last stage does."""
    problem = _two(2, 2, forward=1, backward=1)
    # device 1: F(0,0) F(3,1) B(3,1) B(0,0); device 2: F(2,1) F(1,0) B(1,0) B(2,1)
    orders = [
        [Task(Kind.F, 0, 0), Task(Kind.F, 3, 1), Task(Kind.B, 3, 1), Task(Kind.B, 0, 0)],
        [Task(Kind.F, 2, 1), Task(Kind.F, 1, 0), Task(Kind.B, 1, 0), Task(Kind.B, 2, 1)],
    ]
    good = compute_timeline(problem, orders)
    assert validate(good) == [] and check_tight(good) == []
    ops = {op.task: op for op in good.ops()}
    assert ops[Task(Kind.F, 2, 1)].start == 0.0  # copy 2 enters at once on device 2
    assert ops[Task(Kind.B, 1, 0)].start == ops[Task(Kind.F, 1, 0)].end  # copy 1 turns
    rows = [list(row) for row in good.device_ops]
    # B1@s2 pulled before its F1@s2 ends: copy 1's turn broken
    k = next(n for n, op in enumerate(rows[1]) if op.task == Task(Kind.B, 1, 0))
    f = ops[Task(Kind.F, 1, 0)]
    rows[1][k] = rows[1][k]._replace(start=f.end - 0.5, end=f.end + 0.5)
    found = validate(_with_ops(good, rows))
    assert any("B1@s2 starts at 1.5 before its dependency F1@s2 ends at 2.0" in v for v in found)


def test_validator_edges_agree_with_the_problem() -> None:
    """The validator writes the two-copy chains from the contract itself; on every problem
    the engine's tight schedules (read through the problem's edges) pass it, and a
    schedule that waits across the copy boundary would be reported as not tight."""
    problem = _two(4, 8, forward=[1, 2, 1, 1], backward=[2, 1, 2, 2], weight=1, p2p=[0.5, 0, 0.5])
    for name in ("dualpipe", "gpipe", "greedy"):
        schedule = baseline(name, problem)
        assert validate(schedule) == [] and check_tight(schedule) == [], name


# ----------------------------------------------------------------------------- the engine


def test_engine_refuses_a_task_of_the_wrong_copy() -> None:
    problem = _two(2, 2, forward=1, backward=1)
    orders = [
        [Task(Kind.F, 0, 1), Task(Kind.F, 3, 1), Task(Kind.B, 3, 1), Task(Kind.B, 0, 0)],
        [Task(Kind.F, 2, 1), Task(Kind.F, 1, 0), Task(Kind.B, 1, 0), Task(Kind.B, 2, 1)],
    ]
    with pytest.raises(
        OrderError,
        match=r"^device 1: F2@s1 is not a task of this problem \(micro-batch 2 runs through "
        r"model copy 2, stage 1 is copy 1's\)$",
    ):
        compute_timeline(problem, orders)


def test_engine_times_random_two_copy_orders_and_pairs_tight_and_valid() -> None:
    """Random orders of random two-copy problems, with random legal pairs (an F and the B
    right after it, of different micro-batches: cross-copy pairs included), timed by the
    engine: the independent validator finds every rule kept and every task tight."""
    rng = random.Random(20)
    cross = 0
    for _ in range(40):
        p, m = rng.choice([2, 4]), rng.choice([2, 4, 6])
        f, b = rng.uniform(0.5, 2), rng.uniform(0.5, 2)
        problem = _two(
            p,
            m,
            forward=f,
            backward=b,
            weight=rng.choice([None, 0.5]),
            overlap=rng.uniform(max(f, b), f + b),
            p2p=rng.choice([0.0, 0.3]),
        )
        orders = random_orders(problem, rng)
        pairs = []
        for order in orders:
            used: set[Task] = set()
            for before, after in zip(order, order[1:], strict=False):
                if (
                    problem.pair_fault(before, after) is None
                    and not used & {before, after}
                    and rng.random() < 0.5
                ):
                    pairs.append((before, after))
                    used |= {before, after}
        try:
            schedule = compute_timeline(problem, orders, pairs=pairs)
        except Exception as error:  # a pair delays its F: a later one may wait in a cycle
            assert "deadlock" in str(error)
            continue
        assert validate(schedule) == [] and check_tight(schedule) == []
        cross += sum(
            problem.copy_of_stage(f.stage) != problem.copy_of_stage(b.stage) for f, b in pairs
        )
    assert cross > 0
