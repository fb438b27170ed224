"""The zero-bubble authors' adaptive heuristics: ``zb-auto`` (one chunk) and ``zbv-auto`` (V).

Written from the papers' description (Qi et al., "Zero Bubble Pipeline Parallelism" §3
automatic scheduling; "Pipeline Parallelism with Controllable Memory", the V greedy) and
checked against the behaviour of the authors' code. Both build each device's order round by
round, timing every task as it is placed (as early as its device and its dependency allow),
so the construction's times are the timeline engine's times of the final order.

Unlike the event-driven list scheduler (:mod:`ppopt.baselines.greedy`), these place tasks in
fixed rounds (one backward per stage per round, forwards when their chain reaches them) and
hold every ``W`` back: a pending ``W`` runs only into a wait it fits (the next forward or
backward is not there before it would end), when memory needs it freed, or when the wait is
larger than the bubble the device is allowed beyond the worst device's so far.

* ``zb-auto`` (one chunk, split): a warm-up of as many forwards as fit in memory before the
  first backward arrives, then per round an ``F`` on every stage (unless the stage is ahead
  and a shorter bubble is worth waiting for, knob ``prioritize_b``) and a ``B`` on every
  stage, deepest first. Knobs, as in the paper (best of the eight): whether the warm-up may
  overrun the first backward's arrival (``allow_bubble_before_first_b``), ``prioritize_b``,
  and whether a ``W`` goes into a wait within the approved bubble (``no_bubble_greedy``).
* ``zbv-auto`` (V placement, split): the V warm-up (chunk-0 forwards while memory for
  ``2 + 2d`` more activations is left and the chunk-1 forward from below is not due), then
  rounds of one backward and one forward per device, chunk chosen by what has arrived. Knobs:
  whether a ``W`` fills a too-long wait before a forward (``fill_f``) or a chunk-0 backward
  (``fill_b``); each setting is rerun with the per-device bubbles of the previous run as the
  approved budgets while the worst bubble shrinks.

Each candidate's order is timed by the engine and kept only if it fits the problem's memory
limit; the one with the smallest largest per-device span (the authors' criterion) is chosen.
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from dataclasses import dataclass, replace

from ppopt.baselines.vshape import _require_vshape
from ppopt.baselines.zerobubble import _check_applies
from ppopt.errors import NotApplicableError
from ppopt.limits import MEMORY_TOLERANCE
from ppopt.metrics import compute_metrics
from ppopt.problem import Problem
from ppopt.tasks import Kind, Task, device_name
from ppopt.timeline import compute_timeline

Orders = list[list[Task]]

#: ``zbv-auto``: most reruns with the previous run's bubbles as approved budgets.
MAX_BUDGET_ROUNDS = 20


def zb_auto_orders(problem: Problem) -> Orders:
    """Per-device orders of the one-chunk adaptive heuristic, best over its knob grid (built
    on the true stage times and, as the authors' runtime does, on their medians)."""
    _check_applies(problem, "zb-auto")
    candidates: list[_Builder] = []
    for times in _time_models(problem):
        for overrun, prioritize_b, fill_approved in itertools.product((True, False), repeat=3):
            builder = _Builder(times)
            try:
                _one_chunk(builder, overrun, prioritize_b, fill_approved)
            except _Stuck:
                continue
            candidates.append(builder)
    return _best(problem, candidates, "zb-auto")


def zbv_auto_orders(problem: Problem) -> Orders:
    """Per-device orders of the V greedy, best over its knob grid and bubble-budget reruns
    (built on the true stage times and on their medians, see :func:`zb_auto_orders`)."""
    _require_vshape(problem, "zbv-auto")
    if not problem.is_split:
        raise NotApplicableError(
            "weight_times: zbv-auto holds W passes back and needs a split backward "
            "(give weight_times)"
        )
    candidates: list[_Builder] = []
    for times in _time_models(problem):
        for fill_b, fill_f in itertools.product((True, False), repeat=2):
            best: _Builder | None = None
            approved: list[float] | None = None
            for _ in range(MAX_BUDGET_ROUNDS):
                builder = _Builder(times, approved)
                try:
                    _vshape(builder, fill_f, fill_b)
                except _Stuck:
                    break
                candidates.append(builder)
                if best is not None and builder.worst >= best.worst:
                    break
                best, approved = builder, list(builder.bubble)
    return _best(problem, candidates, "zbv-auto")


# ------------------------------------------------------------------------------- internals


class _Stuck(Exception):
    """A knob setting cannot complete on this problem (a dependency not yet placed, or
    memory that no pending ``W`` can free); the setting is skipped."""


def _time_models(problem: Problem) -> list[Problem]:
    """The problem, and when its stages differ the same problem with every stage at the
    median times (as the authors' runtime builds its schedules: their greedy assumes equal
    stages and can stall on unequal ones); memory is unchanged, so an order's peaks are the
    same in both."""

    def median(values: tuple[float, ...]) -> float:
        return sorted(values)[len(values) // 2]

    weight = problem.weight
    uniform = replace(
        problem,
        forward=(median(problem.forward),) * problem.num_stages,
        backward=(median(problem.backward),) * problem.num_stages,
        weight=None if weight is None else (median(weight),) * problem.num_stages,
        overlap=None,  # the heuristic runs no pairs
    )
    return [problem] if uniform == problem else [problem, uniform]


def _best(problem: Problem, candidates: list[_Builder], name: str) -> Orders:
    """The candidate with the smallest largest per-device span on the true times that fits
    the limit (a construction on the true times is the engine's timeline, so it is read from
    the builder; one on the median times is timed by the engine)."""
    best, value = None, math.inf
    for builder in candidates:
        if not builder.fits_limit():
            continue
        if builder.problem is problem:
            span = builder.span()
        else:
            span = compute_metrics(compute_timeline(problem, builder.orders, name)).span
        if span < value:
            best, value = builder.orders, span
    if best is None:
        raise NotApplicableError(f"schedule: {name} finds no order within the memory limit")
    return best


@dataclass
class _Builder:
    """Orders under construction, with each device's clock, memory level and bubble.

    ``approved``: per-device bubble budgets of an earlier run (``zbv-auto``); a device may
    then leave a wait unfilled up to the worst budget less its own."""

    problem: Problem
    approved: list[float] | None = None

    def __post_init__(self) -> None:
        p = self.problem.num_devices
        caps = self.problem.memory_caps
        self.cap = list(caps) if caps is not None else [math.inf] * p
        self.clock = [0.0] * p
        self.level = [0.0] * p
        self.peak = [0.0] * p
        self.bubble = [0.0] * p
        self.worst = 0.0  # the largest bubble so far (bubbles only grow)
        self.first: list[float | None] = [None] * p  # a device's first start; bubbles count after
        self.ends: dict[tuple[Kind, int, int], float] = {}
        self.orders: Orders = [[] for _ in range(p)]
        self.pending: list[deque[Task]] = [deque() for _ in range(p)]
        self.count: dict[tuple[Kind, int], int] = {}

    def next_index(self, kind: Kind, stage: int) -> int:
        """How many tasks of this kind and stage are placed (the next one's micro-batch)."""
        return self.count.get((kind, stage), 0)

    def put(self, task: Task) -> None:
        """Append ``task`` to its device's order, timed as early as the rules allow."""
        problem = self.problem
        kind, stage, i = task
        d = problem.placement[stage]
        ready = self.clock[d]
        for edge in problem.edges[kind, stage]:
            end = self.ends.get((edge.kind, edge.stage, i))
            if end is None:
                raise _Stuck(f"{task} before {edge.kind}{edge.stage}")
            ready = max(ready, end + edge.latency)
        if self.first[d] is None:
            self.first[d] = ready
        else:
            self.bubble[d] += ready - self.clock[d]
            self.worst = max(self.worst, self.bubble[d])
        end = ready + problem.duration(kind, stage)
        self.ends[task] = self.clock[d] = end
        taken, freed = problem.memory_change(kind, stage)
        self.peak[d] = max(self.peak[d], self.level[d] + taken)
        self.level[d] += taken - freed
        self.orders[d].append(task)
        self.count[kind, stage] = i + 1
        if kind == Kind.B and problem.is_split:
            self.pending[d].append(Task(Kind.W, stage, i))

    def fits_limit(self) -> bool:
        """Whether the order stays within the memory limit (a device's memory follows its
        own order: every earlier task has ended when the next one starts)."""
        return all(
            peak <= cap * (1 + MEMORY_TOLERANCE)
            for peak, cap in zip(self.peak, self.cap, strict=True)
        )

    def span(self) -> float:
        """The largest per-device span of the order as timed."""
        return max(end - (first or 0.0) for end, first in zip(self.clock, self.first, strict=True))

    def put_next(self, kind: Kind, stage: int) -> None:
        """Place the next micro-batch of this kind and stage."""
        self.put(Task(kind, stage, self.next_index(kind, stage)))

    def put_w(self, d: int) -> None:
        """Place the device's oldest held-back ``W``."""
        if not self.pending[d]:
            raise _Stuck(f"{device_name(d)}: no W to free memory")
        self.put(self.pending[d].popleft())

    def fits(self, d: int, stage: int, extra: int = 1) -> bool:
        """Whether ``extra`` more forwards of ``stage`` fit in ``d``'s memory now."""
        return self.level[d] + extra * self.problem.allocation(stage) <= self.cap[d] * (
            1 + MEMORY_TOLERANCE
        )

    def free_for_forward(self, d: int, stage: int) -> None:
        """Run held-back W passes until the next forward of ``stage`` fits."""
        while not self.fits(d, stage):
            self.put_w(d)

    def allowance(self, d: int) -> float:
        """The bubble device ``d`` may still add: the worst device's bubble so far (or the
        worst approved budget less ``d``'s own budget, if larger) less ``d``'s bubble."""
        worst = self.worst
        if self.approved is not None:
            worst = max(worst, max(self.approved) - self.approved[d])
        return worst - self.bubble[d]

    def fill_wait(self, d: int, arrives: float | None, within: bool, beyond: bool) -> None:
        """Before a task whose input arrives at ``arrives``: run held-back W passes that end
        by then; if the device would still wait, one more W when the wait is within the
        allowance and ``within``, or beyond it and ``beyond``."""
        if arrives is None:
            return
        pending = self.pending[d]
        while pending and self.clock[d] + self._w_time(pending[0]) <= arrives:
            self.put_w(d)
        wait = arrives - self.clock[d]
        if pending and wait > 0 and (beyond if wait > self.allowance(d) else within):
            self.put_w(d)

    def cross_input(self, task: Task) -> float | None:
        """When the input of ``task`` from another device arrives (``None``: it has no such
        input, or it is not placed yet)."""
        placement = self.problem.placement
        for edge in self.problem.edges[task.kind, task.stage]:
            if placement[edge.stage] != placement[task.stage]:
                end = self.ends.get((edge.kind, edge.stage, task.microbatch))
                return None if end is None else end + edge.latency
        return None

    def _w_time(self, task: Task) -> float:
        return self.problem.duration(Kind.W, task.stage)


def _one_chunk(
    builder: _Builder, warmup_overrun: bool, prioritize_b: bool, fill_approved: bool
) -> None:
    """The one-chunk heuristic (stage ``s`` on device ``s``); see the module docstring."""
    problem = builder.problem
    S, m = problem.num_stages, problem.num_microbatches
    _warm_up(builder, warmup_overrun)
    for i in range(1, m):
        wanted = [_wants_forward(builder, s, prioritize_b) for s in range(S)]
        for s in range(S - 2, -1, -1):
            wanted[s] = wanted[s] and wanted[s + 1]
        for s in range(S):
            if wanted[s]:
                f = Task(Kind.F, s, builder.next_index(Kind.F, s))
                builder.free_for_forward(s, s)
                builder.fill_wait(s, builder.cross_input(f), fill_approved, True)
                builder.put(f)
        for s in range(S - 1, -1, -1):
            b = Task(Kind.B, s, i)
            builder.fill_wait(s, builder.cross_input(b), fill_approved, True)
            if s == 0 and builder.next_index(Kind.F, 0) == m:
                while builder.pending[0]:
                    builder.put_w(0)
            builder.put(b)
    for s in range(S):
        while builder.pending[s]:
            builder.put_w(s)


def _warm_up(builder: _Builder, overrun: bool) -> None:
    """Round 0: one forward per stage, then on each stage as many forwards as fit in memory
    before the first backward can arrive (deepest stage first, each stage's arrival from the
    one below; a stage never runs more than the one above it), then the first backwards."""
    problem = builder.problem
    S, m = problem.num_stages, problem.num_microbatches
    for s in range(S):
        builder.put(Task(Kind.F, s, 0))
    extra = [0] * S
    arrives = builder.ends[Task(Kind.F, S - 1, 0)] + problem.backward[S - 1]
    for s in range(S - 2, -1, -1):
        clock, level = builder.clock[s], builder.level[s]
        f, act = problem.forward[s], problem.allocation(s)
        hop = problem.hop(s + 1, s)  # the backward's wait from the stage below
        while 1 + extra[s] < m and level + act <= builder.cap[s] * (1 + MEMORY_TOLERANCE):
            if (clock + f > arrives + hop) if overrun else (clock >= arrives + hop):
                break
            level += act
            clock += f
            extra[s] += 1
        arrives = max(clock, arrives + hop) + problem.backward[s]
    for s in range(1, S):
        while extra[s] > 0 and extra[s] >= extra[s - 1] and 1 + extra[s] < m:
            extra[s] -= 1
    for s in range(S):
        for _ in range(extra[s]):
            builder.put_next(Kind.F, s)
    for s in range(S - 1, -1, -1):
        builder.put_next(Kind.B, s)


def _wants_forward(builder: _Builder, s: int, prioritize_b: bool) -> bool:
    """Whether stage ``s`` runs a forward this round. With ``prioritize_b`` a stage two or
    more forwards ahead of the next skips it when the next stage's F and B come back before
    this F (plus the W passes memory would force) could end, or when the wait for them fits
    the approved bubble: the B is then not delayed behind the F."""
    problem = builder.problem
    S, m = problem.num_stages, problem.num_microbatches
    nf = builder.next_index(Kind.F, s)
    if nf >= m:
        return False
    if not (prioritize_b and s + 1 < S and nf >= builder.next_index(Kind.F, s + 1) + 2):
        return True
    back = (
        builder.clock[s + 1]
        + problem.forward[s + 1]
        + problem.backward[s + 1]
        + problem.hop(s + 1, s)
    )
    if builder.clock[s] >= back:
        return False
    level = builder.level[s] + problem.allocation(s)
    w_time, pending = 0.0, list(builder.pending[s])
    while level > builder.cap[s] * (1 + MEMORY_TOLERANCE) and pending:
        w = pending.pop(0)
        w_time += problem.duration(Kind.W, s)
        level -= problem.release(Kind.W, w.stage)
    if builder.clock[s] + problem.forward[s] + w_time <= back:
        return True
    return not back - builder.clock[s] <= builder.allowance(s)


def _vshape(builder: _Builder, fill_f: bool, fill_b: bool) -> None:
    """The V greedy (device ``d`` holds stages ``d`` and ``2p-1-d``); see the module
    docstring. Chunk 0 is the down leg (stage ``d``), chunk 1 the up leg (``2p-1-d``)."""
    problem = builder.problem
    p, m = problem.num_devices, problem.num_microbatches
    _v_warm_up(builder)
    for _ in range(2 * m):
        for d, up in _backward_ranks(builder):
            stage = 2 * p - 1 - d if up else d
            b = Task(Kind.B, stage, builder.next_index(Kind.B, stage))
            builder.fill_wait(d, builder.cross_input(b), False, fill_b or not up)
            builder.put(b)
        for d in range(p):
            chosen = _forward_stage(builder, d)
            if chosen is None:
                continue
            builder.free_for_forward(d, chosen)
            f = Task(Kind.F, chosen, builder.next_index(Kind.F, chosen))
            builder.fill_wait(d, builder.cross_input(f), False, fill_f)
            builder.put(f)
    for d in range(p):
        while builder.pending[d]:
            builder.put_w(d)


def _v_warm_up(builder: _Builder) -> None:
    """The V warm-up: the first forward of every down-leg stage; then, deepest device first,
    chunk-0 forwards on devices ``0..d`` while ``d`` has memory for ``2 + 2d`` more and the
    up-leg forward from below is not due, then ``d``'s first up-leg forward; then forwards on
    both legs, alternating, until each device has caught up with the one above it."""
    problem = builder.problem
    p, m = problem.num_devices, problem.num_microbatches
    up = [2 * p - 1 - d for d in range(p)]
    for d in range(p):
        builder.put(Task(Kind.F, d, 0))
    for d in range(p - 1, -1, -1):
        if d < p - 1:
            due = builder.ends[Task(Kind.F, up[d + 1], 0)] + problem.hop(up[d + 1], up[d])
            while (
                builder.fits(d, d, 2 + 2 * d)
                and builder.clock[d] + problem.forward[d] <= due
                and builder.next_index(Kind.F, d) < m
            ):
                for j in range(d + 1):  # devices above d only while their memory allows
                    if builder.next_index(Kind.F, j) < m and builder.fits(j, j):
                        builder.put_next(Kind.F, j)
        builder.put_next(Kind.F, up[d])

    def done(d: int) -> int:
        return builder.next_index(Kind.F, d) + builder.next_index(Kind.F, up[d])

    leg = 0
    for d in range(1, p):
        for _ in range(4 * m):
            above_up = builder.next_index(Kind.F, up[d - 1])
            behind = done(d) < done(d - 1)
            if not (behind or builder.next_index(Kind.F, up[d]) <= above_up < m):
                break
            for j in range(p - 1, d - 1, -1):
                stage = up[j] if leg else j
                if builder.next_index(Kind.F, stage) < m:
                    builder.put_next(Kind.F, stage)
            leg = 1 - leg
        else:
            raise _Stuck(f"{device_name(d)}: V warm-up does not converge")


def _backward_ranks(builder: _Builder) -> list[tuple[int, bool]]:
    """This round's backward per device, as (device, up leg?): a device takes the up-leg
    backward (the deeper stage ``2p-1-d``) unless it has run as many of those as of the
    down-leg ones, or the down-leg one's input has not come back yet (and down-leg forwards
    are left). Down-leg ones go first, the deepest device first; then up-leg ones, device 0
    first."""
    problem = builder.problem
    p, m = problem.num_devices, problem.num_microbatches
    ups, downs = [], []
    for d in range(p):
        deep, shallow = 2 * p - 1 - d, d
        n_deep, n_shallow = builder.next_index(Kind.B, deep), builder.next_index(Kind.B, shallow)
        if n_shallow >= n_deep:
            ups.append(d)
        elif d == p - 1 or Task(Kind.B, d + 1, n_shallow) in builder.ends or n_deep >= m:
            downs.append(d)
        else:
            ups.append(d)
    return [(d, False) for d in reversed(downs)] + [(d, True) for d in ups]


def _forward_stage(builder: _Builder, d: int) -> int | None:
    """This round's forward on device ``d``: the up leg when its input has arrived, else the
    down leg when its input has, or ``None``."""
    problem = builder.problem
    p, m = problem.num_devices, problem.num_microbatches
    down, up = d, 2 * p - 1 - d
    n_down, n_up = builder.next_index(Kind.F, down), builder.next_index(Kind.F, up)
    down_ready = n_down < m and (d == 0 or Task(Kind.F, d - 1, n_down) in builder.ends)
    if n_up >= m:
        return None
    if n_up >= n_down:
        return down if down_ready else None  # (unequal stages: the input may be late)
    if d == p - 1 or Task(Kind.F, up - 1, n_up) in builder.ends:
        return up
    return down if down_ready else None
