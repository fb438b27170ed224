"""Variable-length micro-batches: the ``microbatch_scale`` key (docs/contract.md §1-2).

A problem's per-stage times and activation amounts are those of a *reference* micro-batch;
micro-batch ``i`` multiplies every one of its durations (F, B, W, R) and its activation
memory (and retained part, and checkpoint) by a factor ``c_i > 0``. The key takes either the
factors themselves, one per micro-batch::

    microbatch_scale: [1.0, 2.5, 0.5, 1.0]

or sequence lengths with a time model linear plus quadratic in the length (attention)::

    microbatch_scale: {lengths: [4096, 1024, 8192], linear: 1.0, quadratic: 0.2, reference: 4096}

where ``c = (linear * x + quadratic * x**2) / (linear + quadratic)`` with ``x = L / reference``:
a micro-batch of the reference length (default: the mean length) has factor 1, so the stage
times are those of a reference-length micro-batch. The same factor scales the memory.

Micro-batch *order* also orders the baselines (:data:`MICROBATCH_ORDERS`): ``given`` runs the
micro-batches as numbered, ``longest-first`` / ``shortest-first`` by decreasing / increasing
factor (ties in the given order).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from ppopt.checks import as_float
from ppopt.errors import ProblemError

KEY = "microbatch_scale"
#: The micro-batch orders a baseline can run in.
MICROBATCH_ORDERS = ("given", "longest-first", "shortest-first")
_LENGTH_KEYS = ("lengths", "linear", "quadratic", "reference")


def parse_microbatch_scale(value: object, m: int) -> tuple[float, ...] | None:
    """The factors of a ``microbatch_scale`` value (``None``: every micro-batch is the
    reference, the uniform problem); errors name the key and index."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        factors = _from_lengths(value)
    elif isinstance(value, Sequence) and not isinstance(value, str | bytes):
        factors = tuple(_positive(f"{KEY}[{i}]", x) for i, x in enumerate(value))
    else:
        raise ProblemError(
            f"{KEY}: expected a list of factors or {{lengths: [...], ...}}, got {value!r}"
        )
    if len(factors) != m:
        raise ProblemError(
            f"{KEY}: expected {m} values (one per micro-batch, num_batches), got {len(factors)}"
        )
    return None if all(c == 1.0 for c in factors) else factors


def _positive(key: str, value: object) -> float:
    number = as_float(key, value)
    if not math.isfinite(number) or number <= 0:
        raise ProblemError(f"{key}: must be > 0, got {value!r}")
    return number


def _from_lengths(spec: Mapping[object, object]) -> tuple[float, ...]:
    """Factors of the lengths form, by the linear + quadratic time model."""
    unknown = [k for k in spec if k not in _LENGTH_KEYS]
    if unknown:
        raise ProblemError(f"{KEY}.{unknown[0]}: unknown key (known: {', '.join(_LENGTH_KEYS)})")
    lengths = spec.get("lengths")
    if not isinstance(lengths, Sequence) or isinstance(lengths, str | bytes) or not lengths:
        raise ProblemError(f"{KEY}.lengths: expected a list of positive lengths, got {lengths!r}")
    values = [_positive(f"{KEY}.lengths[{i}]", x) for i, x in enumerate(lengths)]
    linear = as_float(f"{KEY}.linear", spec.get("linear", 1.0))
    quadratic = as_float(f"{KEY}.quadratic", spec.get("quadratic", 0.0))
    for key, coef in (("linear", linear), ("quadratic", quadratic)):
        if not math.isfinite(coef) or coef < 0:
            raise ProblemError(f"{KEY}.{key}: must be >= 0, got {coef:g}")
    if linear + quadratic <= 0:
        raise ProblemError(f"{KEY}: linear + quadratic must be > 0")
    reference = spec.get("reference")
    ref = (
        sum(values) / len(values) if reference is None else _positive(f"{KEY}.reference", reference)
    )
    return tuple(
        (linear * (x / ref) + quadratic * (x / ref) ** 2) / (linear + quadratic) for x in values
    )


def microbatch_permutation(factors: Sequence[float] | None, m: int, order: str) -> list[int]:
    """The micro-batches in the order a baseline runs them: ``out[k]`` runs k-th."""
    if order not in MICROBATCH_ORDERS:
        raise ProblemError(
            f"microbatch order: expected one of {', '.join(MICROBATCH_ORDERS)}, got {order!r}"
        )
    given = list(range(m))
    if factors is None or order == "given":
        return given
    sign = -1.0 if order == "longest-first" else 1.0
    return sorted(given, key=lambda i: (sign * factors[i], i))


def describe_scale(factors: Sequence[float] | None) -> str | None:
    """One report line: the factors' range and how many distinct lengths there are."""
    if factors is None:
        return None
    distinct = len(set(factors))
    return (
        f"micro-batch scale: {min(factors):g} to {max(factors):g}, "
        f"{distinct} distinct of {len(factors)}"
    )
