"""Interleaved 1F1B (Megatron-LM's ``forward_backward_pipelining_with_interleaving``).

Each device holds ``v`` model chunks (virtual stage ``c*p + r`` on device ``r``). Micro-batches
go through the chunks in groups of ``g`` (``microbatch_group_size_per_vp_stage``, ``p`` by
default): the forwards of one group run chunk 0, then chunk 1, ..., before the next group starts.
Rank ``r`` runs ``(p-r-1)*2 + (v-1)*g`` warm-up forwards, then one forward and one backward at a
time, then the remaining backwards; the backwards visit the chunks in reverse. On equal stages
with no latency the makespan is ``(m + (p-1)/v) * v * (f + b)`` for per-chunk ``f`` and ``b``, a
bubble ratio of ``(p-1)/(v*m)``. On a split problem each ``W`` runs right after its ``B``; with
``w <= min(f, b)`` the makespan is then ``v*m*(f + b + w) + (p-1)*(f + b)`` (a ``B`` hands its
gradient on before its ``W`` runs).
"""

from __future__ import annotations

from ppopt.baselines.onefoneb import one_f_one_b_orders
from ppopt.errors import NotApplicableError
from ppopt.placement import placement_stages
from ppopt.problem import Problem
from ppopt.tasks import Kind, Task


def interleaved_orders(problem: Problem, group_size: int | None = None) -> list[list[Task]]:
    """Per-device interleaved-1F1B orders; ``group_size`` is Megatron's micro-batch group size.

    Needs the interleaved placement. With one chunk per device this is plain 1F1B, on any
    placement (Megatron runs its non-interleaved schedule then). ``group_size=None`` takes
    ``p`` when Megatron accepts it (``m`` a multiple of ``p``), otherwise the smallest size it
    accepts, so every ``m >= p`` works. On a split problem each ``W`` runs directly after its ``B``.
    """
    p, v, m = problem.num_devices, problem.num_chunks, problem.num_microbatches
    if v == 1:
        return one_f_one_b_orders(problem)
    if problem.placement != placement_stages("interleaved", p, v):
        raise NotApplicableError(
            f"schedule: interleaved-1f1b needs placement interleaved (stage s on device s mod "
            f"{p}), got {problem.placement_name}"
        )
    g = megatron_group_size(p, m) if group_size is None else group_size
    check_group_size(p, m, g)
    table = schedule_table(m, v, g)
    return [_rank_order(problem, r, table, g) for r in range(p)]


def schedule_table(m: int, v: int, g: int) -> list[tuple[int, int]]:
    """Megatron's ``(microbatch, chunk)`` per virtual micro-batch id, in forward order.

    Micro-batches are taken ``g`` at a time (the last group takes the rest); within a group
    every chunk runs the whole group before the next chunk starts.
    """
    table: list[tuple[int, int]] = []
    for first in range(0, m, g):
        last = m if first + g >= m else first + g
        table.extend((i, c) for c in range(v) for i in range(first, last))
    return table


def check_group_size(p: int, m: int, g: int) -> None:
    """Megatron's rules for the group size: ``p <= g <= m`` and a last group of 0 or ``>= p``."""
    if m < p:
        raise NotApplicableError(
            f"num_batches: interleaved-1f1b needs at least num_stages = {p} micro-batches, got {m}"
        )
    if not p <= g <= m:
        raise NotApplicableError(
            f"schedule: interleaved-1f1b micro-batch group size must be in [{p}, {m}], got {g}"
        )
    rest = m % g
    if 0 < rest < p:
        raise NotApplicableError(
            f"schedule: interleaved-1f1b with group size {g}: the last group has {rest} "
            f"micro-batches (num_batches {m} mod {g}), Megatron needs 0 or >= {p}"
        )


def megatron_group_size(p: int, m: int) -> int:
    """The default group size: ``p`` if Megatron accepts it, else the smallest it accepts."""
    if m < p:
        check_group_size(p, m, p)  # raises: too few micro-batches
    for g in range(p, m + 1):
        if m % g == 0 or m % g >= p:
            return g
    raise AssertionError("unreachable: g = m is always accepted")


def _rank_order(problem: Problem, rank: int, table: list[tuple[int, int]], g: int) -> list[Task]:
    """One device's order: warm-up forwards, one forward + one backward, remaining backwards.

    The ``k``-th backward belongs to chunk ``v-1-c`` where ``c`` is the chunk of the ``k``-th
    forward, and to the oldest micro-batch of that chunk not yet backwarded (Megatron pops its
    per-chunk FIFO), which is the ``k``-th forward's micro-batch.
    """
    p, v = problem.num_devices, problem.num_chunks
    stages = problem.stages_on(rank)
    total = len(table)
    warmup = min((p - rank - 1) * 2 + (v - 1) * g, total)
    forwards = [Task(Kind.F, stages[c], i) for i, c in table]
    backwards = [_backward(problem, stages[v - 1 - c], i) for i, c in table]
    order = forwards[:warmup]
    for k in range(total - warmup):
        order.append(forwards[warmup + k])
        order.extend(backwards[k])
    for k in range(total - warmup, total):
        order.extend(backwards[k])
    return order


def _backward(problem: Problem, stage: int, microbatch: int) -> list[Task]:
    """A full backward: ``B``, then its ``W`` at once on a split problem."""
    task = [Task(Kind.B, stage, microbatch)]
    return task + [Task(Kind.W, stage, microbatch)] if problem.is_split else task
