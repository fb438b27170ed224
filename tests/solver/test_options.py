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
        ({"order": "random"}, r"^solver\.order: expected free or fixed, got 'random'"),  # unknown
        ({"objective": "cost"}, r"^solver\.objective: expected makespan or span"),  # unknown
    ],
)
def test_bad_solver_options(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(SolverOptionError, match=message):
        SolverOptions(**kwargs)  # type: ignore[arg-type]
