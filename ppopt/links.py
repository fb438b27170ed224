"""The latency of the links between devices, ``p2p_time`` (docs/contract.md §1).

``p2p_time`` is one of three shapes:

* one number: every edge between two devices waits that long (the seed's rule);
* a list of ``S-1`` numbers, one per *boundary* between consecutive virtual stages: entry
  ``s`` is the wait of the forward edge from stage ``s`` to ``s+1`` and of the backward edge
  back from ``s+1`` to ``s``;
* a ``p x p`` matrix (a list of ``p`` lists of ``p``), one number per ordered device pair:
  entry ``[a][b]`` is the wait of every edge from a task on device ``a`` to one on device
  ``b`` (it may differ from ``[b][a]``).

Whatever the shape, an edge between two tasks on one device waits nothing: a list entry of a
boundary inside one device (V-shape's turn) and the matrix's diagonal are never used (any
finite value >= 0 is accepted there, so one latency file serves every placement).

This module holds the value, its checks and its text; :meth:`ppopt.problem.Problem.hop` is the
one place that turns it into the wait of an edge.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

from ppopt.checks import as_float, check_nonnegative
from ppopt.errors import ProblemError

#: Per-boundary latencies (length ``S-1``).
LinkList = tuple[float, ...]
#: Per-device-pair latencies (``p x p``, ``[from][to]``).
LinkMatrix = tuple[tuple[float, ...], ...]
#: What ``p2p_time`` holds once parsed.
P2P = float | LinkList | LinkMatrix

KEY = "p2p_time"


def parse_p2p(value: object, key: str = KEY) -> P2P:
    """``p2p_time`` as given (a number, a list of numbers or a list of lists) as floats and
    tuples; its shape is checked against the problem by :func:`check_p2p`."""
    if not _is_list(value):
        return as_float(key, value)
    assert isinstance(value, Sequence)
    if any(_is_list(row) for row in value):
        rows = []
        for a, row in enumerate(value):
            if not _is_list(row):
                raise ProblemError(
                    f"{key}[{a}]: expected a row of the matrix (a list), got {row!r}"
                )
            assert isinstance(row, Sequence)
            rows.append(tuple(as_float(f"{key}[{a}][{b}]", x) for b, x in enumerate(row)))
        return tuple(rows)
    return tuple(as_float(f"{key}[{s}]", x) for s, x in enumerate(value))


def check_p2p(p2p: P2P, num_stages: int, num_devices: int, key: str = KEY) -> None:
    """The shape (one number, ``S-1`` boundaries or ``p x p`` devices) and every entry a
    finite number >= 0; one line naming the key and the index otherwise."""
    if is_matrix(p2p):
        assert isinstance(p2p, tuple)
        rows: LinkMatrix = p2p  # type: ignore[assignment]
        if len(rows) != num_devices or any(len(row) != num_devices for row in rows):
            shape = f"{len(rows)} rows of " + "/".join(sorted({str(len(r)) for r in rows}))
            raise ProblemError(
                f"{key}: a matrix must be {num_devices}x{num_devices} (one row and column "
                f"per device), got {shape}"
            )
    elif isinstance(p2p, tuple) and len(p2p) != num_stages - 1:
        raise ProblemError(
            f"{key}: expected one number, {num_stages - 1} values (one per boundary between "
            f"virtual stages) or a {num_devices}x{num_devices} matrix, got {len(p2p)} values"
        )
    for name, value in named_values(p2p, key):
        check_nonnegative(name, value)


def is_matrix(p2p: P2P) -> bool:
    """True for a per-device-pair matrix."""
    return isinstance(p2p, tuple) and bool(p2p) and isinstance(p2p[0], tuple)


def named_values(p2p: P2P, key: str = KEY) -> list[tuple[str, float]]:
    """Every entry with its config name: ``[("p2p_time", 0.5)]``, ``("p2p_time[3]", …)`` or
    ``("p2p_time[0][1]", …)``."""
    if isinstance(p2p, float | int):
        return [(key, float(p2p))]
    if is_matrix(p2p):
        return [
            (f"{key}[{a}][{b}]", float(x))
            for a, row in enumerate(cast(LinkMatrix, p2p))
            for b, x in enumerate(row)
        ]
    return [(f"{key}[{s}]", float(x)) for s, x in enumerate(cast(LinkList, p2p))]


def map_values(p2p: P2P, change: Callable[[float], float]) -> P2P:
    """The same shape with every entry changed (the solver's integer scaling)."""
    if isinstance(p2p, float | int):
        return change(p2p)
    if is_matrix(p2p):
        return tuple(tuple(change(x) for x in row) for row in cast(LinkMatrix, p2p))
    return tuple(change(x) for x in cast(LinkList, p2p))


def to_config(p2p: P2P) -> float | list[float] | list[list[float]]:
    """The value as the config file writes it (lists, not tuples)."""
    if isinstance(p2p, float | int):
        return float(p2p)
    if is_matrix(p2p):
        return [list(row) for row in cast(LinkMatrix, p2p)]
    return list(cast(LinkList, p2p))


def _is_list(value: object) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)
