"""Schedules for the V placement (device ``d`` holds stages ``d`` and ``2p-1-d``): ZB-V, DualPipeV.

With the V placement a micro-batch's first forward and last backward both run on device 0, and
the turn from the down leg (chunk 0, stage ``d``) to the up leg (chunk 1, stage ``2p-1-d``) on
the last device needs no communication.

- ``zb-v``: the V schedule of the zero-bubble papers (Qi et al., "Zero Bubble Pipeline
  Parallelism" §6 and "Pipeline Parallelism with Controllable Memory"), in the static per-rank
  form PyTorch ships as ``ScheduleZBVZeroBubble``. Each device holds at most ``2p`` chunk
  activations, the 1F1B peak with chunks merged. With ``T_F = T_B = T_W = t``, no latency and
  ``m >= 2p-1``, device ``d`` is busy without a gap from ``d*t`` to ``d*t + 6mt``: span ``6mt``
  (zero bubble) and makespan ``6mt + (p-1)t``, which no schedule beats (the last device cannot
  start earlier and has ``6mt`` of work).
- ``dualpipev``: DeepSeek's DualPipeV (the V-shape "cut-in-half" DualPipe) with its eight steps;
  each overlapped forward-and-backward pair runs as the forward, then the full backward. Peak
  ``2p + 1`` chunk activations (the README's ``PP+1`` for ``PP = 2p`` stages). On equal stages
  with ``f = b``, no latency and ``m >= 2p``: makespan ``2m(2f + w) + (p-1) max(f, 2f - w)``
  (unsplit: ``4mf + 2(p-1)f``). The README's bubble ``(PP/2-1)(F&B + B - 3W)`` assumes each
  pair runs atomically; timed that way (:func:`dualpipev_slots`) with ``F&B = f + b + w``,
  full ``B = b + w`` and ``f = b = w = t`` it is the ``2(p-1)t`` the README gives, against
  ``(p-1)t`` when F and B of a pair may start apart.
"""

from __future__ import annotations

from collections import deque

from ppopt.errors import NotApplicableError
from ppopt.placement import placement_stages
from ppopt.problem import Problem
from ppopt.tasks import Kind, Task


def zbv_orders(problem: Problem) -> list[list[Task]]:
    """Per-device ZB-V orders (split problems on the V placement, any ``m >= 1``).

    Rank ``r`` runs ``2(p-r)-1`` chunk-0 forwards, ``r`` pairs (chunk-1 forward, chunk-0
    forward), ``p-r`` triples (chunk-1 F, B, W), then steady pairs of (F, B, W) on chunk 0 and on
    chunk 1, then cools down with ``r`` pairs of B on both chunks and ``p-r`` of (B, W) on chunk
    0, then the W still pending, chunk 1 first. Written for ``max(m, 2p-1)`` micro-batches and
    then restricted to the real ones, as PyTorch does: dropping whole micro-batches from an
    order that can run leaves an order that can run.
    """
    _require_vshape(problem, "zb-v")
    if not problem.is_split:
        raise NotApplicableError(
            "weight_times: zb-v fills bubbles with W passes and needs a split backward "
            "(give weight_times)"
        )
    p, m = problem.num_devices, problem.num_microbatches
    n = max(m, 2 * p - 1)
    orders = []
    for rank in range(p):
        order = _zbv_rank(problem, rank, n)
        orders.append([task for task in order if task.microbatch < m])
    return orders


def v1f1b_orders(problem: Problem) -> list[list[Task]]:
    """ZB-V's order with full backwards: V placement at 1F1B memory without a split.

    Each device runs the ZB-V order of the unsplit problem (every ``W`` merged into its ``B``);
    on a split problem each ``W`` then runs right after its ``B``, as the other 1F1B-style
    baselines do. A backward frees its activations no later than in ZB-V, so the peak is at
    most ZB-V's: 2p chunk activations on every device, the merged-chunk 1F1B reference.
    """
    _require_vshape(problem, "v-1f1b")
    full = problem.unsplit()
    p, m = problem.num_devices, problem.num_microbatches
    n = max(m, 2 * p - 1)
    orders = []
    for rank in range(p):
        order = [task for task in _zbv_rank(full, rank, n) if task.microbatch < m]
        if problem.is_split:
            order = [t for task in order for t in _with_weight(task)]
        orders.append(order)
    return orders


