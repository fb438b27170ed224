"""Cutting a layer profile into stages (ppopt/partition.py): stage times are sums over the
stage's layers, the memory limit is the same for every partition, and the baseline
partitions are what they claim (the min-max DP against exhaustive search)."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppopt.errors import ProblemError
from ppopt.layers import Layer, Profile
from ppopt.limits import MemoryLimit
from ppopt.partition import (
    LayeredProblem,
    balanced_sizes,
    even_sizes,
    fewer_first_last_offsets,
    fewer_first_last_sizes,
)


def compositions(n: int, parts: int) -> list[tuple[int, ...]]:
    """Every way to write n as an ordered sum of ``parts`` positive counts."""
    out = []
    for cuts in itertools.combinations(range(1, n), parts - 1):
        bounds = (0, *cuts, n)
        out.append(tuple(b - a for a, b in itertools.pairwise(bounds)))
    return out


def gpt(blocks: int = 6, split: bool = True) -> Profile:
    weight = {"weight": 0.5} if split else {}
    return Profile.expand(
        [
            Layer("embed", 0.2, 0.2, 0.5, **weight),
            Layer("block", 1.0, 1.0, 1.0, count=blocks, **weight),
            Layer("head", 2.5, 2.5, 3.0, **weight),
        ]
    )


@given(st.integers(1, 60), st.integers(1, 16))
def test_even_split_is_as_equal_as_can_be(n: int, s: int) -> None:
    if n < s:
        return
    sizes = even_sizes(n, s)
    assert sum(sizes) == n and len(sizes) == s
    assert max(sizes) - min(sizes) <= 1


def test_fewer_first_last_with_no_offset_is_even_and_takes_layers_off_the_ends() -> None:
    assert fewer_first_last_sizes(16, 4, 0, 0) == even_sizes(16, 4)
    assert fewer_first_last_sizes(16, 4, 1, 2) == (4, 5, 5, 2)  # 19 = 5+5+5+4, then -1, -2
    assert fewer_first_last_sizes(8, 4, 3, 0) is None  # 11 = 3+3+3+2: stage 0 left empty
    offsets = fewer_first_last_offsets(8, 4)
    assert (0, 0) in offsets and all(
        min(fewer_first_last_sizes(8, 4, a, b) or (0,)) >= 1 for a, b in offsets
    )


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(0.1, 10), min_size=2, max_size=9), st.integers(1, 4))
def test_balanced_split_is_the_min_max_of_every_partition(times: list[float], s: int) -> None:
    if len(times) < s:
        return
    profile = Profile(tuple(Layer(f"l{i}", t, t, 1.0) for i, t in enumerate(times)))

    def worst(sizes: tuple[int, ...]) -> float:
        starts = [0, *itertools.accumulate(sizes)]
        return max(2 * math.fsum(times[a:b]) for a, b in itertools.pairwise(starts))

    best = min(worst(c) for c in compositions(len(times), s))
    assert math.isclose(worst(balanced_sizes(profile, s)), best, rel_tol=1e-9)


def test_stage_times_and_memory_are_sums_over_the_stage_layers() -> None:
    layered = LayeredProblem(
        gpt(), num_devices=2, num_microbatches=4, num_chunks=2, placement="vshape", p2p=0.25
    )
    problem = layered.problem((1, 3, 2, 2))
    profile = layered.profile
    assert problem.forward == (0.2, 3.0, 2.0, 1.0 + 2.5)
    assert problem.weight == (0.5, 1.5, 1.0, 1.0)
    assert problem.activation == (0.5, 3.0, 2.0, 4.0)
    assert problem.placement == (0, 1, 1, 0) and problem.p2p == 0.25
    assert problem.partition is not None
    assert problem.partition.stage_layers(3) == profile.names[6:8]


def test_a_factor_limit_is_the_even_splits_for_every_partition() -> None:
    layered = LayeredProblem(
        gpt(), num_devices=4, num_microbatches=8, memory_limit=MemoryLimit(factor=1.0)
    )
    even = layered.problem(even_sizes(8, 4))
    assert even.memory_caps == (even.reference_peak(),) * 4
    other = layered.problem((1, 3, 3, 1))
    assert other.memory_caps == even.memory_caps
    assert other.reference_peak() != even.reference_peak()  # its own 1x would differ


def test_parameters_take_their_share_of_an_absolute_limit() -> None:
    profile = Profile.expand(
        [
            Layer("embed", 1, 1, 1, parameters=6.0),
            Layer("block", 1, 1, 1, parameters=1.0, count=3),
        ]
    )
    layered = LayeredProblem(
        profile, num_devices=2, num_microbatches=4, memory_limit=MemoryLimit(values=(10.0,))
    )
    assert layered.problem((2, 2)).memory_caps == (3.0, 8.0)
    assert layered.fits((2, 2)) and layered.fits((3, 1))
    too_many = Profile.expand(
        [Layer("embed", 1, 1, 1, parameters=12.0), Layer("block", 1, 1, 1, count=3)]
    )
    heavy = LayeredProblem(too_many, 2, 4, memory_limit=MemoryLimit(values=(10.0,)))
    assert not heavy.fits((1, 3))
    with pytest.raises(ProblemError, match="device 1 holds 12 parameter memory"):
        heavy.problem((1, 3))


@pytest.mark.parametrize(
    ("sizes", "message"),
    [
        ((2, 2, 2), "partition: expected 4 layer counts (one per virtual stage), got 3"),
        ((2, 2, 2, 3), "partition: the layer counts add up to 9, the profile has 8 layers"),
        ((0, 4, 2, 2), "partition[0]: must be >= 1, got 0"),
    ],
)
def test_bad_explicit_partitions(sizes: tuple[int, ...], message: str) -> None:
    layered = LayeredProblem(gpt(), num_devices=4, num_microbatches=8)
    with pytest.raises(ProblemError) as error:
        layered.problem(sizes)
    assert str(error.value) == message


def test_fewer_layers_than_stages_is_refused() -> None:
    with pytest.raises(ProblemError, match="the profile has 8 layers, fewer than the 16 virtual"):
        LayeredProblem(gpt(), num_devices=8, num_microbatches=8, num_chunks=2)
