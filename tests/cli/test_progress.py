"""The progress display (``ppopt.cli.progress``): no repeated lines, throttled when written to
a file, one line rewritten in place on a terminal, and a final line that is the report's."""

from __future__ import annotations

import io
import re
from pathlib import Path

from cli_helpers import run

from ppopt.cli.progress import ProgressLine
from ppopt.problem import Problem
from ppopt.solver import Progress, SolverOptions, solve

ROOT = Path(__file__).resolve().parents[2]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_identical_updates_are_shown_once() -> None:
    """The issue's 0.03 s solve: 14 updates, 13 of them 'best 41 bound 39'."""
    stream, clock = io.StringIO(), Clock()
    line = ProgressLine(stream, terminal=False, clock=clock)
    line(Progress(0.0, None, 39))
    for k in range(13):
        clock.now = 2.0 * (k + 1)  # far apart: only repetition keeps them off
        line(Progress(clock.now, 41, 39))
    assert stream.getvalue().splitlines() == [
        "     0.00 s  best -  bound 39",
        "     2.00 s  best 41  bound 39",
    ]


def test_file_lines_at_most_one_a_second() -> None:
    stream, clock = io.StringIO(), Clock()
    line = ProgressLine(stream, terminal=False, clock=clock)
    for now, best in ((0.0, 50), (0.2, 48), (0.5, 46), (1.2, 45), (1.3, 44), (2.4, 43)):
        clock.now = now
        line(Progress(now, best, 40))
    shown = [int(m[1]) for m in re.finditer(r"best (\d+)", stream.getvalue())]
    assert shown == [50, 45, 43]


def test_terminal_line_is_rewritten_in_place_and_ends_with_the_result() -> None:
    problem = Problem.create(4, 8)
    stream = io.StringIO()
    line = ProgressLine(stream, terminal=True)
    result = solve(problem, SolverOptions(time_limit=10, workers=1), progress=line)
    line.finish(result)
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")  # one line, finished once
    final = text.rsplit("\r", 1)[-1]
    assert f"best {result.objective_value:.6g}" in final
    assert f"bound {result.lower_bound:.6g}" in final and str(result.status) in final


def test_cli_last_progress_line_agrees_with_the_report() -> None:
    config = ROOT / "configs" / "example_4x8.yaml"
    result = run("solve", str(config), "--workers", "1", "--no-visualization")
    assert result.exit_code == 0, result.output
    last = result.stderr.strip().splitlines()[-1]
    report = re.search(r"solver: (\w+).*lower bound ([\d.]+).*?, gap ([\d.]+)%", result.stdout)
    makespan = re.search(r"makespan\s+([\d.]+)", result.stdout)
    assert report and makespan
    assert f"{report[1]}  best {makespan[1]}  bound {report[2]}  gap {report[3]}%" in last
    assert len(result.stderr.strip().splitlines()) <= 3
