"""The optimizer's offload choice against every choice and every order, on tiny problems
(issue 18: "exhaustive check on tiny cases that the optimizer's offload choice is optimal").

The search here shares no code with the solver: for each subset of offloaded (stage,
micro-batch) pairs it enumerates every per-device order of the device's tasks (compute and
copies) that respects the dependencies among them, times it with the engine (an order that
deadlocks across devices is skipped) and keeps the orders that the independent validator
accepts under the memory limit. The least makespan over all of them is the optimum of the
schedule space ppopt defines (docs/contract.md §1: the engine's lane rules); the solver must
reach it and prove it.
"""

from __future__ import annotations

import itertools

import pytest

from ppopt.errors import DeadlockError
from ppopt.problem import Problem
from ppopt.solver import SolverOptions, solve
from ppopt.tasks import Task
from ppopt.timeline import compute_timeline
from ppopt.validate import validate


def _device_orders(problem: Problem, device: int) -> list[list[Task]]:
    """Every order of a device's tasks in which each task comes after its dependencies that
    run on the same device."""
    mine = [t for t in problem.tasks() if problem.device_of(t.stage) == device]
    local = {t: [d for d in problem.dependencies(t) if d in set(mine)] for t in mine}
    out: list[list[Task]] = []

    def extend(order: list[Task], left: set[Task]) -> None:
        if not left:
            out.append(list(order))
            return
        placed = set(order)
        for task in sorted(left):
            if all(d in placed for d in local[task]):
                order.append(task)
                extend(order, left - {task})
                order.pop()

    extend([], set(mine))
    return out


def _best_over_everything(problem: Problem) -> float:
    """The least valid makespan over every offload choice and every per-device order."""
    caps = problem.memory_caps
    pairs = [(s, i) for s in range(problem.num_stages) for i in range(problem.num_microbatches)]
    best = float("inf")
    for mask in range(1 << len(pairs)):
        chosen = problem.with_offloaded(p for bit, p in enumerate(pairs) if mask >> bit & 1)
        per_device = [_device_orders(chosen, d) for d in range(chosen.num_devices)]
        for orders in itertools.product(*per_device):
            try:
                schedule = compute_timeline(chosen, orders)
            except DeadlockError:
                continue
            if schedule.makespan < best and validate(schedule, limit=caps) == []:
                best = schedule.makespan
    return best


@pytest.mark.parametrize(
    ("limit", "copy", "forward", "backward"),
    [
        (1.0, 0.5, 1.0, 2.0),  # one activation per device: offloading lets both run
        (1.0, 2.0, 1.0, 2.0),  # slow copies: offloading costs time
        (1.5, 0.25, 1.0, 1.0),
        ("1x", 0.5, [1.0, 2.0], [2.0, 1.0]),  # unequal stages, 1F1B's memory
    ],
)
def test_offload_auto_reaches_the_exhaustive_optimum(
    limit: object, copy: float, forward: object, backward: object
) -> None:
    problem = Problem.create(
        num_stages=2, num_batches=2, forward=forward, backward=backward, memory_limit=limit,
        offload="auto", offload_times=copy,
    )  # fmt: skip
    best = _best_over_everything(problem)
    result = solve(problem, SolverOptions(time_limit=10, workers=1))
    assert validate(result.schedule, limit=problem.memory_caps) == []
    assert result.schedule.makespan == pytest.approx(best)
    assert str(result.status) == "OPTIMAL"
