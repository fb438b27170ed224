"""GPipe: every forward, then every backward."""

from __future__ import annotations

from ppopt.problem import Problem, Task


def gpipe_orders(problem: Problem) -> list[list[Task]]:
    """Per-device GPipe orders: a device runs its stages' forwards in micro-batch order, then
    the backwards (each ``W`` directly after its ``B`` on a split problem), deepest stage first.
    """
    m = problem.num_microbatches
    orders: list[list[Task]] = []
    for d in range(problem.num_devices):
        stages = problem.stages_on(d)
        order = [Task("F", s, i) for i in range(m) for s in stages]
        for i in range(m):
            for s in reversed(stages):
                order.append(Task("B", s, i))
                if problem.is_split:
                    order.append(Task("W", s, i))
        orders.append(order)
    return orders
