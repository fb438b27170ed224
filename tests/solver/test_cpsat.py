"""Running CP-SAT (ppopt/solver/cpsat.py): parameters by name, checked (a misspelt one is an
error naming it, a real one runs), and the direct model's portfolio of subsolvers."""

from __future__ import annotations

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
