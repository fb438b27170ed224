"""The comparison file (``ppopt compare --json``): what the comparison table prints, as JSON.

    {"format": "ppopt-comparison-1",
     "problem": {... the config keys of the problem, as in the schedule file ...},
     "memory_limit": [per-device absolute limit] or null,
     "schedules": [{"name": "1f1b", "metrics": {... as in the schedule file ...},
                    "fits_memory_limit": true, "solver": null or {... as in the schedule file ...}},
                   ...]}

Each schedule's metrics are :func:`ppopt.metrics.compute_metrics` of its exact timeline, the
same numbers the table shows; write a schedule itself with ``ppopt solve --json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ppopt.atomic import atomic_write_text
from ppopt.config import problem_to_dict
from ppopt.limits import fits, tidy
from ppopt.metrics import compute_metrics
from ppopt.runs import Comparison

FORMAT = "ppopt-comparison-1"


def comparison_to_dict(comparison: Comparison) -> dict[str, Any]:
    """The comparison file's content for ``comparison`` (one entry per schedule, in order)."""
    schedules = comparison.schedules
    problem = schedules[0].problem
    caps = problem.memory_caps
    entries = []
    for outcome in comparison.outcomes:
        metrics = compute_metrics(outcome.schedule)
        entries.append(
            {
                "name": outcome.schedule.name,
                "metrics": metrics.to_dict(),
                "fits_memory_limit": None if caps is None else fits(metrics.peak_memory, caps),
                "solver": None if outcome.result is None else outcome.result.to_dict(),
            }
        )
    return {
        "format": FORMAT,
        "problem": problem_to_dict(problem),
        "memory_limit": None if caps is None else tidy(list(caps)),
        "schedules": tidy(entries),
    }


def write_comparison(path: str | Path, comparison: Comparison) -> None:
    """Write the comparison file atomically."""
    text = json.dumps(comparison_to_dict(comparison), indent=2, allow_nan=False)
    atomic_write_text(path, text + "\n")
