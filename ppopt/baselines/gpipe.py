"""GPipe: every forward, then every backward."""

from __future__ import annotations

from ppopt.problem import Problem
from ppopt.tasks import Kind, Task


def gpipe_orders(problem: Problem) -> list[list[Task]]:
    """Per-device GPipe orders: a device runs every forward, stage by stage in pipeline order
    and each stage in micro-batch order, then every backward, deepest stage first (each ``W``
    directly after its ``B`` on a split problem). With chunks this is breadth-first: a chunk's
    forwards all run before the next chunk's, so no device waits on its own later chunk.

    With two model copies (``copies: 2``) each direction is such a wave and the two
    interleave: every forward by ``k + pos`` (``k``-th micro-batch of its copy, at position
    ``pos`` of the copy's chain), copy 0 first on a tie, then every backward by
    ``k + (p-1-pos)`` the same way. One global order of all tasks that each dependency
    respects (a chain step raises the key by one), read per device: no device waits on a
    task that comes later in another's order, so the orders never deadlock.
    """
    if problem.copies == 2:
        return _two_copy_orders(problem)
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


def _two_copy_orders(problem: Problem) -> list[list[Task]]:
    """Both directions' GPipe waves interleaved (see :func:`gpipe_orders`)."""
    p = problem.num_devices

    def key(task: Task) -> tuple[int, int, int, int]:
        kind, s, i = task
        copy, pos = problem.copy_of_stage(s), problem.model_stage(s)
        k = i - problem.microbatches_of(s).start
        if kind == Kind.F:
            return (0, k + pos, copy, 0)
        return (1, k + p - 1 - pos, copy, kind == Kind.W)

    orders: list[list[Task]] = [[] for _ in range(p)]
    for task in sorted(problem.tasks(), key=key):
        orders[problem.device_of(task.stage)].append(task)
    return orders
