"""Value checks that name the config key they come from (``forward_times[2]: must be > 0``).

The problem, its memory limit and the config loader all check values through these, so a
rule such as "a time is a finite number > 0" is written once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ppopt.errors import ProblemError


def parse_number(key: str, text: str) -> float:
    """A number written as text (command line, ``'2x'`` limits)."""
    try:
        value = float(text)
    except ValueError:
        raise ProblemError(f"{key}: expected a number, got {text!r}") from None
    return as_float(key, value)


def as_float(key: str, value: object) -> float:
    """A finite int or float as a float (``bool`` is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProblemError(f"{key}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ProblemError(f"{key}: must be finite, got {value}")
    return float(value)


def per_stage(key: str, value: object, n: int) -> tuple[float, ...]:
    """One number for every stage, or a sequence of numbers (its length is checked later)."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        return (as_float(key, value),) * n
    return tuple(as_float(f"{key}[{i}]", x) for i, x in enumerate(value))


def check_count(key: str, value: object) -> None:
    """A whole number >= 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProblemError(f"{key}: expected a whole number >= 1, got {value!r}")
    if value < 1:
        raise ProblemError(f"{key}: must be >= 1, got {value}")


def check_lengths(key: str, values: tuple[float, ...], n: int) -> None:
    """One value per virtual stage."""
    if len(values) != n:
        raise ProblemError(f"{key}: expected {n} values (one per virtual stage), got {len(values)}")


def check_times(key: str, values: tuple[float, ...], n: int, first: int = 0) -> None:
    """One duration > 0 per virtual stage (``values`` starting at stage ``first``)."""
    check_lengths(key, values, n)
    for i, value in enumerate(values, start=first):
        check_positive(f"{key}[{i}]", value)


def check_positive(key: str, value: float) -> None:
    """A finite number > 0."""
    as_float(key, value)
    if value <= 0:
        raise ProblemError(f"{key}: must be > 0, got {value:g}")


def check_nonnegative(key: str, value: float) -> None:
    """A finite number >= 0."""
    as_float(key, value)
    if value < 0:
        raise ProblemError(f"{key}: must be >= 0, got {value:g}")


def did_you_mean(value: str, known: Sequence[str]) -> str:
    """``", did you mean 'zb-v'?"`` for a near miss of one of ``known`` (case, ``_``/``-``
    and spacing ignored: ``ZB-H1``, ``zbv``, ``zb_h1``), else ``""``."""
    import difflib

    def plain(text: str) -> str:
        return "".join(ch for ch in text.lower() if ch.isalnum())

    by_plain = {plain(name): name for name in known}
    if plain(value) in by_plain:
        return f", did you mean {by_plain[plain(value)]!r}?"
    close = difflib.get_close_matches(plain(value), list(by_plain), n=1)
    return f", did you mean {by_plain[close[0]]!r}?" if close else ""
