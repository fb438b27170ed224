"""Offload applied to hand-made orders (:mod:`ppopt.offload` has the rule).

:func:`insert_copies` places each offloaded micro-batch's copies in its device's order as
PipeOffload does: the offload O(s,i) runs from F(s,i)'s end and the next forward on the device
waits for it (that forward is what needs the memory), the reload L(s,i) is issued when the
compute task two before B(s,i) ends, so it overlaps the task right before B. With
``offload: all`` every baseline becomes its offload-everything variant.
"""

from __future__ import annotations

from collections.abc import Sequence

from ppopt.limits import within
from ppopt.offload import Offload
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


def offload_to_fit(
    problem: Problem, orders: Sequence[Sequence[Task]], caps: Sequence[float]
) -> tuple[Problem, Orders] | None:
    """An ``auto`` problem's choice of offloaded micro-batches that makes ``orders`` (compute
    tasks only) fit ``caps``, and the orders with the copies merged in (:func:`insert_copies`);
    ``None`` when even offloading every held micro-batch does not fit. Greedy, as
    :func:`~ppopt.baselines.recompute.recompute_to_fit` (Belady): walk each device's order
    with its copies, and at the first task that starts above the limit offload the held
    micro-batch whose backward comes last; walk again. The walk is the order's own memory,
    which the engine's timing never exceeds (:mod:`ppopt.offload`)."""
    assert problem.offload == Offload.AUTO
    chosen: set[tuple[int, int]] = set()
    while True:
        fitted = problem.with_offloaded(chosen)
        full = insert_copies(fitted, orders)
        over = next(
            (
                (d, k)
                for d, order in enumerate(full)
                if (k := _first_over(fitted, order, caps[d])) is not None
            ),
            None,
        )
        if over is None:
            return fitted, full
        pick = _furthest_held(full[over[0]], chosen, over[1])
        if pick is None:
            return None
        chosen.add(pick)


def _first_over(problem: Problem, order: list[Task], cap: float) -> int | None:
    """Position of the first task of a device's order (copies included) that starts above
    ``cap``, walking the order's memory (what each task takes at its start, frees at its end)."""
    level = 0.0
    for k, (kind, s, i) in enumerate(order):
        taken, freed = problem.op_memory_change(kind, s, i)
        if not within(level + taken, cap):
            return k
        level += taken - freed
    return None


def _furthest_held(
    order: list[Task], chosen: set[tuple[int, int]], k: int
) -> tuple[int, int] | None:
    """Among micro-batches whose F is before position ``k`` and whose B comes after it, not
    yet offloaded, the one whose B comes last."""
    started = {(t.stage, t.microbatch) for t in order[:k] if t.kind == Kind.F}
    for task in reversed(order[k + 1 :]):
        pair = (task.stage, task.microbatch)
        if task.kind == Kind.B and pair in started and pair not in chosen:
            return pair
    return None
