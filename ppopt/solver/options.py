"""How to run the optimizer: :class:`SolverOptions`, and the progress reports it sends."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from ppopt.errors import SolverOptionError
from ppopt.metrics import Objective


class Order(StrEnum):
    """``free``: the optimizer picks every device's order; ``fixed``: the 1F1B order, timed."""

    FREE = "free"
    FIXED = "fixed"


class Method(StrEnum):
    """``direct``: the full CP-SAT model (proves optimality on small problems); ``large``:
    heuristics, then exact window re-solves, then LNS; ``auto`` picks by task count."""

    AUTO = "auto"
    DIRECT = "direct"
    LARGE = "large"


@dataclass(frozen=True)
class Progress:
    """One progress report of a running solve."""

    elapsed: float
    best: float | None
    bound: float


ProgressCallback = Callable[[Progress], None]
#: CP-SAT's seed is a 32-bit signed integer; more workers than this are threads, not speed.
MAX_SEED = 2**31 - 1
MAX_WORKERS = 1024
_E = TypeVar("_E", bound=StrEnum)


@dataclass(frozen=True)
class SolverOptions:
    """How to run the optimizer.

    ``workers`` 0 means every core; ``params`` are extra CP-SAT parameters by their names
    (a misspelt name is an error); ``deterministic`` makes the result depend only on the input.
    ``method``: ``direct`` runs CP-SAT's full presolve (best on small problems, where it proves
    optimality), ``large`` skips presolve so the heuristic hint is CP-SAT's first solution at
    once and its search improves it; ``auto`` picks by task count. ``time_limit`` covers the
    whole solve, heuristics and model building included. Words may be given as plain strings.
    """

    time_limit: float = 10.0
    workers: int = 0
    seed: int = 0
    order: Order = Order.FREE
    objective: Objective = Objective.MAKESPAN
    deterministic: bool = False
    params: dict[str, str] = field(default_factory=dict)
    method: Method = Method.AUTO

    def __post_init__(self) -> None:
        if not self.time_limit > 0:
            raise SolverOptionError(
                f"solver.time_limit: must be > 0 seconds, got {self.time_limit}"
            )
        for key, top in (("workers", MAX_WORKERS), ("seed", MAX_SEED)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int):
                raise SolverOptionError(f"solver.{key}: expected a whole number, got {value!r}")
            if value < 0:
                raise SolverOptionError(f"solver.{key}: must be >= 0, got {value}")
            if value > top:
                raise SolverOptionError(f"solver.{key}: must be <= {top}, got {value}")
        for key, enum in (("order", Order), ("objective", Objective), ("method", Method)):
            object.__setattr__(self, key, _word(f"solver.{key}", getattr(self, key), enum))

    @property
    def num_workers(self) -> int:
        """The worker count to pass to CP-SAT (never 0)."""
        return self.workers or os.cpu_count() or 1


def _word(key: str, value: object, enum: type[_E]) -> _E:
    """``value`` as a member of ``enum``, or a one-line error listing the words."""
    try:
        return enum(value)  # type: ignore[arg-type]  # a wrong type is refused below
    except ValueError:
        words = [member.value for member in enum]
        listed = " or ".join(words) if len(words) == 2 else "one of " + ", ".join(words)
        raise SolverOptionError(f"{key}: expected {listed}, got {value!r}") from None
