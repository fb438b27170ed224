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


def atomic_pair_makespan(problem: Problem, slots: list[list[tuple[Task, ...]]]) -> float:
    """Time DualPipe's slots with each overlapped pair atomic: it starts once the device is
    free and every task of the pair is ready, lasts F + full B, and all its tasks end with it.
    """
    end: dict[Task, float] = {}
    pos, free = [0] * len(slots), [0.0] * len(slots)
    moved = True
    while moved:
        moved = False
        for d, row in enumerate(slots):
            while pos[d] < len(row):
                slot = row[pos[d]]
                deps = [
                    (dep, t) for t in slot for dep in problem.dependencies(t) if dep not in slot
                ]
                if any(dep not in end for dep, _ in deps):
                    break
                start = max([free[d]] + [end[dep] + problem.latency(dep, t) for dep, t in deps])
                free[d] = start + sum(problem.duration(t.kind, t.stage) for t in slot)
                end.update((t, free[d]) for t in slot)
                pos[d] += 1
                moved = True
    assert pos == [len(row) for row in slots]
    return max(free)
