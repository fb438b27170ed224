"""Offload applied to hand-made orders (:mod:`ppopt.offload` has the rule).

:func:`insert_copies` places each offloaded micro-batch's copies in its device's order as
PipeOffload does: the offload O(s,i) runs from F(s,i)'s end and the next forward on the device
waits for it (that forward is what needs the memory), the reload L(s,i) is issued when the
compute task two before B(s,i) ends, so it overlaps the task right before B. With
``offload: all`` every baseline becomes its offload-everything variant.
"""

from __future__ import annotations

from collections.abc import Sequence

from ppopt.problem import Problem
from ppopt.tasks import Kind, Task

Orders = list[list[Task]]


def insert_copies(problem: Problem, orders: Sequence[Sequence[Task]]) -> Orders:
    """The compute orders with O and L of every pair the problem offloads merged in."""
    if problem.num_offloaded == 0:
        return [list(order) for order in orders]
    return [_merge_device(problem, list(order)) for order in orders]


def _merge_device(problem: Problem, order: list[Task]) -> list[Task]:
    """One device's order with its copies: each copy goes before the compute task at its
    insertion index (``len(order)``: at the end), offloads before reloads at one index."""
    where = {task: k for k, task in enumerate(order)}
    forwards = [k for k, task in enumerate(order) if task.kind == Kind.F]
    placed: list[tuple[int, int, int, Task]] = []
    for k, task in enumerate(order):
        if task.kind != Kind.F or not problem.is_offloaded(task.stage, task.microbatch):
            continue
        s, i = task.stage, task.microbatch
        backward = where[Task(Kind.B, s, i)]
        later = [j for j in forwards if j > k]
        offload_at = min(later[0] if later else backward, backward)
        reload_at = max(backward - 1, offload_at)
        placed.append((offload_at, 0, k, Task(Kind.O, s, i)))
        placed.append((reload_at, 1, k, Task(Kind.L, s, i)))
    placed.sort()
    out: list[Task] = []
    q = 0
    for k, task in enumerate(order):
        while q < len(placed) and placed[q][0] == k:
            out.append(placed[q][3])
            q += 1
        out.append(task)
    out += [item[3] for item in placed[q:]]
    return out
