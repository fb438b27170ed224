"""The warm-up cases of a device with several stages (ppopt/solver/one_machine.py,
:func:`warm_up_cases`, :func:`warm_up_jobs`, :func:`warm_up_bound`): every schedule is in one
case and keeps what that case assumes, the bound is never above an optimum, and never below
the bound without the cases.

* Case argument, directly: random valid schedules of two-chunk problems (V and interleaved),
  timed by the engine, with their own peak memory as the limit, relabelled into micro-batch
  order: for every device, ``c`` (its F(hi, ·) started before B(hi, 0) starts) indexes a
  case, the other stages' forwards started by then are within the case's caps, and every task
  starts at or after the case's raised head and ends at least its raised tail before the
  makespan; the case's Jackson value is at most the makespan.
* Mutation: a case rule one micro-batch too strong (a cap lowered by one, or F(hi, c-1) in
  place of F(hi, c) made to wait) breaks that direct check on some schedule, and lowered caps
  put the bound of some tiny V problem above its exhaustive optimum.
* Optimum: the bound is at most the exhaustive optimum on tiny V problems (p=2, m <= 3, with
  and without memory limits), seeded and random.
* Never lower: on the scaling study's V cases and one-chunk cases, at least the bound with the
  warm-up cases turned off; strictly higher on the unsplit V ones.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest
from exhaustive import exhaustive_optimum
from hypothesis import given, settings
from hypothesis import strategies as st
from solver_helpers import SCALE, at_most, describe, optimum
from strategies import problems, random_orders, timed

from ppopt.limits import MemoryLimit
from ppopt.metrics import peak_memory
from ppopt.problem import Problem
from ppopt.schedule import Op, Schedule
from ppopt.solver import one_machine
from ppopt.solver.bounds import lower_bound
from ppopt.solver.one_machine import (
    StageKind,
    _chain_distances,
    _stage_kind_order,
    heads,
    jackson_bound,
    one_machine_bound,
    tails,
    warm_up_bound,
    warm_up_cases,
    warm_up_jobs,
)
from ppopt.tasks import Kind
from ppopt.timeline import compute_timeline

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from bench_scaling import make_problem  # noqa: E402

#: Two-chunk problems (a device holds two stages), V or interleaved, up to 4 devices.
TWO_CHUNKS = problems(max_devices=4, max_microbatches=6, max_chunks=2).filter(
    lambda p: p.num_chunks == 2
)


def _in_order(schedule: Schedule) -> dict[tuple[Kind, int, int], Op]:
    """The schedule's ops relabelled so each (kind, stage) runs its micro-batches in order
    (the k-th to start gets micro-batch k), keyed by (kind, stage, micro-batch)."""
    groups: dict[tuple[Kind, int], list[Op]] = {}
    for op in schedule.ops():
        groups.setdefault((op.kind, op.stage), []).append(op)
    return {
        (kind, stage, k): op
        for (kind, stage), ops in groups.items()
        for k, op in enumerate(sorted(ops, key=lambda o: o.start))
    }


def _device_keys(problem: Problem, device: int) -> list[StageKind]:
    return [key for key in _stage_kind_order(problem) if problem.device_of(key[1]) == device]


def _case_violations(
    schedule: Schedule, limit: tuple[float, ...] | None, mutate: str | None = None
) -> list[str]:
    """What of the warm-up case argument the schedule (in micro-batch order, under ``limit``,
    ``None``: no limit) breaks, per device with several stages: the case index, the caps, the
    raised heads and tails, the case's Jackson value. ``mutate`` makes one rule a micro-batch
    too strong: ``"cap"`` lowers every cap by one, ``"hi"`` makes F(hi, c-1) wait in place of
    F(hi, c)."""
    problem, m = schedule.problem, schedule.problem.num_microbatches
    ops, makespan = _in_order(schedule), schedule.makespan
    head, tail = heads(problem, limit), tails(problem, limit)
    out = []
    for d in range(problem.num_devices):
        stages = problem.stages_on(d)
        if len(stages) < 2:
            continue
        hi = stages[-1]
        first_b = ops[Kind.B, hi, 0].start
        started = {s: sum(1 for i in range(m) if ops[Kind.F, s, i].start < first_b) for s in stages}
        c = started[hi]
        cases = warm_up_cases(problem, d, float("inf") if limit is None else limit[d])
        if not 1 <= c <= len(cases) or cases[c - 1][0] != c:
            out.append(f"device {d}: c={c} is no case of {len(cases)}")
            continue
        caps = dict(cases[c - 1][1])
        for s, cap in caps.items():
            if started[s] > cap:
                out.append(f"device {d}: {started[s]} F({s}) started, cap {cap}")
        if mutate == "cap":
            caps = {s: cap - 1 for s, cap in caps.items()}
        elif mutate == "hi":
            caps[hi] = c - 1
        keys = _device_keys(problem, d)
        jobs = warm_up_jobs(problem, d, keys, _chain_distances(problem, keys), head, tail, c, caps)
        for k, key in enumerate(keys):
            for i in range(m):
                r, _, q = jobs[k * m + i]
                op = ops[key[0], key[1], i]
                if not at_most(r, op.start):
                    out.append(f"device {d} case {c}: {key} {i} starts {op.start} < head {r}")
                if not at_most(op.end + q, makespan):
                    out.append(f"device {d} case {c}: {key} {i} ends {op.end} + tail {q}")
        if not at_most(jackson_bound(jobs), makespan):
            out.append(f"device {d} case {c}: Jackson {jackson_bound(jobs)} > {makespan}")
    return out


@settings(max_examples=150 * SCALE, deadline=None, derandomize=True)
@given(timed(TWO_CHUNKS))
def test_random_schedules_keep_their_warm_up_case(schedule: Schedule) -> None:
    """Every random valid schedule (its own peaks as the limit) is in one warm-up case of
    every device and keeps that case's caps, heads, tails and Jackson value; the warm-up
    bound of every device and the whole bound are at most its makespan."""
    limit = tuple(peak_memory(schedule))
    assert _case_violations(schedule, limit) == []
    problem = schedule.problem
    head, tail = heads(problem, limit), tails(problem, limit)
    for d in range(problem.num_devices):
        assert at_most(warm_up_bound(problem, d, limit[d], head, tail, 0.0), schedule.makespan)
    assert at_most(one_machine_bound(problem, limit), schedule.makespan)
    assert at_most(lower_bound(problem, "makespan", limit), schedule.makespan)


@settings(max_examples=40 * SCALE, deadline=None, derandomize=True)
@given(timed(TWO_CHUNKS))
def test_random_schedules_keep_their_warm_up_case_without_a_limit(schedule: Schedule) -> None:
    """The same without a memory limit (no caps: only F(hi, c) waits)."""
    assert _case_violations(schedule, None) == []
    assert at_most(one_machine_bound(schedule.problem, None), schedule.makespan)


def _schedules(count: int) -> list[tuple[Schedule, tuple[float, ...]]]:
    """Seeded random schedules of a few V and interleaved problems with their own peaks."""
    rng = random.Random(7)
    out = []
    for k in range(count):
        p, m = rng.choice([2, 3]), rng.choice([3, 4, 5])
        problem = Problem.create(
            p,
            m,
            forward=[rng.choice([0.5, 1.0, 1.5]) for _ in range(2 * p)],
            backward=[rng.choice([1.0, 2.0, 3.0]) for _ in range(2 * p)],
            p2p=rng.choice([0.0, 0.5]),
            num_chunks=2,
            placement="vshape" if k % 2 else "interleaved",
            activation=[rng.choice([0.5, 1.0]) for _ in range(2 * p)],
        )
        schedule = compute_timeline(problem, random_orders(problem, rng), "random")
        out.append((schedule, tuple(peak_memory(schedule))))
    return out


@pytest.mark.parametrize("mutate", ["cap", "hi"])
def test_a_case_rule_one_microbatch_too_strong_fails(mutate: str) -> None:
    """The direct check can fail: with every cap one lower (F(s, k_s - 1) made to wait for
    B(hi, 0)), or F(hi, c-1) made to wait in place of F(hi, c), some seeded schedule breaks
    it, while the true rules hold on all of them."""
    schedules = _schedules(60)
    assert all(_case_violations(s, limit) == [] for s, limit in schedules)
    assert any(_case_violations(s, limit, mutate) for s, limit in schedules)


def _v_problem(seed: int) -> Problem:
    """A tiny V problem: p=2 (four stages, two a device), m 2 or 3, random times, latency,
    split, activations, and a limit of none, 1x, or one micro-batch's need (+0.5)."""
    rng = random.Random(f"v-{seed}")
    split = rng.random() < 0.4
    m = rng.choice([2, 3]) if not split else 2
    activation = [rng.choice([0.5, 1.0]) for _ in range(4)]
    problem = Problem.create(
        2,
        m,
        forward=[rng.choice([1.0, 1.5, 2.0]) for _ in range(4)],
        backward=[rng.choice([1.0, 2.0, 3.0]) for _ in range(4)],
        weight=[rng.choice([1.0, 1.5]) for _ in range(4)] if split else None,
        p2p=rng.choice([0.0, 0.5]),
        num_chunks=2,
        placement="vshape",
        activation=activation,
        retained=[a * 0.5 for a in activation] if split else 0.0,
    )
    kind = seed % 3
    if kind == 0:
        return problem.with_limit(MemoryLimit())
    if kind == 1:
        return problem.with_limit(MemoryLimit(factor=1.0))
    need = max(sum(activation[s] for s in problem.stages_on(d)) for d in range(2))
    return problem.with_limit(MemoryLimit(values=(need + 0.5 * rng.choice([0, 1]),)))


