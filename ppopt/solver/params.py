"""CP-SAT parameters from :class:`SolverOptions`, passed by name and checked."""

from __future__ import annotations

import threading
from typing import Any

from ortools.sat.python import cp_model

from ppopt.problem import ProblemError
from ppopt.solver.front import SolverOptions

#: Deterministic time units per second of requested time limit (CP-SAT's units are roughly
#: seconds of work on one core; this keeps ``--deterministic`` runs near the requested wall time).
DETERMINISTIC_UNITS_PER_SECOND = 1.0


def make_solver(options: SolverOptions, time_limit: float | None = None) -> cp_model.CpSolver:
    """A CP-SAT solver set up from the options; unknown parameter names are an error."""
    solver = cp_model.CpSolver()
    params = solver.parameters
    limit = options.time_limit if time_limit is None else time_limit
    params.num_workers = options.num_workers
    params.random_seed = options.seed
    if options.deterministic:
        params.interleave_search = True
        params.max_deterministic_time = limit * DETERMINISTIC_UNITS_PER_SECOND
        params.max_time_in_seconds = 10.0 * limit + 10.0
    else:
        params.max_time_in_seconds = limit
    for name, value in options.params.items():
        if not params.merge_text_format(f"{name}: {value}"):
            raise ProblemError(f"solver.params: CP-SAT has no parameter {name!r} taking {value!r}")
    return solver


def interruptible_solve(
    solver: cp_model.CpSolver,
    model: cp_model.CpModel,
    callback: cp_model.CpSolverSolutionCallback | None,
) -> tuple[Any, bool]:
    """Run CP-SAT in a worker thread so Ctrl-C in the main thread stops the search cleanly
    and the best solution so far is kept; returns the status and whether it was interrupted."""
    solver.parameters.catch_sigint_signal = False
    outcome: list[Any] = []
    failure: list[BaseException] = []
    finished = threading.Event()

    def run() -> None:
        try:
            outcome.append(solver.solve(model, callback))
        except BaseException as error:  # re-raised in the calling thread below
            failure.append(error)
        finally:
            finished.set()

    # An Event, not Thread.join: a KeyboardInterrupt inside join() can leave is_alive() wrong.
    threading.Thread(target=run, daemon=True).start()
    interrupted = False
    while not finished.is_set():
        try:
            finished.wait(timeout=0.1)
        except KeyboardInterrupt:
            interrupted = True
            solver.stop_search()
    if failure:
        raise failure[0]
    return outcome[0], interrupted