def _with_weight(task: Task) -> tuple[Task, ...]:
    """A backward followed by its weight pass; any other task alone."""
    return (task, Task(Kind.W, task.stage, task.microbatch)) if task.kind == Kind.B else (task,)


def _zbv_rank(problem: Problem, rank: int, n: int) -> list[Task]:
    """ZB-V order of one device for ``n`` micro-batches."""
    p = problem.num_devices
    chunks = _Chunks(problem, rank)
    for _ in range(2 * (p - rank) - 1):
        chunks.forward(0)
    for _ in range(rank):
        chunks.forward(1)
        chunks.forward(0)
    for _ in range(p - rank):
        chunks.forward(1)
        chunks.backward(1, then_weight=True)
    while chunks.count["F", 1] < chunks.count["F", 0] or chunks.count["F", 0] < n:
        if chunks.count["F", 0] < n:
            chunks.forward(0)
        chunks.backward(0, then_weight=True)
        chunks.forward(1)
        chunks.backward(1, then_weight=True)
    for _ in range(rank):
        chunks.backward(0, then_weight=False)
        chunks.backward(1, then_weight=False)
    for _ in range(p - rank):
        chunks.backward(0, then_weight=False)
        chunks.weight(0)
    while chunks.split and chunks.count["W", 1] < chunks.count["B", 1]:
        chunks.weight(1)
    while chunks.split and chunks.count["W", 0] < chunks.count["B", 0]:
        chunks.weight(0)
    return chunks.order


def dualpipev_orders(problem: Problem) -> list[list[Task]]:
    """Per-device DualPipeV orders (V placement, ``m >= 2p``, split or not).

    The slots of :func:`dualpipev_slots` one task after the other: an overlapped pair runs as
    its forward, then its full backward.
    """
    return _slot_orders(dualpipev_slots(problem))


def dualpipev_pairs(problem: Problem) -> list[tuple[Task, Task]]:
    """DualPipeV's overlapped pairs, as DeepSeek's ``_forward_backward_chunk`` runs them
    (:func:`_slot_pairs`). Used when the problem gives ``overlap_times``."""
    return _slot_pairs(dualpipev_slots(problem))


def _slot_orders(slots: list[list[tuple[Task, ...]]]) -> list[list[Task]]:
    """Per device, its slots' tasks one after the other (a pair's F, then its B and W)."""
    return [[task for slot in row for task in slot] for row in slots]


def _slot_pairs(slots: list[list[tuple[Task, ...]]]) -> list[tuple[Task, Task]]:
    """The forward and the backward (``B``) of each slot of several tasks (its ``W``, if
    any, runs right after the pair)."""
    return [
        (slot[0], slot[1])
        for row in slots
        for slot in row
        if len(slot) > 1 and slot[0].kind == Kind.F
    ]


def dualpipev_slots(problem: Problem) -> list[list[tuple[Task, ...]]]:
    """Per device, DualPipeV's steps in order; a slot of several tasks is an overlapped pair.

    Rank ``r``: (1) ``2(p-r-1)`` chunk-0 forwards; (2) ``r+1`` pairs F0 F1; (3) ``p-r-1`` times
    B1, W, F1; (4) ``m-2p+r+1`` times F0&B1, F1&B0 (``&``: one overlapped slot of a forward and
    a full backward; the last rank runs its first F0, B1 apart); (5) ``p-r-1`` times B1, F1&B0;
    (6) ``r+1`` pairs B1 B0, the later half with W deferred; (7) ``p-r-1`` times W, B0 (W
    deferred); (8) the remaining ``W``. A full backward is ``B`` then ``W``; deferred ``W`` run
    oldest first. On an unsplit problem every backward is the single ``B``.
    """
    _require_vshape(problem, "dualpipev")
    p, m = problem.num_devices, problem.num_microbatches
    if m < 2 * p:
        raise NotApplicableError(
            f"num_batches: dualpipev needs at least 2 * num_stages = {2 * p} micro-batches, got {m}"
        )
    return [_dualpipev_rank(problem, rank) for rank in range(p)]


