"""V-Half and V-Min: the V-shape schedules at 1/2 and 1/3 of 1F1B's activation memory
(Qi et al., "Pipeline Parallelism with Controllable Memory", arXiv:2405.15362, §4).

A schedule there is one *building block* repeated every ``6`` time slots (one slot per pass
at ``T_F = T_B = T_W``): per device ``d`` the block says in which slot the micro-batch's
chunk-0 forward (stage ``d``), chunk-1 forward (stage ``2p-1-d``), chunk-1 backward and
chunk-0 backward run; micro-batch ``j`` runs them ``6j`` slots later. The *lifespan* of the
block (first forward to last backward on a device) sets the peak memory: V-Min's block lives
about ``4p`` slots, so a device holds about ``2p/3`` chunk activations (1F1B: ``2p``), V-Half's
about ``6p`` slots, ``p`` chunk activations. The offsets are the paper's
(``stable_pattern_v_min`` / ``stable_pattern_v_half`` in the authors' repository, with a gap
of 2 slots when ``3 | p``, of 3 when ``2 | p``, so that no two passes of a device share a slot).
The two free slots of each period take the oldest pending weight passes (``W``), in order.

ppopt takes the per-device *order* of that slot plan and times it with its own engine (tight
start times for any durations); the authors' greedy "squeeze" that moves passes into earlier
free slots is not applied: the engine's tight timing already starts every pass as early as its
order allows, and the order fixes the memory. On an unsplit problem a backward is the full
backward and there are no weight passes. The paper's closed forms, on equal times (checked in
``tests/baselines/test_vmemory.py``): peak ``(p+4)//3`` micro-batches for V-Min and
``(p+2)//2`` for V-Half (two chunk activations each) when activations are held until ``W``,
against 1F1B's ``p``; bubble rate about ``2p/(3m)`` and ``p/(2m)`` against 1F1B's ``p/m``.
"""

from __future__ import annotations

from collections import deque

from ppopt.baselines.vshape import _require_vshape as require_vshape
from ppopt.problem import Problem
from ppopt.tasks import Kind, Task

#: Slots of one period of the building block: F, f, B, b and two for weight passes.
PERIOD = 6


def vhalf_orders(problem: Problem) -> list[list[Task]]:
    """Per-device V-Half orders (V placement, any ``m``, split or not)."""
    require_vshape(problem, "v-half")
    return _orders(problem, _half_block(problem.num_devices))


def vmin_orders(problem: Problem) -> list[list[Task]]:
    """Per-device V-Min orders (V placement, any ``m``, split or not)."""
    require_vshape(problem, "v-min")
    return _orders(problem, _min_block(problem.num_devices))


def _min_block(p: int) -> list[tuple[int, int, int, int]]:
    """V-Min's slots per device: chunk-0 F, chunk-1 F, chunk-1 B, chunk-0 B."""
    gap = 2 if p % 3 == 0 else 0
    return [(d, 2 * p - d - 1, 2 * p + gap + d, 4 * p + gap - d - 1) for d in range(p)]


def _half_block(p: int) -> list[tuple[int, int, int, int]]:
    """V-Half's slots per device: chunk-0 F, chunk-1 F, chunk-1 B, chunk-0 B."""
    gap = 3 if p % 2 == 0 else 0
    return [(2 * d, 3 * p - d - 2, 3 * p + gap + 2 * d - 1, 6 * p + gap - d - 2) for d in range(p)]


def _orders(problem: Problem, block: list[tuple[int, int, int, int]]) -> list[list[Task]]:
    """Each device's passes in slot order, weight passes in the free slots."""
    return [_device_order(problem, d, offsets) for d, offsets in enumerate(block)]


def _device_order(problem: Problem, d: int, offsets: tuple[int, int, int, int]) -> list[Task]:
    """One device's slot plan as an order: the block repeated ``m`` times, then the weight
    passes (oldest backward first) in every free slot and after the last backward."""
    p, m = problem.num_devices, problem.num_microbatches
    down, up = d, 2 * p - 1 - d
    kinds = ((Kind.F, down), (Kind.F, up), (Kind.B, up), (Kind.B, down))
    slots: dict[int, Task] = {}
    for j in range(m):
        for offset, (kind, stage) in zip(offsets, kinds, strict=True):
            slot = offset + PERIOD * j
            assert slot not in slots, "the paper's block puts one pass per slot"
            slots[slot] = Task(kind, stage, j)
    order: list[Task] = []
    pending: deque[Task] = deque()
    for slot in range(max(slots) + 1):
        task = slots.get(slot)
        if task is not None:
            order.append(task)
            if task.kind == Kind.B and problem.is_split:
                pending.append(Task(Kind.W, task.stage, task.microbatch))
        elif pending:
            order.append(pending.popleft())
    return [*order, *pending]
