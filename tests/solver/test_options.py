"""Solver options (ppopt/solver/options.py): a bad value is one error naming its key."""

from __future__ import annotations

import pytest

from ppopt.errors import SolverOptionError
from ppopt.solver import SolverOptions


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"time_limit": -1}, r"^solver\.time_limit: must be > 0"),  # negative
        ({"time_limit": 0}, r"^solver\.time_limit: must be > 0"),  # zero
        ({"workers": -2}, r"^solver\.workers: must be >= 0"),  # negative count
        # issue 21 item 6: values OR-Tools refuses with a TypeError
        ({"seed": 2**31}, r"^solver\.seed: must be <= 2147483647, got 2147483648"),  # int32
        ({"workers": 10**11}, r"^solver\.workers: must be <= 1024"),  # threads, not speed
        ({"workers": "2"}, r"^solver\.workers: expected a whole number, got '2'"),  # a string
        ({"seed": 1.5}, r"^solver\.seed: expected a whole number, got 1.5"),  # a fraction
        ({"order": "random"}, r"^solver\.order: expected free or fixed, got 'random'"),  # unknown
        ({"objective": "cost"}, r"^solver\.objective: expected makespan or span"),  # unknown
    ],
)
def test_bad_solver_options(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(SolverOptionError, match=message):
        SolverOptions(**kwargs)  # type: ignore[arg-type]
