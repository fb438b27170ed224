"""What the baseline tests share: orders written as text, V-placement problems with equal
stages, and a baseline checked valid and tight by the independent validator."""

from __future__ import annotations

from ppopt.baselines import baseline
from ppopt.problem import Problem
from ppopt.schedule import Schedule
from ppopt.tasks import Task
from ppopt.validate import assert_valid


def tasks(text: str) -> list[Task]:
    """``"F0:1 B2:0"`` -> tasks (kind, stage, 0-based micro-batch); ``|`` marks phases only."""
    out = []
    for word in text.split():
        if word == "|":
            continue
        stage, microbatch = word[1:].split(":")
        out.append(Task(word[0], int(stage), int(microbatch)))
    return out


def vshape_problem(
    p: int, m: int, f: float = 1.0, b: float = 1.0, w: float | None = 1.0, **memory: object
) -> Problem:
    """A V-placement problem with equal stages (split unless ``w`` is None)."""
    return Problem.create(
        p, m, forward=f, backward=b, weight=w, num_chunks=2, placement="vshape", **memory
    )


def checked(name: str, problem: Problem) -> Schedule:
    """The named baseline, checked valid and tight by the independent validator."""
    schedule = baseline(name, problem)
    assert_valid(schedule, tight=True)
    return schedule
