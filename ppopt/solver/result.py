"""What a solve returns: :class:`SolveResult`, with its :class:`Status`."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ppopt.schedule import Schedule
from ppopt.solver.options import Objective


class Status(StrEnum):
    """``OPTIMAL`` when the schedule's objective meets the lower bound (proven), else
    ``FEASIBLE``; infeasible or timed-out solves are a status, never an exception."""

    OPTIMAL = "OPTIMAL"
    FEASIBLE = "FEASIBLE"


@dataclass(frozen=True)
class SolveResult:
    """What a solve returns.

    ``schedule`` is timed by the float timeline engine from the solver's orders (and says
    whether the solve was interrupted); ``lower_bound`` bounds the chosen objective from
    below; ``source`` names where the schedule came from: ``cp-sat`` or the baseline kept as
    the floor (e.g. ``greedy-fill``); ``bound_source`` where the bound came from: ``ppopt``
    (its own bound, the same on every run) or ``cp-sat`` (CP-SAT's search, which depends on
    the time it had: a loaded machine can report a weaker one).
    """

    schedule: Schedule
    status: Status
    objective: Objective
    objective_value: float
    lower_bound: float
    wall_time: float
    source: str
    bound_source: str = "ppopt"

    @property
    def interrupted(self) -> bool:
        """True when the user stopped the solve (the schedule is the best found so far)."""
        return self.schedule.interrupted

    @property
    def gap(self) -> float:
        """``(value - lower bound) / value``, 0 when proven optimal."""
        if self.objective_value <= 0:
            return 0.0
        return max(0.0, (self.objective_value - self.lower_bound) / self.objective_value)

    def to_dict(self) -> dict[str, object]:
        """The ``solver`` object of the schedule file (docs/contract.md §4)."""
        return {
            "status": str(self.status),
            "objective": str(self.objective),
            "lower_bound": self.lower_bound,
            "gap": self.gap,
            "wall_time": self.wall_time,
            "source": self.source,
            "bound_source": self.bound_source,
            "interrupted": self.interrupted,
        }