def _dualpipev_rank(problem: Problem, rank: int) -> list[tuple[Task, ...]]:
    """DualPipeV slots of one device (the eight steps of DeepSeek's ``DualPipeV.step``)."""
    p, m = problem.num_devices, problem.num_microbatches
    return _eight_steps(_Chunks(problem, rank), p, m, rank)


def _eight_steps(c: _Chunks, p: int, m: int, rank: int) -> list[tuple[Task, ...]]:
    """The eight steps of DeepSeek's ``step`` on one rank: ``p`` ranks (of DualPipeV; half of
    DualPipe's), ``m`` micro-batches per chunk (DualPipeV: all; DualPipe: one direction's
    half) and the rank's place ``rank`` (DualPipe's ``half_rank``); chunk 0 is ``phase 0``."""
    for _ in range(2 * (p - rank - 1)):
        c.forward(0)
    for _ in range(rank + 1):
        c.forward(0)
        c.forward(1)
    for _ in range(p - rank - 1):
        c.backward(1, then_weight=False)
        c.next_weight()
        c.forward(1)
    for i in range(m - 2 * p + rank + 1):
        if i == 0 and rank == p - 1:
            c.forward(0)
            c.backward(1, then_weight=True)
        else:
            c.overlapped(0, 1)
        c.overlapped(1, 0)
    for _ in range(p - rank - 1):
        c.backward(1, then_weight=True)
        c.overlapped(1, 0)
    steps = rank + 1
    deferred = False
    for i in range(steps):
        if i == steps // 2 and rank % 2 == 1:
            deferred = True
        c.backward(1, then_weight=not deferred)
        if i == steps // 2 and rank % 2 == 0:
            deferred = True
        c.backward(0, then_weight=not deferred)
    for _ in range(p - rank - 1):
        c.next_weight()
        c.backward(0, then_weight=not deferred)
    while c.pending:
        c.next_weight()
    return c.slots


def dualpipe_orders(problem: Problem) -> list[list[Task]]:
    """Per-device DualPipe orders (``copies: 2``, ``m >= 2p``, split or not): the slots of
    :func:`dualpipe_slots` one task after the other."""
    return _slot_orders(dualpipe_slots(problem))


def dualpipe_pairs(problem: Problem) -> list[tuple[Task, Task]]:
    """DualPipe's overlapped pairs (``_forward_backward_chunk``, :func:`_slot_pairs`), used
    when the problem gives ``overlap_times``."""
    return _slot_pairs(dualpipe_slots(problem))