V_CASES = [_v_problem(seed) for seed in range(18)]


@pytest.mark.parametrize("problem", V_CASES, ids=describe)
def test_warm_up_bound_never_above_exhaustive_optimum(problem: Problem) -> None:
    """Each device's warm-up bound (and the whole bound) is at most the exhaustive optimum of
    the tiny V problem under its own limit, and without one."""
    best = optimum(problem)
    for limit in (problem.memory_caps, None):
        head, tail = heads(problem, limit), tails(problem, limit)
        for d in range(problem.num_devices):
            room = float("inf") if limit is None else limit[d]
            assert at_most(warm_up_bound(problem, d, room, head, tail, 0.0), best)
        assert at_most(one_machine_bound(problem, limit), best)
    assert at_most(lower_bound(problem, "makespan", problem.memory_caps), best)


def test_caps_one_microbatch_too_strong_beat_some_exhaustive_optimum(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The optimum check can fail: with every cap one lower, the bound of some tiny V problem
    is above its exhaustive optimum."""
    true_cases = one_machine.warm_up_cases

    def too_strong(problem: Problem, device: int, room: float) -> list:
        cases = true_cases(problem, device, room)
        return [(c, {s: k - 1 for s, k in caps.items()}) for c, caps in cases]

    monkeypatch.setattr(one_machine, "warm_up_cases", too_strong)
    over = []
    for problem in V_CASES:
        limit = problem.memory_caps
        head, tail = heads(problem, limit), tails(problem, limit)
        for d in range(problem.num_devices):
            room = float("inf") if limit is None else limit[d]
            if not at_most(warm_up_bound(problem, d, room, head, tail, 0.0), optimum(problem)):
                over.append(describe(problem))
    assert over


@settings(max_examples=25 * SCALE, deadline=None, derandomize=True)
@given(
    problems(max_devices=2, max_microbatches=3, max_chunks=2, placements=("vshape",)).filter(
        lambda p: p.num_chunks == 2 and p.num_devices == 2 and p.num_tasks <= 24
    ),
    st.sampled_from([0.0, 0.5, 1.0]),
)
def test_warm_up_bound_below_exhaustive_optimum_of_random_tiny_v_problems(
    problem: Problem, slack: float
) -> None:
    """Random tiny V problems (p=2), each device's limit its one-micro-batch need times
    1 + slack: every device's warm-up bound is at most the exhaustive optimum."""
    limit = tuple(
        sum(problem.activation[s] for s in problem.stages_on(d)) * (1 + slack)
        for d in range(problem.num_devices)
    )
    best = exhaustive_optimum(problem, limit).value
    head, tail = heads(problem, limit), tails(problem, limit)
    for d in range(problem.num_devices):
        assert at_most(warm_up_bound(problem, d, limit[d], head, tail, 0.0), best)
    assert at_most(one_machine_bound(problem, limit), best)


def _without_warm_up(problem: Problem, monkeypatch: pytest.MonkeyPatch) -> float:
    """The bound with the warm-up cases turned off (each device's value is the floor)."""
    with monkeypatch.context() as patch:
        patch.setattr(one_machine, "warm_up_bound", lambda *args: args[-1])
        return lower_bound(problem, "makespan", problem.memory_caps)


#: (p, m, split, vshape) of the scaling study (benchmarks/bench_scaling.py), small enough for
#: a test, and the bound measured with the warm-up cases where they raise it (unsplit V).
SCALING = [
    ((8, 16, False, True), 131.24),
    ((16, 32, False, True), 262.35),
    ((8, 64, False, True), 433.97),
    ((16, 32, True, True), None),
    ((8, 16, True, True), None),
    ((8, 16, False, False), None),
    ((8, 16, True, False), None),
]


@pytest.mark.parametrize(("case", "expected"), SCALING, ids=str)
def test_warm_up_cases_never_lower_the_bound(
    case: tuple[int, int, bool, bool], expected: float | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """At least the bound without the warm-up cases everywhere (the cases only join a max);
    on the unsplit V cases strictly above it, at the measured value."""
    problem = make_problem(*case)
    new = lower_bound(problem, "makespan", problem.memory_caps)
    old = _without_warm_up(problem, monkeypatch)
    assert new >= old
    if expected is not None:
        assert new == pytest.approx(expected, abs=0.005)
        assert new > old + 0.1
