"""The printed report: closed forms of 1F1B, the right reference, solver lines, limits."""

from __future__ import annotations

import pytest

from ppopt.baselines import baseline
from ppopt.metrics import compute_metrics
from ppopt.problem import Problem
from ppopt.report import (
    compare_table,
    format_report,
    reference_label,
    reference_schedule,
    summary_line,
)
from ppopt.solver.result import SolveResult


def rows(text: str) -> dict[str, list[str]]:
    """Table rows of a report by label."""
    out = {}
    for line in text.splitlines():
        label, _, cells = line.partition("  ")
        if cells:
            out[label.strip()] = cells.split()
    return out


@pytest.mark.parametrize(("p", "m"), [(4, 8), (2, 1), (3, 2), (8, 16), (5, 5)])
def test_1f1b_closed_forms_in_the_report(p: int, m: int) -> None:
    """Equal stages, no latency: makespan (m+p-1)(f+b), rate (p-1)/(m+p-1), ratio (p-1)/m."""
    problem = Problem.create(p, m, forward=1.0, backward=2.0)
    text = format_report(baseline("1f1b", problem))
    table = rows(text)
    assert table["makespan"] == [f"{(m + p - 1) * 3:g}"]  # one column: it is the reference
    assert table["bubble rate (idle share)"] == [f"{(p - 1) / (m + p - 1) * 100:.2f}%"]
    assert table["bubble ratio (idle/compute)"] == [f"{(p - 1) / m:.4g}"]
    peaks = ", ".join(str(min(p - d, m)) for d in range(p))  # 1F1B: min(p-d, m) in flight
    assert f"  1f1b  [{peaks}]" in text or (p == 1 and "1f1b  1" in text)
    assert text.startswith(f"problem: {p} devices x {m} micro-batches; F 1, B 2; p2p 0\n")


def test_split_problem_is_compared_with_classic_unsplit_1f1b() -> None:
    problem = Problem.create(4, 8, forward=1.0, backward=1.0, weight=1.0, retained=0.5)
    reference = reference_schedule(problem)
    assert not reference.problem.is_split
    assert reference.makespan == (8 + 4 - 1) * 3.0  # B + W = 2 as one full backward
    text = format_report(baseline("gpipe", problem))
    assert reference_label(problem) == "1f1b reference (unsplit B+W)"
    table = rows(text)
    assert table["makespan"][1] == "33"
    assert "span (largest per device)" in table
    assert "zero-bubble bubble (span-work)/span" in table
    assert "W 1" in text.splitlines()[0] and "retained 0.5" in text.splitlines()[0]


def test_chunked_problem_is_compared_with_merged_1f1b() -> None:
    problem = Problem.create(2, 4, forward=0.5, backward=1.0, num_chunks=2)
    reference = reference_schedule(problem)
    assert reference.problem.num_chunks == 1
    assert reference.problem.forward == (1.0, 1.0)  # two chunks of 0.5 on each device
    assert reference.makespan == (4 + 2 - 1) * 3.0
    assert reference_label(problem) == "1f1b reference (chunks merged)"
    text = format_report(baseline("gpipe", problem))
    assert "2 chunks per device (4 virtual stages, interleaved placement)" in text


def test_memory_limit_line_and_exceeding_schedules() -> None:
    problem = Problem.create(4, 8, memory_limit="1x")
    text = format_report(baseline("gpipe", problem))
    assert "memory limit: 1x the 1F1B peak = 4 per device" in text  # 1F1B peak: p on device 0
    assert "  gpipe           [8, 8, 8, 8]  (exceeds the memory limit)" in text
    assert "  1f1b reference  [4, 3, 2, 1]\n" in text + "\n"
    absolute = format_report(baseline("1f1b", Problem.create(2, 2, memory_limit=[2, 3])))
    assert "memory limit: [2, 3] per device" in absolute


def test_solver_lines() -> None:
    problem = Problem.create(4, 8, p2p=0.5, memory_limit="1x")
    schedule = baseline("1f1b", problem).renamed("optimal")  # stands in for a solver result
    result = SolveResult(
        schedule=schedule,
        status="FEASIBLE",
        objective="makespan",
        objective_value=schedule.makespan,
        lower_bound=36.9,
        wall_time=1.234,
        source="cp-sat",
    )
    text = format_report(schedule, result)
    gap = (41 - 36.9) / 41
    assert (
        f"solver: FEASIBLE, objective makespan, lower bound 36.9, gap {gap * 100:.2f}%, "
        "solve time 1.23 s, schedule from cp-sat"
    ) in text
    assert "improvement over 1F1B: 0.00% (makespan 41 -> 41)" in text
    assert rows(text)["makespan"] == ["41", "41"]


def test_interrupted_schedule_is_marked() -> None:
    schedule = baseline("1f1b", Problem.create(2, 2))
    interrupted = type(schedule)(schedule.problem, "optimal", schedule.device_ops, True)
    assert "interrupted" in format_report(interrupted).splitlines()[-1]
    assert summary_line(interrupted).endswith("(interrupted)")


def test_compare_table_fits_row() -> None:
    problem = Problem.create(3, 6, memory_limit="1x")
    lines = compare_table([baseline("1f1b", problem), baseline("gpipe", problem)])
    table = rows("\n".join(lines))
    assert lines[0] == "memory limit: 1x the 1F1B peak = 3 per device"
    assert table["makespan"] == ["24", "24"]  # (6+3-1)*3 for both
    assert table["fits the memory limit"] == ["yes", "no"]
    metrics = compute_metrics(baseline("gpipe", problem))
    assert table["peak memory (max device)"][1] == f"{max(metrics.peak_memory):g}" == "6"