def dualpipe_slots(problem: Problem) -> list[list[tuple[Task, ...]]]:
    """Per device, DualPipe's steps in order (deepseek-ai/DualPipe, ``dualpipe.py``
    ``DualPipe.step``); a slot of several tasks is an overlapped pair.

    Rank ``r`` of ``p`` (even) has ``half_rank h = min(r, p-1-r)``; its ``phase 0`` is the
    direction that enters nearer to it (copy 0, stage ``r``, on the first half of the ranks;
    copy 1, stage ``2p-1-r``, on the second), ``phase 1`` the other. Each direction runs
    ``m/2`` micro-batches (copy 0 ``0..m/2-1``, copy 1 ``m/2..m-1``, in order). The steps
    are DualPipeV's for ``p/2`` ranks, rank ``h`` and ``m/2`` micro-batches: (1)
    ``2(p/2-h-1)`` F0; (2) ``h+1`` times F0 F1; (3) ``p/2-h-1`` times B1 (W deferred), W, F1;
    (4) ``m/2-p+h+1`` times F0&B1, F1&B0 (the middle ranks run their first F0, B1 apart); (5)
    ``p/2-h-1`` times B1, F1&B0; (6) ``h+1`` times B1 B0, W deferred from the middle on;
    (7) ``p/2-h-1`` times W, B0 (W deferred); (8) the remaining W. An overlapped slot's
    backward is a full one (B then W), as ``_forward_backward_chunk`` runs it.
    """
    if problem.copies != 2:
        raise NotApplicableError(
            "schedule: dualpipe needs copies: 2 (two model copies, one per direction), "
            f"got copies {problem.copies}"
        )
    p, m = problem.num_devices, problem.num_microbatches
    if m < 2 * p:
        raise NotApplicableError(
            f"num_batches: dualpipe needs at least 2 * num_stages = {2 * p} micro-batches, got {m}"
        )
    half, out = p // 2, []
    for rank in range(p):
        second = rank >= half
        stages = (2 * p - 1 - rank, rank) if second else (rank, 2 * p - 1 - rank)
        firsts = (m // 2, 0) if second else (0, m // 2)
        chunks = _Chunks(problem, rank, stages, firsts)
        out.append(_eight_steps(chunks, half, m // 2, min(rank, p - 1 - rank)))
    return out


class _Chunks:
    """Builds one device's slots chunk by chunk, numbering micro-batches per (kind, chunk).

    Chunk 0 is the device's down-leg stage ``d``, chunk 1 its up-leg stage ``2p-1-d`` (or the
    ``stages`` given, numbering micro-batches from ``firsts``: DualPipe's phases). Every
    task is a slot of its own except DualPipe's overlapped forward-and-backward pairs. A backward
    either brings its ``W`` right after it or queues it; :meth:`next_weight` runs the oldest
    queued one. On an unsplit problem there are no ``W`` tasks and both are no-ops.
    """

    def __init__(
        self,
        problem: Problem,
        rank: int,
        stages: tuple[int, ...] | None = None,
        firsts: tuple[int, int] = (0, 0),
    ) -> None:
        self.split = problem.is_split
        self.stages = problem.stages_on(rank) if stages is None else stages
        self.slots: list[tuple[Task, ...]] = []
        #: per (kind, chunk) the next micro-batch (DualPipe: each chunk from its copy's first)
        self.count = {(kind, chunk): firsts[chunk] for kind in "FBW" for chunk in (0, 1)}
        self.pending: deque[int] = deque()

    @property
    def order(self) -> list[Task]:
        """The tasks of every slot, in order."""
        return [task for slot in self.slots for task in slot]

    def _next(self, kind: Kind, chunk: int) -> Task:
        """The next task of a kind on a chunk (micro-batches in increasing order)."""
        i = self.count[kind, chunk]
        self.count[kind, chunk] = i + 1
        return Task(kind, self.stages[chunk], i)

    def _full_backward(self, chunk: int) -> tuple[Task, ...]:
        """The next ``B`` of a chunk with its ``W`` (just ``B`` on an unsplit problem)."""
        b = self._next(Kind.B, chunk)
        return (b, self._next(Kind.W, chunk)) if self.split else (b,)

    def forward(self, chunk: int) -> None:
        """The next forward of a chunk."""
        self.slots.append((self._next(Kind.F, chunk),))

    def backward(self, chunk: int, then_weight: bool) -> None:
        """The next ``B`` of a chunk, its ``W`` right after it or queued."""
        if then_weight:
            self.slots.extend((task,) for task in self._full_backward(chunk))
            return
        self.slots.append((self._next(Kind.B, chunk),))
        if self.split:
            self.pending.append(chunk)

    def overlapped(self, forward_chunk: int, backward_chunk: int) -> None:
        """DualPipe's overlapped pair: a forward and a full backward of the other chunk."""
        self.slots.append((self._next(Kind.F, forward_chunk), *self._full_backward(backward_chunk)))

    def weight(self, chunk: int) -> None:
        """The next ``W`` of a chunk, named directly (ZB-V keeps no queue)."""
        if self.split:
            self.slots.append((self._next(Kind.W, chunk),))

    def next_weight(self) -> None:
        """The oldest queued ``W`` (DualPipe's ``WeightGradStore.pop``)."""
        if self.pending:
            self.slots.append((self._next(Kind.W, self.pending.popleft()),))


def _require_vshape(problem: Problem, name: str) -> None:
    """Raise unless the problem has two chunks per device on the V placement."""
    p, v = problem.num_devices, problem.num_chunks
    if v != 2 or problem.placement != placement_stages("vshape", p, 2):
        raise NotApplicableError(
            f"schedule: {name} needs placement vshape with num_chunks 2 (device d holds stages "
            f"d and 2p-1-d), got {problem.placement_name} with num_chunks {v}"
        )
