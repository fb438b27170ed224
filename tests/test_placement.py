"""Placements (ppopt/placement.py, docs/contract.md §1): the named ones, an explicit list, and
the lists refused with the key (and index) at fault."""

from __future__ import annotations

import pytest

from ppopt.errors import ProblemError
from ppopt.placement import placement_stages
from ppopt.problem import Problem


@pytest.mark.parametrize(
    ("name", "p", "v", "expected"),
    [
        ("interleaved", 3, 1, (0, 1, 2)),  # one chunk: stage s on device s
        ("interleaved", 3, 2, (0, 1, 2, 0, 1, 2)),  # Megatron: s mod p
        ("interleaved", 2, 3, (0, 1, 0, 1, 0, 1)),  # three chunks
        ("vshape", 3, 2, (0, 1, 2, 2, 1, 0)),  # down then back up
        ("vshape", 1, 2, (0, 0)),  # a single device holds both halves
    ],
)
def test_named_placements(name: str, p: int, v: int, expected: tuple[int, ...]) -> None:
    assert placement_stages(name, p, v) == expected
    problem = Problem.create(p, 2, num_chunks=v, placement=name)
    assert problem.placement == expected
    assert problem.placement_name == name
    for d in range(p):
        assert problem.stages_on(d) == tuple(s for s, dev in enumerate(expected) if dev == d)


def test_explicit_placement() -> None:
    problem = Problem.create(2, 3, num_chunks=2, placement=[1, 0, 0, 1])
    assert problem.placement_name == "explicit"
    assert problem.device_of(0) == 1
    assert problem.stages_on(0) == (1, 2)
    assert problem.stages_on(1) == (0, 3)


@pytest.mark.parametrize(
    ("placement", "key"),
    [
        ([0, 1, 0], "placement"),  # S = 4 stages need 4 entries
        ([0, 1, 0, 1, 0], "placement"),  # one too many
        ([0, 0, 0, 1], "placement"),  # device 0 holds 3 stages
        ([0, 1, 2, 1], "placement[2]"),  # device 2 does not exist (p = 2)
        ([0, 1, -1, 1], "placement[2]"),  # negative device
        ([0, 1, 0.0, 1], "placement[2]"),  # a float is not a device index
    ],
)
def test_bad_placement_lists(placement: list[object], key: str) -> None:
    with pytest.raises(ProblemError) as info:
        Problem.create(2, 3, num_chunks=2, placement=placement)  # type: ignore[arg-type]
    assert str(info.value).startswith(f"{key}: "), info.value
