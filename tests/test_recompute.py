"""Recomputation (ppopt/recompute.py; docs/contract.md §1): the R task's rules as the problem
declares them, the independent validator's view of them, the engine's memory against the
validator's own computation, and full-recompute 1F1B against its closed form."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import problems, random_orders

from ppopt.baselines import baseline
from ppopt.errors import ProblemError
from ppopt.metrics import peak_memory
from ppopt.problem import Problem
from ppopt.schedule import Op, Schedule
from ppopt.tasks import Kind, Task
from ppopt.timeline import compute_timeline
from ppopt.validate import memory_peaks, validate


def _auto(problem: Problem, rng: random.Random, checkpoint: float) -> Problem:
    """The problem with recompute auto, random checkpoints and a random choice."""
    n, m = problem.num_stages, problem.num_microbatches
    auto = problem.with_recompute(
        "auto",
        recompute_times=[rng.choice([0.5, 1.0, 2.0]) for _ in range(n)],
        checkpoint=[checkpoint * a for a in problem.activation],
    )
    pairs = [(s, i) for s in range(n) for i in range(m) if rng.random() < 0.5]
    return auto.with_recomputed(pairs)


@settings(max_examples=40, deadline=None)
@given(problems(max_devices=4, max_microbatches=5), st.randoms(use_true_random=False),
       st.sampled_from([0.0, 0.25, 1.0]))  # fmt: skip
def test_engine_memory_is_the_validators_own(
    problem: Problem, rng: random.Random, checkpoint: float
) -> None:
    """Random choice, random orders: the engine's timeline is valid, and the metrics' peaks
    (from the problem's holds) equal the validator's (from the contract's words)."""
    auto = _auto(problem, rng, checkpoint)
    schedule = compute_timeline(auto, random_orders(auto, rng), "random")
    assert validate(schedule) == []
    assert peak_memory(schedule) == pytest.approx(memory_peaks(schedule))
    assert len([op for op in schedule.ops() if op.kind == Kind.R]) == len(auto.recomputed)


@pytest.mark.parametrize(("p", "m"), [(2, 4), (4, 8), (4, 3), (3, 9)])
@pytest.mark.parametrize("checkpoint", [0.0, 0.25])
def test_full_recompute_1f1b_closed_form(p: int, m: int, checkpoint: float) -> None:
    """Equal stages, no latency, every micro-batch recomputed with R right before B: the R
    passes add m r to the busiest device, not to the ramps: m (f + b + r) + (p-1)(f + b);
    device d holds one activation plus a checkpoint per micro-batch in flight, min(p-d, m)."""
    f, b, r = 1.0, 2.0, 0.5
    problem = Problem.create(
        p, m, forward=f, backward=b, recompute="all", recompute_times=r, checkpoint=checkpoint
    )
    schedule = baseline("1f1b", problem)
    assert validate(schedule, problem.memory_caps) == []
    assert schedule.makespan == m * (f + b + r) + (p - 1) * (f + b)
    assert memory_peaks(schedule) == tuple(1.0 + min(p - d, m) * checkpoint for d in range(p))


def _one_device_schedule(ops: list[tuple[str, float, float]], problem: Problem) -> Schedule:
    row = tuple(Op(0, Kind(k), 0, 0, start, end) for k, start, end in ops)
    return Schedule(problem, "hand", (row,))


def test_validator_names_each_recompute_violation() -> None:
    """One device, one micro-batch, F 1, B 2, R 1, checkpoint 0.5, limit 1.2."""
    none = Problem.create(1, 1, recompute="auto", checkpoint=0.5, memory_limit=1.2)
    chosen = none.with_recomputed([(0, 0)])
    good = _one_device_schedule([("F", 0, 1), ("R", 1, 2), ("B", 2, 4)], chosen)
    assert validate(good) == []
    assert memory_peaks(good) == (1.5,)  # activation + checkpoint during F and during R
    assert any("above the limit 1.2" in v for v in validate(good, (1.2,)))
    early = _one_device_schedule([("F", 0, 1), ("R", 1, 2), ("B", 1.5, 3.5)], chosen)
    assert any("B1@s1 starts at 1.5 before its dependency R1@s1" in v for v in validate(early))
    missing = _one_device_schedule([("F", 0, 1), ("B", 1, 3)], chosen)
    assert validate(missing) == ["R1@s1 is in no device's ops"]
    stray = _one_device_schedule([("F", 0, 1), ("R", 1, 2), ("B", 2, 4)], none)
    assert any("does not recompute" in v for v in validate(stray))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"recompute": "some"}, "memory.recompute: expected none | all | auto"),
        ({"recompute": "all", "recompute_times": 0}, r"recompute_times\[0\]: must be > 0"),
        ({"recompute": "all", "checkpoint": -1}, r"memory.checkpoint\[0\]: must be >= 0"),
    ],
)
def test_bad_recompute_input_names_the_key(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ProblemError, match=message):
        Problem.create(2, 2, **kwargs)  # type: ignore[arg-type]


def test_choice_only_on_auto_and_in_range() -> None:
    with pytest.raises(ProblemError, match="not auto"):
        Problem.create(2, 2, recompute="all").with_recomputed([(0, 0)])
    with pytest.raises(ProblemError, match="not a stage and micro-batch"):
        Problem.create(2, 2, recompute="auto").with_recomputed([(2, 0)])


def test_one_microbatch_needs_less_with_recompute() -> None:
    """V placement, both chunks on a device: 2 activations without recomputation; with it
    the larger of (first chunk + its checkpoint) and (second + both checkpoints)."""
    plain = Problem.create(2, 4, num_chunks=2, placement="vshape")
    assert plain.microbatch_memory(0) == 2.0
    again = Problem.create(2, 4, num_chunks=2, placement="vshape", recompute="all", checkpoint=0.25)
    assert again.microbatch_memory(0) == 1.5
    assert Task(Kind.R, 0, 0) in again.tasks() and again.num_tasks == 3 * 4 * 4
