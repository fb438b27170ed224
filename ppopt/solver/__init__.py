"""The optimizer's front door: :func:`solve` a problem, get a :class:`SolveResult`.

No module outside ``ppopt.solver`` imports OR-Tools. Infeasible or timed-out solves are a
*status*; the only exception is :class:`~ppopt.errors.NoScheduleError`, for a problem that has
no schedule at all (a memory limit below what one micro-batch needs). Layers, each depending
only on those before it: ``options``/``result`` → ``scaling``, ``bounds``, ``cpsat`` →
``model``, ``window``, ``local``, ``floor`` → ``run`` (:func:`solve`).
"""

from __future__ import annotations

from ppopt.solver.options import Method, Objective, Order, Progress, ProgressCallback, SolverOptions
from ppopt.solver.result import SolveResult, Status
from ppopt.solver.run import solve

__all__ = [
    "Method",
    "Objective",
    "Order",
    "Progress",
    "ProgressCallback",
    "SolveResult",
    "SolverOptions",
    "Status",
    "solve",
]
