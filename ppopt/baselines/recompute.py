"""Recomputation applied to hand-made orders (:mod:`ppopt.recompute` has the rule).

:func:`insert_recomputes` runs each recomputed micro-batch's R right before its backward, as
Megatron's full recomputation does: with ``recompute: all`` every baseline becomes its
full-recompute variant (full-recompute 1F1B, ZB-H1 with recomputation, ...).
:func:`recompute_to_fit` is the heuristic that recomputes *selectively*: it walks a device's
order and, wherever the memory would go above the limit, recomputes the micro-batch that is
held and whose backward comes last (Belady's rule: the one whose memory is needed furthest
in the future), until the order fits. A device's memory depends on its own order only, so
each device is fitted alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from ppopt.limits import within
from ppopt.problem import Problem
from ppopt.recompute import Recompute, RecomputePer, per_stage_closure
from ppopt.tasks import Kind, Task

Orders = list[list[Task]]


def insert_recomputes(problem: Problem, orders: Sequence[Sequence[Task]]) -> Orders:
    """The orders with R(s,i) right before B(s,i) for every pair the problem recomputes."""
    if problem.num_recomputed == 0:
        return [list(order) for order in orders]
    out = []
    for order in orders:
        row: list[Task] = []
        for task in order:
            if task.kind == Kind.B and problem.is_recomputed(task.stage, task.microbatch):
                row.append(Task(Kind.R, task.stage, task.microbatch))
            row.append(task)
        out.append(row)
    return out


def recompute_to_fit(
    problem: Problem, orders: Sequence[Sequence[Task]], caps: Sequence[float]
) -> tuple[Problem, Orders] | None:
    """An ``auto`` problem's choice of recomputed micro-batches that makes ``orders`` (with
    no R in them) fit ``caps``, and the orders with the R tasks inserted; ``None`` when even
    recomputing every held micro-batch does not fit."""
    assert problem.recompute == Recompute.AUTO
    chosen: set[tuple[int, int]] = set()
    for d, order in enumerate(orders):
        picked = _fit_device(problem, list(order), caps[d])
        if picked is None:
            return None
        chosen |= picked
    if problem.recompute_per == RecomputePer.STAGE:
        chosen = per_stage_closure(chosen, problem.num_microbatches)
    fitted = problem.with_recomputed(chosen)
    return fitted, insert_recomputes(fitted, orders)


def _fit_device(problem: Problem, order: list[Task], cap: float) -> set[tuple[int, int]] | None:
    """The micro-batches one device recomputes so its order fits ``cap`` (see module): scan
    the order with the R tasks of the chosen ones inserted; at the first task that starts
    above the limit, recompute the held micro-batch (forward ended, not yet recomputed)
    whose backward comes last, and scan again."""
    chosen: set[tuple[int, int]] = set()
    while True:
        over = _first_over(problem, order, chosen, cap)
        if over is None:
            return chosen
        pick = _furthest_held(problem, order, chosen, over)
        if pick is None:
            return None
        chosen.add(pick)


def _first_over(
    problem: Problem, order: list[Task], chosen: set[tuple[int, int]], cap: float
) -> int | None:
    """Position (in ``order``) of the first task that starts above ``cap`` when ``chosen``
    recompute with R right before B; an R counts at its B's position."""
    level = 0.0
    for k, task in enumerate(order):
        pair = (task.stage, task.microbatch)
        again = pair in chosen
        if task.kind == Kind.B and again:
            taken, freed = _change(problem, Kind.R, task.stage, True)
            if not within(level + taken, cap):
                return k
            level += taken - freed
        taken, freed = _change(problem, task.kind, task.stage, again)
        if not within(level + taken, cap):
            return k
        level += taken - freed
    return None


def _furthest_held(
    problem: Problem, order: list[Task], chosen: set[tuple[int, int]], k: int
) -> tuple[int, int] | None:
    """Among micro-batches whose F ended before position ``k`` and whose B comes after it,
    not yet recomputed and saving memory if they were, the one whose B comes last."""
    ended = {(t.stage, t.microbatch) for t in order[:k] if t.kind == Kind.F}
    for task in reversed(order[k + 1 :]):
        pair = (task.stage, task.microbatch)
        if task.kind != Kind.B or pair not in ended or pair in chosen:
            continue
        if problem.activation[task.stage] > problem.checkpoint_of(task.stage):
            return pair
    return None


def _change(problem: Problem, kind: Kind, stage: int, recomputed: bool) -> tuple[float, float]:
    return problem.memory_change(kind, stage, recomputed)


def drop_needless_recomputes(
    problem: Problem, orders: Sequence[Sequence[Task]], caps: Sequence[float] | None
) -> tuple[Problem, Orders]:
    """The ``auto`` choice without the recomputes that memory does not need, shortest-lived
    first. Taking an R out of an order never delays anything (one task and one wait fewer),
    so the result is at least as good; what it must keep is the memory limit: without its R
    the micro-batch holds its activation from F to B, which is checked on the device's order."""
    assert problem.recompute == Recompute.AUTO
    if not problem.recomputed or problem.recompute_per == RecomputePer.STAGE:
        return problem, [list(order) for order in orders]  # per stage: kept whole
    dropped: set[tuple[int, int]] = set()
    for d, order in enumerate(orders):
        cap = None if caps is None else caps[d]
        dropped |= _droppable(problem, list(order), cap)
    kept = problem.with_recomputed(problem.recomputed - dropped)
    out = [
        [t for t in order if t.kind != Kind.R or (t.stage, t.microbatch) not in dropped]
        for order in orders
    ]
    return kept, out


def _droppable(problem: Problem, order: list[Task], cap: float | None) -> set[tuple[int, int]]:
    """The recomputed micro-batches of one device order that fit without their R."""
    where = {(t.kind, t.stage, t.microbatch): k for k, t in enumerate(order)}
    pairs = [(t.stage, t.microbatch) for t in order if t.kind == Kind.R]
    if cap is None:
        return set(pairs)
    levels, level = [], 0.0
    for task in order:
        taken, freed = problem.op_memory_change(task.kind, task.stage, task.microbatch)
        level += taken
        levels.append(level)
        level -= freed

    def life(pair: tuple[int, int]) -> int:
        return where[Kind.R, *pair] - where[Kind.F, *pair]

    out = set()
    for s, i in sorted(pairs, key=life):
        first, last = where[Kind.F, s, i], where[Kind.R, s, i]
        extra = problem.activation[s] - problem.checkpoint_of(s)
        inside = levels[first + 1 : last]
        if inside and not within(max(inside) + extra, cap):
            continue
        for k in range(first + 1, last):
            levels[k] += extra
        levels[first] -= problem.checkpoint_of(s)
        levels[last] = float("-inf")  # no task starts there any more
        out.add((s, i))
    return out
