"""Value checks that name the config key they come from (``forward_times[2]: must be > 0``).

The problem, its memory limit and the config loader all check values through these, so a
rule such as "a time is a finite number > 0" is written once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ppopt.errors import ProblemError

#: Integer units the solver gives the longest time when no power of ten makes the times whole
#: (:mod:`ppopt.solver.scaling`). A positive time below half a unit would round to nothing
#: there, so :func:`check_time_scale` refuses it: that is the solver's resolution.
TIME_RESOLUTION = 2000


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
    try:
        number = float(value)
    except OverflowError:  # an int beyond float range (e.g. 400 digits in a YAML file)
        digits = len(str(value))
        raise ProblemError(f"{key}: must be finite, got an integer of {digits} digits") from None
    if not math.isfinite(number):
        raise ProblemError(f"{key}: must be finite, got {number}")
    return number


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


def check_time_scale(times: Sequence[tuple[str, float]], total: float) -> None:
    """Times that every number ppopt computes can hold (docs/contract.md §2).

    ``times`` are ``(key, value)`` of every duration and the latency; ``total`` is the largest
    sum ppopt forms from them (the work of every task and every latency, times the device
    count: the bubble rate's ``p * T``). It must be finite, or makespans and rates come out
    ``inf`` and ``nan``; and no positive time may be below the solver's resolution, a
    ``1 / (2 * TIME_RESOLUTION)`` share of the longest, where it would round to nothing.
    """
    key, longest = max(times, key=lambda item: item[1])
    if not math.isfinite(total):
        raise ProblemError(
            f"{key}: too large: {longest:g} makes the sum of all times overflow a float"
        )
    floor = longest / (2 * TIME_RESOLUTION)
    for key, value in times:
        if 0 < value < floor:
            raise ProblemError(
                f"{key}: {value:g} is below the solver's resolution: every time must be 0 "
                f"or at least 1/{2 * TIME_RESOLUTION} of the longest ({longest:g})"
            )


def check_memory_scale(key: str, amounts: Sequence[float], count: int) -> None:
    """Memory amounts whose sum over ``count`` micro-batches is finite (a peak never overflows)."""
    if not math.isfinite(sum(amounts) * count):
        largest = max(amounts)
        raise ProblemError(f"{key}: too large: {largest:g} makes the peak memory overflow a float")


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
