"""The problem model (ppopt/problem.py, docs/contract.md §1): validation naming the key, the task
graph, and memory limits resolved per device (placements: ``test_placement.py``)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from strategies import problems

from ppopt.errors import ProblemError
from ppopt.limits import MemoryLimit
from ppopt.problem import Problem
from ppopt.tasks import Task

# Each row: keyword arguments that override a valid p=4, m=8 problem, and the config key the
# error must start with (docs/contract.md §2: "one line naming the key").
BAD_FIELDS = [
    ({"num_devices": 0}, "num_stages"),  # no device at all
    ({"num_devices": 2.0}, "num_stages"),  # a float count, even a whole one
    ({"num_microbatches": 0}, "num_batches"),  # num_batches < 1
    ({"num_microbatches": 1.5}, "num_batches"),  # fractional count
    ({"num_microbatches": True}, "num_batches"),  # a bool is not a count
    ({"forward": [1, -1, 1, 1]}, "forward_times[1]"),  # negative time, index named
    ({"forward": [1, 1]}, "forward_times"),  # list of the wrong length
    ({"forward": math.nan}, "forward_times"),  # NaN
    ({"forward": [1, math.inf, 1, 1]}, "forward_times[1]"),  # infinite time
    ({"forward": "abc"}, "forward_times"),  # not a number
    ({"backward": 0}, "backward_times[0]"),  # zero time
    ({"weight": -1}, "weight_times[0]"),  # negative weight-gradient time
    ({"weight": [1, 2]}, "weight_times"),  # weight list of the wrong length
    ({"p2p": -0.5}, "p2p_time"),  # negative latency
    ({"p2p": "x"}, "p2p_time"),  # latency not a number
    ({"num_chunks": 0}, "num_chunks"),  # no chunk
    ({"placement": "zigzag"}, "placement"),  # unknown placement name
    ({"placement": "vshape"}, "placement"),  # vshape needs two chunks
    ({"num_chunks": 3, "placement": "vshape"}, "placement"),  # ... exactly two
    ({"placement": [0, 1, 2]}, "placement"),  # explicit list too short
    ({"placement": [0, 0, 1, 2]}, "placement"),  # device 0 holds two stages, device 3 none
    ({"placement": [0, 1, 2, 7]}, "placement[3]"),  # no such device
    ({"placement": [0, 1, 2, True]}, "placement[3]"),  # a bool is not a device index
    ({"activation": -1}, "memory.activation[0]"),  # negative memory
    ({"activation": [1, 1]}, "memory.activation"),  # memory list of the wrong length
    ({"weight": 1, "retained": [0, 2, 0, 0]}, "memory.retained[1]"),  # retained > activation
    ({"retained": 0.5}, "memory.retained[0]"),  # retained without a split backward
    ({"weight": 1, "retained": -0.1}, "memory.retained[0]"),  # negative retained
    ({"memory_limit": "-2x"}, "memory.limit"),  # negative factor
    ({"memory_limit": "0x"}, "memory.limit"),  # zero factor
    ({"memory_limit": [1, 2, 3]}, "memory.limit"),  # neither one value nor one per device
    ({"memory_limit": "abc"}, "memory.limit"),  # not a limit
    ({"memory_limit": 0}, "memory.limit[0]"),  # zero absolute limit
    ({"memory_limit": True}, "memory.limit"),  # a bool is not a limit
    ({"memory_limit": []}, "memory.limit"),  # empty list
    # issue 21 item 2: times whose sums overflow (makespan inf, bubble nan) or below the
    # solver's resolution (they would round to nothing there)
    ({"forward": 1e308}, "forward_times[0]"),  # the sum of all times overflows
    ({"forward": [1, 1, 1e307, 1]}, "forward_times[2]"),  # one huge time: named by its index
    ({"p2p": 1e308}, "p2p_time"),  # a huge latency, summed on every edge
    ({"activation": 1e308}, "memory.activation"),  # the peak memory would overflow
    ({"forward": 1e-12, "backward": 1}, "forward_times[0]"),  # below the resolution
    ({"forward": [1, 1, 1e-300, 1]}, "forward_times[2]"),  # 1e-300: a denormal-sized time
    ({"p2p": 1e-9}, "p2p_time"),  # a latency the solver would round to 0
    ({"weight": [1, 1, 1, 1e-5]}, "weight_times[3]"),  # a weight pass below the resolution
]


@pytest.mark.parametrize(("override", "key"), BAD_FIELDS)
def test_bad_field_names_its_key(override: dict[str, object], key: str) -> None:
    fields: dict[str, object] = {"num_devices": 4, "num_microbatches": 8}
    fields.update(override)
    with pytest.raises(ProblemError) as info:
        Problem.create(**fields)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(f"{key}: "), message
    assert "\n" not in message


def test_scalars_are_broadcast_to_every_virtual_stage() -> None:
    problem = Problem.create(3, 5, forward=1.5, backward=2.5, weight=0.5, num_chunks=2)
    assert problem.num_stages == 6
    assert problem.forward == (1.5,) * 6
    assert problem.backward == (2.5,) * 6
    assert problem.weight == (0.5,) * 6
    assert problem.activation == (1.0,) * 6
    assert problem.retained == (0.0,) * 6
    assert problem.memory_limit == MemoryLimit(factor=1.0)  # the optimizer's default, as the CLI's


# ----------------------------------------------------------------------------- the task graph


def test_tasks_and_counts() -> None:
    plain = Problem.create(2, 3, num_chunks=2)
    split = Problem.create(2, 3, num_chunks=2, weight=1.0)
    assert plain.kinds == ("F", "B") and split.kinds == ("F", "B", "W")
    assert plain.num_tasks == 2 * 4 * 3 == len(set(plain.tasks()))
    assert split.num_tasks == 3 * 4 * 3 == len(set(split.tasks()))


def test_dependencies_follow_the_contract() -> None:
    problem = Problem.create(2, 2, num_chunks=2, weight=1.0)  # S = 4
    assert problem.dependencies(Task("F", 0, 1)) == ()
    assert problem.dependencies(Task("F", 2, 1)) == (Task("F", 1, 1),)
    assert problem.dependencies(Task("B", 3, 0)) == (Task("F", 3, 0),)  # turn at the last stage
    assert problem.dependencies(Task("B", 1, 0)) == (Task("B", 2, 0),)
    assert problem.dependencies(Task("W", 1, 0)) == (Task("B", 1, 0),)


def test_latency_only_across_devices() -> None:
    problem = Problem.create(2, 1, num_chunks=2, placement="vshape", p2p=0.25)  # 0 1 1 0
    assert problem.latency(Task("F", 0, 0), Task("F", 1, 0)) == 0.25  # device 0 -> 1
    assert problem.latency(Task("F", 1, 0), Task("F", 2, 0)) == 0.0  # both on device 1
    assert problem.latency(Task("F", 3, 0), Task("B", 3, 0)) == 0.0  # the turn, one device
    assert problem.latency(Task("B", 1, 0), Task("B", 0, 0)) == 0.25


def test_durations_memory_and_work() -> None:
    problem = Problem.create(
        2, 3, forward=[1, 2], backward=[3, 4], weight=[0.5, 1], activation=[4, 2], retained=[1, 2]
    )
    assert problem.duration("F", 1) == 2 and problem.duration("W", 0) == 0.5
    assert problem.allocation(0) == 4
    assert problem.release("B", 0) == 3 and problem.release("W", 0) == 1
    assert problem.release("B", 1) == 0 and problem.release("W", 1) == 2
    assert problem.device_work(0) == 3 * (1 + 3 + 0.5)
    assert problem.total_work() == 3 * (1 + 2 + 3 + 4 + 0.5 + 1)
    with pytest.raises(KeyError):
        Problem.create(2, 3).duration("W", 0)


def test_unsplit_merges_backward_and_weight() -> None:
    problem = Problem.create(2, 3, backward=[2, 3], weight=[1, 0.5], activation=2, retained=1)
    classic = problem.unsplit()
    assert classic.weight is None
    assert classic.backward == (3.0, 3.5)
    assert classic.retained == (0.0, 0.0)
    assert classic.total_work() == problem.total_work()
    assert classic.unsplit() is classic


def test_merged_chunks_sums_each_devices_stages() -> None:
    problem = Problem.create(
        2, 4, forward=[1, 2, 3, 4], activation=[1, 2, 3, 4], num_chunks=2, placement="vshape"
    )
    merged = problem.merged_chunks()
    assert merged.num_chunks == 1 and merged.placement == (0, 1)
    assert merged.forward == (1 + 4, 2 + 3)
    assert merged.activation == (5.0, 5.0)
    assert merged.total_work() == problem.total_work()


@given(problems(max_devices=5, max_chunks=2))
def test_chains_are_the_sums_of_their_definitions(problem: Problem) -> None:
    """forward_head, round_trip and backward_chain (running sums, issue 21 item 5) against the
    contract's chains summed here stage by stage."""
    S = problem.num_stages

    def hop(a: int, b: int) -> float:
        return 0.0 if problem.placement[a] == problem.placement[b] else problem.p2p

    for stage in range(S):
        head = sum(problem.forward[s] + hop(s, s + 1) for s in range(stage))
        trip = sum(
            2 * hop(s - 1, s) + problem.forward[s] + problem.backward[s]
            for s in range(stage + 1, S)
        )
        below = sum(hop(s - 1, s) + problem.backward[s - 1] for s in range(1, stage + 1))
        assert problem.forward_head(stage) == pytest.approx(head, rel=1e-12)
        assert problem.round_trip(stage) == pytest.approx(trip, rel=1e-12)
        assert problem.backward_chain(stage) == pytest.approx(below, rel=1e-12)


def test_the_lower_bound_is_linear_in_the_stages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 21 items 4/5: the chains were summed afresh for every stage (quadratic: the bound
    of 20,000 stages took minutes). Count the latency look-ups instead of timing."""
    from ppopt.solver.bounds import lower_bound

    calls = 0
    hop = Problem.hop

    def counted(self: Problem, a: int, b: int) -> float:
        nonlocal calls
        calls += 1
        return hop(self, a, b)

    monkeypatch.setattr(Problem, "hop", counted)
    stages = 2000
    problem = Problem.create(stages, 1, p2p=0.5)
    lower_bound(problem, "makespan", problem.memory_caps)
    assert calls <= 10 * stages, calls
