"""Memory limits and the tolerances of every float comparison, each written once.

A limit is written as ``none``, ``Nx`` (N times the peak of the 1F1B baseline on its most
loaded device, docs/contract.md §1) or absolute values; :meth:`ppopt.problem.Problem.memory_caps`
turns it into one absolute value per device, once per problem. Comparisons of float sums get
a relative slack so that rounding is never reported as a violation nor used as an excuse:
``TIME_TOLERANCE`` for times (validator, engine checks), ``MEMORY_TOLERANCE`` for memory
against a limit (greedy, solver, report, validator), ``BOUND_TOLERANCE`` for "the objective
meets the lower bound" (the proof of optimality).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ppopt.checks import as_float, check_positive, parse_number
from ppopt.errors import ProblemError

#: Slack on time comparisons (the validator): ``|a - b| <= TIME_TOLERANCE * shortest time +
#: TIME_ULPS * ulp(|a|)``. Relative to the problem's own shortest time, not to ``|a|``: a slack
#: growing with the time itself would let a schedule shifted to 1e12 hide a 500-unit error.
TIME_TOLERANCE = 1e-9
#: Float rounding allowed at a time ``t``: the engine adds each duration once (half an ulp),
#: and a file's reader or writer may differ by a few more roundings.
TIME_ULPS = 16
#: Relative slack on memory against a limit: ``level <= cap * (1 + MEMORY_TOLERANCE)``.
MEMORY_TOLERANCE = 1e-9
#: Relative slack for "the objective meets the lower bound" (then the result is proven).
BOUND_TOLERANCE = 1e-12
#: How far (in ulps) :func:`tidy` may move a float that ppopt writes to a file: the float
#: noise of a few additions, well inside the validator's ``TIME_ULPS``.
TIDY_ULPS = 4


def tidy(value: object) -> object:
    """A number as ppopt writes it to a file: a float as the shortest decimal (12 to 17
    significant digits) within :data:`TIDY_ULPS` ulps of it, so the float noise of sums is not
    written (``29.999999999999996``, 30 made of decimal durations, is written ``30.0``) while
    every digit that means something is kept. Lists, tuples and dicts are tidied through;
    anything else is returned as it is."""
    if isinstance(value, float):
        return _shortest_near(value)
    if isinstance(value, list | tuple):
        return [tidy(item) for item in value]
    if isinstance(value, dict):
        return {key: tidy(item) for key, item in value.items()}
    return value


def _shortest_near(value: float) -> float:
    """The shortest decimal within :data:`TIDY_ULPS` ulps of ``value`` (``value`` itself when
    none is shorter, and for infinities and NaN), if it is its own: a number read back from a
    file and written again must not change (rounding to 16 digits, then 15, can reach a
    decimal that rounding ``value`` to 15 digits does not), so when the decimal would be
    tidied further, ``value`` is written as it is."""
    near = _one_step(value)
    return near if _one_step(near) == near else value


def _one_step(value: float) -> float:
    """The shortest decimal within :data:`TIDY_ULPS` ulps of ``value``."""
    if not math.isfinite(value):
        return value
    near = TIDY_ULPS * math.ulp(value)
    for digits in range(12, 17):
        candidate = float(f"{value:.{digits}g}")
        if abs(candidate - value) <= near:
            return candidate
    return value


@dataclass(frozen=True)
class MemoryLimit:
    """A per-device activation-memory limit as the user wrote it.

    Exactly one of: nothing (no limit), ``factor`` (N times the peak of the 1F1B baseline on
    its most loaded device) or ``values`` (absolute, one value or one per device).
    """

    factor: float | None = None
    values: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.factor is not None and self.values is not None:
            raise ProblemError("memory.limit: give either a factor (Nx) or absolute values")
        if self.factor is not None:
            check_positive("memory.limit", self.factor)
        if self.values is not None:
            if not self.values:
                raise ProblemError("memory.limit: empty list")
            for i, value in enumerate(self.values):
                check_positive(f"memory.limit[{i}]", value)

    @property
    def is_none(self) -> bool:
        """True when there is no limit at all."""
        return self.factor is None and self.values is None

    @classmethod
    def parse(cls, raw: object) -> MemoryLimit:
        """Read ``none``, ``'2x'``, a number or a list of numbers (config or command line)."""
        if raw is None or isinstance(raw, MemoryLimit):
            return raw if isinstance(raw, MemoryLimit) else cls()
        if isinstance(raw, str):
            text = raw.strip().lower()
            if text in ("none", "null", "inf", ""):
                return cls()
            if text.endswith("x"):
                return cls(factor=_factor(text[:-1]))
            parts = [part for part in text.replace(",", " ").split() if part]
            return cls(values=tuple(parse_number("memory.limit", part) for part in parts))
        if isinstance(raw, bool):
            raise ProblemError(f"memory.limit: expected none, Nx or a number, got {raw!r}")
        if isinstance(raw, int | float):
            return cls(values=(float(raw),))
        if isinstance(raw, Sequence):
            return cls(values=tuple(as_float(f"memory.limit[{i}]", x) for i, x in enumerate(raw)))
        raise ProblemError(f"memory.limit: expected none, Nx or a number, got {raw!r}")

    def to_config(self) -> str | float | list[float]:
        """The value as it would be written in a config file."""
        if self.factor is not None:
            short = f"{self.factor:g}"
            return f"{short if float(short) == self.factor else repr(self.factor)}x"
        if self.values is not None:
            return self.values[0] if len(self.values) == 1 else list(self.values)
        return "none"

    def absolute(self, num_devices: int, reference_peak: float) -> tuple[float, ...] | None:
        """One absolute value per device (``None``: no limit); ``reference_peak`` is the unit
        of ``Nx``."""
        if self.factor is not None:
            return (self.factor * reference_peak,) * num_devices
        if self.values is not None:
            return per_device("memory.limit", self.values, num_devices)
        return None


def _factor(text: str) -> float:
    """The N of ``Nx``: a number, or a fraction ``a/b`` (``1/3x`` is exactly a third, where
    ``0.33x`` is a little less and may not hold what a third holds)."""
    if "/" not in text:
        return parse_number("memory.limit", text)
    top, _, bottom = text.partition("/")
    denominator = parse_number("memory.limit", bottom)
    if denominator <= 0:
        raise ProblemError(f"memory.limit: the fraction {text}x needs a denominator > 0")
    return parse_number("memory.limit", top) / denominator


#: The optimizer's default limit, and so the default of every problem: no more memory than 1F1B.
DEFAULT_LIMIT = MemoryLimit(factor=1.0)


def per_device(key: str, values: Sequence[float], num_devices: int) -> tuple[float, ...]:
    """One value or one per device, as one value per device."""
    out = tuple(float(x) for x in values)
    if len(out) == 1:
        return out * num_devices
    if len(out) != num_devices:
        raise ProblemError(
            f"{key}: expected 1 or {num_devices} values (one per device), got {len(out)}"
        )
    return out


def within(level: float, cap: float) -> bool:
    """Whether a memory level is within a limit, up to float rounding."""
    return level <= cap * (1 + MEMORY_TOLERANCE)


def fits(peaks: Sequence[float], caps: Sequence[float] | None) -> bool:
    """Whether every device's peak memory is within its limit (``None``: no limit)."""
    if caps is None:
        return True
    return all(within(peak, cap) for peak, cap in zip(peaks, caps, strict=True))


def meets_bound(value: float, bound: float) -> bool:
    """Whether an objective value meets a lower bound, up to float rounding (proven optimal)."""
    return value <= bound * (1 + BOUND_TOLERANCE)
