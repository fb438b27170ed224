"""The optimizer's front door: :func:`solve` a problem, get a :class:`SolveResult`.

No module outside ``ppopt.solver`` imports OR-Tools. Infeasible or timed-out solves are a
*status*; the only exception is :class:`NoScheduleError`, for a problem that has no schedule
at all (a memory limit below what one micro-batch needs).
"""

from __future__ import annotations

from ppopt.solver.front import NoScheduleError, SolveResult, SolverOptions, solve

__all__ = ["NoScheduleError", "SolveResult", "SolverOptions", "solve"]
