"""The error classes (ppopt/errors.py): a problem error is still a ValueError to callers."""

from __future__ import annotations

from ppopt.errors import ProblemError


def test_problem_error_is_a_value_error() -> None:
    assert issubclass(ProblemError, ValueError)
