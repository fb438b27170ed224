"""Running CP-SAT (ppopt/solver/cpsat.py): parameters by name, checked (a misspelt one is an
error naming it, a real one runs), and the direct model's portfolio of subsolvers."""

from __future__ import annotations

import subprocess
import sys

import pytest
from solver_helpers import options

from ppopt.baselines import baseline
from ppopt.errors import SolverOptionError
from ppopt.problem import Problem
from ppopt.solver import SolverOptions, solve
from ppopt.solver.cpsat import direct_model_parameters, make_solver


@pytest.mark.parametrize(
    "params",
    [
        {"no_such_param": "1"},  # unknown name
        {"num_search_workers_typo": "2"},  # close to a real name
        {"max_time_in_seconds": "soon"},  # known name, value of the wrong type
    ],
)
def test_misspelt_cp_sat_parameter_is_an_error_naming_it(params: dict[str, str]) -> None:
    (name,) = params
    problem = Problem.create(2, 2)
    with pytest.raises(SolverOptionError, match=rf"^solver\.params: .*'{name}'"):
        solve(problem, options(params=params))


def test_known_cp_sat_parameter_is_accepted() -> None:
    """The check is not a blanket refusal: a real parameter passes and the solve runs."""
    problem = Problem.create(2, 2)
    result = solve(problem, options(params={"log_search_progress": "false"}))
    assert result.objective_value == baseline("1f1b", problem).makespan


@pytest.mark.parametrize(
    ("workers", "params", "subsolvers", "extra"),
    [
        (2, {}, ["quick_restart", "lb_tree_search"], []),  # two workers: the pair
        (4, {}, [], ["lb_tree_search"]),  # more: added to CP-SAT's list
        (1, {}, [], []),  # one worker: untouched
        (2, {"subsolvers": '"default_lp"'}, ["default_lp"], []),  # the caller's list wins
    ],
)
def test_direct_model_gives_a_worker_to_the_lower_bound_tree_search(
    workers: int, params: dict[str, str], subsolvers: list[str], extra: list[str]
) -> None:
    """The direct model's portfolio: on two workers the bound-proving tree search beside a
    restarting search, added to CP-SAT's own list with more, untouched with one worker or
    when the caller names the subsolvers."""
    opts = SolverOptions(workers=workers, params=params)
    solver = make_solver(opts)
    direct_model_parameters(solver, opts)
    assert list(solver.parameters.subsolvers) == subsolvers
    assert list(solver.parameters.extra_subsolvers) == extra


#: A memory-limited two-chunk problem on which OR-Tools 9.15 aborted the whole process
#: ("Check failed: threshold > 0") with interleave_search on one worker (found by hypothesis).
ABORTING = """
import ppopt
problem = ppopt.Problem.create(
    4, 11, num_chunks=2, p2p=4.907242422589322, memory_limit=8.175145528453958,
    forward=[2.3647688836953735, 1.5, 0.5, 4.191247059878967, 4.138567232009041,
             4.412294298623934, 0.6668243498069251, 2.585781857153399],
    backward=[2.0, 3.650118160109901, 2.0, 0.16586935114941448, 3.0, 2.0, 1.5, 2.0],
    activation=[1.5054539163538565, 2.88169602246244, 0.42072863830319995, 0.99999, 2.0,
                1.0, 1.0, 3.087582764226979],
)
options = ppopt.SolverOptions(time_limit=0.4, workers=1, deterministic=True)
result = ppopt.solve(problem, options)
assert ppopt.validate(result.schedule, problem.memory_caps) == []
print(result.status)
"""


def test_deterministic_one_worker_solve_does_not_abort_the_process() -> None:
    """Run in a child process: the failure mode is an abort that would end the test run."""
    done = subprocess.run([sys.executable, "-c", ABORTING], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.strip() in ("OPTIMAL", "FEASIBLE")


@pytest.mark.parametrize("workers", [1, 2])
def test_deterministic_interleaves_only_several_workers(workers: int) -> None:
    solver = make_solver(SolverOptions(workers=workers, deterministic=True, time_limit=2))
    assert solver.parameters.interleave_search == (workers > 1)
    assert solver.parameters.max_deterministic_time == 2.0
