"""Options, result and the ``solve`` entry point of the optimizer."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from ppopt.problem import Problem, ProblemError
from ppopt.schedule import Schedule

ORDERS = ("free", "fixed")
OBJECTIVES = ("makespan", "span")
METHODS = ("auto", "direct", "large")


class NoScheduleError(Exception):
    """The problem has no schedule at all (exit code 1), e.g. a memory limit too small."""


@dataclass(frozen=True)
class Progress:
    """One progress report of a running solve."""

    elapsed: float
    best: float | None
    bound: float


@dataclass(frozen=True)
class SolverOptions:
    """How to run the optimizer.

    ``workers`` 0 means every core; ``params`` are extra CP-SAT parameters by their names
    (a misspelt name is an error); ``deterministic`` makes the result depend only on the input.
    ``method``: ``direct`` runs CP-SAT's full presolve (best on small problems, where it proves
    optimality), ``large`` skips presolve so the heuristic hint is CP-SAT's first solution at
    once and its search improves it; ``auto`` picks by task count. ``time_limit`` covers the
    whole solve, heuristics and model building included.
    """

    time_limit: float = 10.0
    workers: int = 0
    seed: int = 0
    order: str = "free"
    objective: str = "makespan"
    deterministic: bool = False
    params: dict[str, str] = field(default_factory=dict)
    method: str = "auto"

    def __post_init__(self) -> None:
        if not self.time_limit > 0:
            raise ProblemError(f"solver.time_limit: must be > 0 seconds, got {self.time_limit}")
        if self.workers < 0:
            raise ProblemError(f"solver.workers: must be >= 0, got {self.workers}")
        if self.order not in ORDERS:
            raise ProblemError(f"solver.order: expected free or fixed, got {self.order!r}")
        if self.method not in METHODS:
            raise ProblemError(
                f"solver.method: expected one of {', '.join(METHODS)}, got {self.method!r}"
            )
        if self.objective not in OBJECTIVES:
            raise ProblemError(
                f"solver.objective: expected makespan or span, got {self.objective!r}"
            )

    @property
    def num_workers(self) -> int:
        """The worker count to pass to CP-SAT (never 0)."""
        return self.workers or os.cpu_count() or 1


@dataclass(frozen=True)
class SolveResult:
    """What a solve returns.

    ``schedule`` is timed by the float timeline engine from the solver's orders; ``status`` is
    CP-SAT's word (``OPTIMAL`` when proven); ``lower_bound`` bounds the chosen objective from
    below; ``source`` says whether the schedule came from CP-SAT or a baseline kept as floor.
    """

    schedule: Schedule
    status: str
    objective: str
    objective_value: float
    lower_bound: float
    wall_time: float
    source: str
    interrupted: bool = False

    @property
    def gap(self) -> float:
        """``(value - lower bound) / value``, 0 when proven optimal."""
        if self.objective_value <= 0:
            return 0.0
        return max(0.0, (self.objective_value - self.lower_bound) / self.objective_value)

    def to_dict(self) -> dict[str, object]:
        """The ``solver`` object of the schedule file (CONTRACT §4)."""
        return {
            "status": self.status,
            "objective": self.objective,
            "lower_bound": self.lower_bound,
            "gap": self.gap,
            "wall_time": self.wall_time,
            "source": self.source,
            "interrupted": self.interrupted,
        }


ProgressCallback = Callable[[Progress], None]


def check_one_microbatch_fits(problem: Problem, limit: tuple[float, ...] | None) -> None:
    """Raise :class:`NoScheduleError` when a device cannot hold even one micro-batch."""
    if limit is None:
        return
    for d in range(problem.num_devices):
        need = sum(problem.activation[s] for s in problem.stages_on(d))
        if need > limit[d] * (1 + 1e-9):
            raise NoScheduleError(
                f"no schedule: device {d} needs {need:g} memory for one micro-batch, "
                f"the limit is {limit[d]:g}"
            )


def solve(
    problem: Problem,
    options: SolverOptions | None = None,
    progress: ProgressCallback | None = None,
) -> SolveResult:
    """Find the best schedule of ``problem`` under its memory limit (CONTRACT §1)."""
    from ppopt.solver.run import run_solver

    return run_solver(problem, options or SolverOptions(), progress)
