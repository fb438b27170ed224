"""ppopt: optimal pipeline-parallel schedules, the classic baselines, and their numbers.

The public Python API, as clean as the command line (the same defaults: ``1x`` memory for
the optimizer)::

    import ppopt

    problem = ppopt.Problem.create(num_stages=4, num_batches=8, p2p_time=0.5)
    result = ppopt.solve(problem, ppopt.SolverOptions(time_limit=5, workers=1))
    print(result.status, result.schedule.makespan)           # OPTIMAL 40.0
    print(ppopt.baseline("1f1b", problem).makespan)           # 41.0
    assert ppopt.validate(result.schedule, problem.memory_caps) == []
    ax = ppopt.plot_gantt(result.schedule)                     # a matplotlib Axes

The rules of the problem are in docs/contract.md. Plotting (matplotlib) is imported on
first use, so that ``import ppopt`` and the commands that draw nothing start fast.
"""

from __future__ import annotations

import tomllib
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ppopt.baselines import BASELINES, applicable_baselines, baseline
from ppopt.errors import (
    ConfigError,
    DeadlockError,
    NoScheduleError,
    NotApplicableError,
    OrderError,
    PpoptError,
    ProblemError,
    ScheduleFileError,
    ScheduleInvalid,
    SolverOptionError,
    UnknownScheduleError,
)
from ppopt.export.schedule_json import read_schedule, write_schedule
from ppopt.layers import Layer, Partition, Profile, read_profile_csv
from ppopt.limits import MemoryLimit
from ppopt.metrics import Metrics, compute_metrics
from ppopt.partition import LayeredProblem
from ppopt.problem import Problem
from ppopt.runs import Comparison, Outcome, compare_schedules, run_schedule
from ppopt.runtime import Runtime
from ppopt.schedule import Op, Schedule
from ppopt.solver import Objective, Progress, SolveResult, SolverOptions, Status, solve
from ppopt.solver.partition import PartitionResult, solve_partition
from ppopt.tasks import Kind, Task
from ppopt.timeline import compute_timeline
from ppopt.validate import assert_valid, validate


def package_version() -> str:
    """The installed ppopt's version; from a source tree not installed, pyproject's."""
    try:
        return version("ppopt")
    except PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        with pyproject.open("rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])


__version__ = package_version()

#: Plotting names, imported from :mod:`ppopt.viz` on first use (matplotlib costs ~0.7 s).
_PLOTTING = ("plot_gantt", "plot_memory", "plot_comparison", "render_schedule", "save_figure")


def __getattr__(name: str) -> Any:
    if name in _PLOTTING:
        return getattr(import_module("ppopt.viz"), name)
    raise AttributeError(f"module 'ppopt' has no attribute {name!r}")


__all__ = [
    "BASELINES",
    "Comparison",
    "Outcome",
    "Runtime",
    "compare_schedules",
    "package_version",
    "run_schedule",
    "ConfigError",
    "DeadlockError",
    "Kind",
    "Layer",
    "LayeredProblem",
    "MemoryLimit",
    "Metrics",
    "NoScheduleError",
    "NotApplicableError",
    "Objective",
    "Op",
    "OrderError",
    "Partition",
    "PartitionResult",
    "PpoptError",
    "Problem",
    "ProblemError",
    "Profile",
    "Progress",
    "Schedule",
    "ScheduleFileError",
    "ScheduleInvalid",
    "SolveResult",
    "SolverOptionError",
    "SolverOptions",
    "Status",
    "Task",
    "UnknownScheduleError",
    "__version__",
    "applicable_baselines",
    "assert_valid",
    "baseline",
    "compute_metrics",
    "compute_timeline",
    "read_profile_csv",
    "read_schedule",
    "solve",
    "solve_partition",
    "validate",
    "write_schedule",
    *_PLOTTING,
]
