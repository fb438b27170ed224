"""Running CP-SAT: a solver set up from :class:`SolverOptions` (parameters by name, checked),
the parameter presets of the two methods, and a solve that Ctrl-C stops cleanly."""

from __future__ import annotations

import threading
from typing import Any

from ortools.sat.python import cp_model

from ppopt.errors import SolverOptionError
from ppopt.solver.options import SolverOptions

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
        # Several workers need interleaving to be reproducible; one worker is by itself, and
        # OR-Tools 9.15 aborts the process with interleave_search on one worker on some
        # memory-limited models ("Check failed: threshold > 0", tests/solver/test_cpsat.py).
        params.interleave_search = options.num_workers > 1
        params.max_deterministic_time = limit * DETERMINISTIC_UNITS_PER_SECOND
        params.max_time_in_seconds = 10.0 * limit + 10.0
    else:
        params.max_time_in_seconds = limit
    for name, value in options.params.items():
        if not params.merge_text_format(f"{name}: {value}"):
            raise SolverOptionError(
                f"solver.params: CP-SAT has no parameter {name!r} taking {value!r}"
            )
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


def large_model_parameters(solver: cp_model.CpSolver, options: SolverOptions) -> None:
    """Past a few thousand tasks CP-SAT's presolve and its full-model worker can run far past
    the time limit (measured: 39 s of a 12 s limit at 6k intervals, without checking the clock);
    large neighbourhood search alone starts from the heuristic hint and respects the limit."""
    if "cp_model_presolve" not in options.params:
        solver.parameters.cp_model_presolve = False
    if "use_lns_only" not in options.params:
        solver.parameters.use_lns_only = True
    if options.num_workers == 1:
        # One worker means no LNS: the single full-model worker runs, and its root probing and
        # first LP solve ignore the clock and Ctrl-C (measured at p=16, m=64 split, 1 worker:
        # 10.4 s for a 3 s limit, 7 s from stop_search to return; 3.1 s without them).
        if "linearization_level" not in options.params:
            solver.parameters.linearization_level = 0
        if "cp_model_probing_level" not in options.params:
            solver.parameters.cp_model_probing_level = 0


def direct_model_parameters(solver: cp_model.CpSolver, options: SolverOptions) -> None:
    """Give one of the workers to CP-SAT's lower-bound tree search, which is what proves
    optimality on the direct model. Measured on p=8 m=16 split (384 tasks), 2 workers, 60 s:
    the default portfolio (``default_lp`` + LNS) left a 0.21 % gap; ``quick_restart`` +
    ``lb_tree_search`` proved it in 9.8, 11.0 and 16.3 s (three runs); ``default_lp`` +
    ``lb_tree_search`` in 7.5 to 48 s in four runs, and once not within 60 s. With more
    workers the tree search joins CP-SAT's own portfolio; one worker keeps CP-SAT's default."""
    if "subsolvers" in options.params or "extra_subsolvers" in options.params:
        return
    workers = options.num_workers
    if workers == 2:
        solver.parameters.subsolvers.extend(["quick_restart", "lb_tree_search"])
    elif workers > 2:
        solver.parameters.extra_subsolvers.append("lb_tree_search")
