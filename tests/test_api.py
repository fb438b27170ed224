"""The public Python API: the README's example runs as printed, and the API's defaults are
the command line's (same problem, same optimum)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

import ppopt
from ppopt.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def python_example() -> str:
    """The ```python block of the README's "Python API" section."""
    section = README.read_text(encoding="utf-8").split("## Python API", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None, "README: no python block under 'Python API'"
    return match.group(1)


def test_readme_example_runs_and_prints_what_it_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    exec(compile(python_example(), "README.md", "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "OPTIMAL 40.0 40.0"
    makespan, rate = lines[1].split()
    assert float(makespan) == 41.0 and float(rate) == pytest.approx(17 / 41)
    assert (tmp_path / "optimal.json").exists()


def test_python_and_cli_defaults_agree(tmp_path: Path) -> None:
    """The same problem gives the same optimum from Python and from ``ppopt solve`` (both
    at the default 1x limit: 40, where no limit would give 36)."""
    problem = ppopt.Problem.create(num_stages=4, num_batches=8, p2p_time=0.5)
    result = ppopt.solve(problem, ppopt.SolverOptions(time_limit=10, workers=1))
    out = tmp_path / "s.json"
    args = ["solve", "-s", "4", "-b", "8", "--p2p-time", "0.5", "--workers", "1"]
    run = CliRunner().invoke(app, [*args, "--no-visualization", "--quiet", "--json", str(out)])
    assert run.exit_code == 0, run.output
    from_cli, _ = ppopt.read_schedule(out)
    assert result.schedule.makespan == from_cli.makespan == 40.0
    unlimited = ppopt.solve(problem.with_limit("none"), ppopt.SolverOptions(workers=1))
    assert unlimited.schedule.makespan == 36.0


def test_config_names_and_short_names_build_the_same_problem() -> None:
    by_config = ppopt.Problem.create(
        num_stages=3, num_batches=5, forward_times=[1, 2, 1], backward_times=2, weight_times=1
    )
    by_short = ppopt.Problem.create(3, 5, forward=[1, 2, 1], backward=2, weight=1)
    assert by_config == by_short
    with pytest.raises(ppopt.ProblemError, match="^num_stage: unknown argument"):
        ppopt.Problem.create(num_stage=3, num_batches=5)


def test_every_public_name_is_importable() -> None:
    for name in ppopt.__all__:
        assert getattr(ppopt, name) is not None, name
    assert ppopt.__version__


@pytest.mark.parametrize(
    "error",
    [
        ppopt.ProblemError,
        ppopt.ConfigError,
        ppopt.SolverOptionError,
        ppopt.UnknownScheduleError,
        ppopt.NotApplicableError,
        ppopt.ScheduleFileError,
        ppopt.OrderError,
        ppopt.DeadlockError,
        ppopt.NoScheduleError,
    ],
)
def test_every_error_is_a_ppopt_error(error: type[Exception]) -> None:
    assert issubclass(error, ppopt.PpoptError)


def test_causes_raise_their_own_error() -> None:
    problem = ppopt.Problem.create(2, 4)
    with pytest.raises(ppopt.UnknownScheduleError):
        ppopt.baseline("zz", problem)
    with pytest.raises(ppopt.SolverOptionError):
        ppopt.SolverOptions(objective="cost")
    with pytest.raises(ppopt.NotApplicableError):
        ppopt.baseline("zb-h1", problem)  # needs a split backward
    with pytest.raises(ppopt.NoScheduleError):
        ppopt.solve(problem.with_limit(0.5))
