"""GPipe: every forward, then every backward."""

from __future__ import annotations

from ppopt.problem import Problem
from ppopt.tasks import Kind, Task


def gpipe_orders(problem: Problem) -> list[list[Task]]:
    """Per-device GPipe orders: a device runs every forward, stage by stage in pipeline order
    and each stage in micro-batch order, then every backward, deepest stage first (each ``W``
    directly after its ``B`` on a split problem). With chunks this is breadth-first: a chunk's
    forwards all run before the next chunk's, so no device waits on its own later chunk.
    """
    m = problem.num_microbatches
    orders: list[list[Task]] = []
    for d in range(problem.num_devices):
        stages = problem.stages_on(d)
        order = [Task(Kind.F, s, i) for s in stages for i in range(m)]
        for s in reversed(stages):
            for i in range(m):
                order.append(Task(Kind.B, s, i))
                if problem.is_split:
                    order.append(Task(Kind.W, s, i))
        orders.append(order)
    return orders
