"""The reported status, bound and gap agree with the last progress line, always, and the bound
is a bound (issues 17 and 21 items 3 and 14): CP-SAT's bound is used for both objectives,
converted conservatively when the times do not scale exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from solver_helpers import TOL, options
from strategies import problems
from typer.testing import CliRunner

from ppopt.cli import app
from ppopt.errors import ProblemError
from ppopt.limits import meets_bound
from ppopt.problem import Problem
from ppopt.solver import Progress, solve
from ppopt.solver.run import _horizon
from ppopt.solver.scaling import bound_ratio, memory_data, time_scale

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def run(*args: str):
    """The CLI in-process, stdout and stderr apart."""
    return CliRunner().invoke(app, list(args))


def _solve_with_progress(problem: Problem, **kwargs: object):
    lines: list[Progress] = []
    result = solve(problem, options(**kwargs), progress=lines.append)  # type: ignore[arg-type]
    return result, lines


def _agrees(result, lines: list[Progress]) -> None:
    """The last progress line is the result: same value, same bound; no line shows a bound
    above the result's or a best below it; the status follows from them."""
    assert lines
    last = lines[-1]
    assert last.best == result.objective_value
    assert last.bound == result.lower_bound
    assert max(line.bound for line in lines) <= result.lower_bound
    assert min(line.best for line in lines if line.best is not None) >= result.objective_value
    assert (result.status == "OPTIMAL") == meets_bound(result.objective_value, result.lower_bound)
    assert result.lower_bound <= result.objective_value * (1 + TOL)


def test_tiny_forward_times_give_no_bound_above_the_makespan() -> None:
    """Issue 21.3: ``-f 1e-12 -bw 1`` scaled F up to one unit (the scaling still called itself
    exact), and CP-SAT's bound of that integer problem, 22, was reported above the makespan 11
    as OPTIMAL. The bound is now converted by how much the integer times overstate the real
    ones, so it stays below the makespan."""
    with pytest.raises(ProblemError, match="below the solver's resolution"):
        Problem.create(4, 8, 1e-12, 1.0)  # now refused on construction (issue 21 item 2)
    problem = Problem.create(4, 8, 3e-4, 1.0)  # the smallest kind still accepted
    result, lines = _solve_with_progress(problem, time_limit=2.0)
    assert result.lower_bound <= result.objective_value * (1 + TOL)
    _agrees(result, lines)


def test_tiny_forward_times_cli_file_bound_below_makespan(tmp_path) -> None:
    """The same through the CLI: the schedule file's lower bound is not above its makespan."""
    out = tmp_path / "s.json"
    args = ["solve", "-s", "4", "-b", "8", "-f", "3e-4", "-bw", "1", "--time-limit", "2"]
    result = run(*args, "--workers", "1", "--no-visualization", "--json", str(out))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["solver"]["lower_bound"] <= data["metrics"]["makespan"] * (1 + TOL)


def test_exact_scaling_keeps_the_full_bound() -> None:
    """Times that scale exactly convert the bound unchanged (ratio 1)."""
    problem = Problem.create(4, 8, [1.0, 1.5, 2.0, 0.5], 2.0, weight=0.25, p2p=0.5)
    assert bound_ratio(problem, time_scale(problem), None) == 1.0


def test_rounded_memory_gives_no_cp_sat_bound() -> None:
    """Found by the property below: an activation of 3.7123089870894113 does not scale exactly,
    memory is rounded (amounts up, capacity down) so the model forbids schedules the problem
    allows, and CP-SAT's bound 8 was reported above the span 7. Its bound is not used then."""
    problem = Problem.create(
        3, 2, 0.5, 0.5, num_chunks=2, activation=[1.0, 1.0, 1.0, 1.0, 3.7123089870894113, 1.0]
    )
    assert bound_ratio(problem, time_scale(problem), memory_data(problem, problem.memory_caps)) == 0
    for objective in ("makespan", "span"):
        result, lines = _solve_with_progress(problem, time_limit=1.0, objective=objective)
        _agrees(result, lines)


def test_example_span_progress_and_report_agree() -> None:
    """Issue 17: ``configs/example_4x8.yaml --objective span`` ended its progress with "best 40
    bound 40" (CP-SAT's bound of a model that pinned each device's first start, not a bound of
    the problem) and reported FEASIBLE, bound 39. The model is now a relaxation, its bound 40
    is valid and proves the span optimal; report and progress agree."""
    problem = Problem.create(4, 8, 1.0, 2.0, p2p=0.5, memory_limit="1x")
    result, lines = _solve_with_progress(problem, time_limit=10.0, objective="span")
    _agrees(result, lines)
    assert result.status == "OPTIMAL" and result.lower_bound == 40.0
    assert result.bound_source == "cp-sat"


def test_example_span_cli_report_agrees_with_progress() -> None:
    """The same through the CLI: the report's bound is the last progress line's."""
    config = str(CONFIGS / "example_4x8.yaml")
    args = ["solve", config, "--objective", "span", "--workers", "1", "--no-visualization"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    progress = [line for line in result.stderr.splitlines() if " best " in line]
    assert "best 40  bound 40" in progress[-1]
    assert "OPTIMAL (proven), objective span, lower bound 40" in result.stdout


def test_bound_found_after_the_last_solution_is_on_the_last_line() -> None:
    """Issue 21.14: CP-SAT raised its bound after its last solution, so the progress line
    (shown at solutions only) said 267 while the report said 297. A final line now carries the
    result's bound, and the report says the bound is CP-SAT's (it depends on the time)."""
    problem = Problem.create(8, 24, 1.0, 2.0, p2p=0.5)
    result, lines = _solve_with_progress(problem, time_limit=3.0)
    _agrees(result, lines)


@settings(max_examples=12, deadline=None)
@given(problems(max_devices=4, max_microbatches=6, max_chunks=2))
def test_progress_and_result_agree_on_random_problems(problem: Problem) -> None:
    """Both objectives, random problems (unequal stages, latency, chunks, memory at 1x)."""
    for objective in ("makespan", "span"):
        result, lines = _solve_with_progress(problem, time_limit=0.5, objective=objective)
        _agrees(result, lines)


def test_span_horizon_admits_every_tight_schedule() -> None:
    """The span model's horizon is the sequential bound (every tight schedule ends by then),
    not a multiple of the hint's makespan, so no schedule the bound must cover is cut off."""
    problem = Problem.create(4, 8, 1.0, 2.0, p2p=0.5)
    assert _horizon(problem, None, "span") == _horizon(problem, None, "makespan")


def test_the_full_bound_follows_the_first_schedule() -> None:
    """The first progress line may carry the closed-form bound only (the one-machine bound
    costs about 0.1 ms a task and waits for the first baseline); the bound then rises to the
    full one, and the result reports it. Room for one micro-batch serialises everything
    here: the full bound is the optimum 25.5, the closed forms stay below it."""
    from ppopt.solver.bounds import lower_bound

    problem = Problem.create(
        2, 3, forward=[1.0, 2.0], backward=[1.5, 3.0], p2p=0.5, activation=1.0, memory_limit=1.0
    )
    caps = problem.memory_caps
    quick, full = (
        lower_bound(problem, "makespan", caps, False),
        lower_bound(problem, "makespan", caps),
    )
    assert quick < full == 25.5
    result, lines = _solve_with_progress(problem, time_limit=2.0)
    assert result.lower_bound >= full and result.status == "OPTIMAL"
    assert [line.bound for line in lines] == sorted(line.bound for line in lines)
    _agrees(result, lines)
