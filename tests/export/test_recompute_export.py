"""Exporting a schedule that recomputes (ppopt/export/torch_csv.py): a per-stage choice is
a table without R actions plus the stages to wrap in activation checkpointing; a
per-micro-batch choice is refused (PyTorch's table has no recompute action)."""

from __future__ import annotations

import pytest

from ppopt.errors import NotApplicableError, ProblemError
from ppopt.export.torch_csv import checkpointed_stages, torch_rows
from ppopt.problem import Problem
from ppopt.solver import SolverOptions, solve
from ppopt.tasks import Kind

OPTIONS = SolverOptions(workers=1, deterministic=True, time_limit=5.0)


def test_per_stage_choice_exports_without_r_and_names_the_stages() -> None:
    problem = Problem.create(4, 8, recompute="auto", recompute_per="stage", memory_limit="0.5x")
    schedule = solve(problem, OPTIONS).schedule
    chosen = schedule.problem
    stages = checkpointed_stages(schedule)
    assert stages and all((s, i) in chosen.recomputed for s in stages for i in range(8))
    rows = torch_rows(schedule)
    computes = [op for op in schedule.ops() if op.kind != Kind.R]
    assert sum(len(row) for row in rows) == len(computes)
    assert all("R" not in cell[1:-1] for row in rows for cell in row)


def test_per_microbatch_choice_is_refused() -> None:
    problem = Problem.create(2, 4, recompute="auto", memory_limit=1.0)
    schedule = solve(problem, OPTIONS).schedule
    assert 0 < schedule.problem.num_recomputed < 8  # not a whole-stage choice here
    with pytest.raises(NotApplicableError, match="--recompute-per stage"):
        torch_rows(schedule)


def test_per_stage_choice_must_be_whole_stages() -> None:
    problem = Problem.create(2, 4, recompute="auto", recompute_per="stage")
    with pytest.raises(ProblemError, match="all of its micro-batches or none"):
        problem.with_recomputed([(0, 1)])
    assert problem.with_recomputed([(1, i) for i in range(4)]).num_recomputed == 4
