"""Tabu search over device orders along the critical path: the large path's first improver.

The makespan of a schedule timed from its orders is the length of a *critical path*: a chain
of tasks, each starting the moment its dependency (plus latency) or its device predecessor
ends. Only changing the order on that path can shorten it, and (as in Nowicki and Smutnicki's
job-shop search) only at the ends of its *blocks*, the runs of tasks back to back on one
device: each move swaps the first two or the last two tasks of a block. For the span
objective the path is the one that ends the device with the largest span, and the key its
span. Every candidate is
timed exactly by the engine (:class:`ppopt.timeline.TaskTable`), the best one is taken even
when it is worse (the way out of local optima), and swapping the pair back is forbidden for
:data:`TENURE` iterations unless that gives a new best. Ties on the makespan go to the
smaller sum of end times, which favours moves that pull work earlier.

A swap never deadlocks: the second task started when the first ended, so no chain leads from
it to the first (that chain would make the first start after the second ended). A swap that
moves a forward earlier is taken only if the device's memory still fits at that forward's
start (memory at a start depends on the device's order alone). The search sees whole
micro-batch timelines of 10k-50k tasks, where exact window re-solves
(:mod:`ppopt.solver.window`) are blind to warm-up congestion spread over many devices.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from ppopt.limits import within
from ppopt.metrics import Objective
from ppopt.schedule import Schedule
from ppopt.timeline import TaskTable, compute_timeline

#: Iterations during which a swapped pair may not be swapped back (measured on the p=32
#: m=256 split benchmark case: tenures 5, 8 and 12 end within 0.01 of each other).
TENURE = 8
#: Candidates timed exactly per iteration, the most promising by the estimate of
#: :meth:`TabuSearch._estimate` (Taillard's: the longest path through the swapped pair).
SHORTLIST = 3
#: ``--deterministic``: task timings per second of budget (one timing of a 24,576-task
#: schedule takes about 27 ms on the 2-core benchmark machine: ~0.9 million tasks a second).
TASKS_PER_SECOND = 900_000


@dataclass
class _Timed:
    """Orders as task ids with their exact times, and the search's key for them."""

    orders: list[list[int]]
    start: list[float]
    end: list[float]

    @property
    def makespan(self) -> float:
        return max(self.end)

    def widest(self) -> int:
        """The device with the largest span (first start to last end)."""
        return max(
            (d for d, row in enumerate(self.orders) if row),
            key=lambda d: self.end[self.orders[d][-1]] - self.start[self.orders[d][0]],
        )

    def value(self, objective: str) -> float:
        """The makespan, or the largest per-device span."""
        if objective == Objective.SPAN:
            row = self.orders[self.widest()]
            return self.end[row[-1]] - self.start[row[0]]
        return self.makespan

    def key(self, objective: str = Objective.MAKESPAN) -> tuple[float, float]:
        """The objective first (rounded off float noise), then the sum of end times."""
        return round(self.value(objective), 9), sum(self.end)


class TabuSearch:
    """The search state for one problem: the timing table, memory changes and the limit."""

    def __init__(
        self,
        schedule: Schedule,
        limit: tuple[float, ...] | None,
        objective: str = Objective.MAKESPAN,
    ) -> None:
        self.problem = schedule.problem
        self.objective = objective
        self.name = schedule.name
        self.table = TaskTable(self.problem)
        self.limit = limit
        index = self.table.index
        self.alloc = [0.0] * index.size  # memory a task takes when it starts
        self.change = [0.0] * index.size  # ... less what it frees when it ends
        for tid in range(index.size):
            kind, stage, microbatch = index.task(tid)
            taken, freed = self.problem.op_memory_change(kind, stage, microbatch)
            self.alloc[tid], self.change[tid] = taken, taken - freed
        orders = self.table.ids(schedule.orders())
        self.current = _Timed(orders, *self.table.times(orders))
        self.where = [(0, 0)] * index.size  # (device, position) of each task, kept current
        for device, order in enumerate(orders):
            for k, tid in enumerate(order):
                self.where[tid] = (device, k)

    def run(
        self, seconds: float, deterministic: bool = False, patience: int | None = None
    ) -> Iterator[Schedule]:
        """Search for ``seconds`` (wall clock, or a fixed amount of work when
        ``deterministic``), or until ``patience`` iterations in a row shorten nothing;
        yield every schedule shorter than all before it."""
        best = self.current.key(self.objective)
        shortest = best[0]  # the objective of the last schedule yielded
        tabu: dict[tuple[int, int], int] = {}
        budget = seconds * TASKS_PER_SECOND
        clock, iteration, last_best = time.perf_counter(), 0, 0
        while patience is None or iteration - last_best < patience:
            elapsed = (time.perf_counter() - clock) * TASKS_PER_SECOND
            if (self.table.timed if deterministic else elapsed) >= budget:
                return
            iteration += 1
            move = self._best_move(tabu, iteration, best)
            if move is None:
                return
            key, device, k, trial = move
            undo = (trial.orders[device][k + 1], trial.orders[device][k])
            tabu[undo] = iteration + TENURE  # the pair the reverse swap would make
            self.current = trial
            row = trial.orders[device]
            self.where[row[k]], self.where[row[k + 1]] = (device, k), (device, k + 1)
            if key < best:
                best = key
                if best[0] < shortest:
                    shortest, last_best = best[0], iteration
                    yield self.schedule()

    def _best_move(
        self, tabu: dict[tuple[int, int], int], iteration: int, best: tuple[float, float]
    ) -> tuple[tuple[float, float], int, int, _Timed] | None:
        """The best of the :data:`SHORTLIST` most promising swaps, each timed exactly; a
        tabu swap counts only if it gives a new best (and is timed only if its estimate
        could)."""
        tails = self._tails()
        scored = sorted((self._estimate(d, k, tails), d, k) for d, k in self.candidates())
        chosen: tuple[tuple[float, float], int, int, _Timed] | None = None
        timed = 0
        for estimate, device, k in scored:
            if timed >= SHORTLIST and chosen is not None:
                break
            row = self.current.orders[device]
            banned = tabu.get((row[k + 1], row[k]), 0) >= iteration
            if banned and estimate >= best[0]:
                continue
            trial = self._swapped(device, k)
            timed += 1
            key = trial.key(self.objective)
            if (not banned or key < best) and (chosen is None or key < chosen[0]):
                chosen = (key, device, k, trial)
        return chosen

    def schedule(self) -> Schedule:
        """The current orders as a schedule (the engine's timeline, validated orders)."""
        return compute_timeline(self.problem, self.table.tasks(self.current.orders), self.name)

    # ------------------------------------------------------------------------------- moves

    def _tails(self) -> list[float]:
        """For every task, the longest chain from its start to the end of the schedule under
        the current orders: its duration, then the longest of its device successor and its
        dependents plus latency. Tasks are taken latest start first, a reverse topological
        order since every edge goes to a later start (durations are positive)."""
        cur, dur = self.current, self.table.dur
        size = len(dur)
        self.table.timed += size
        following = [size] * size  # the next task on the device; ``size``: none (tail 0)
        for order in cur.orders:
            for before, after in zip(order, order[1:], strict=False):
                following[before] = after
        tail = [0.0] * (size + 1)
        dependents = self.table.dependents
        for tid in sorted(range(size), key=cur.start.__getitem__, reverse=True):
            longest = tail[following[tid]]
            for nxt, latency in dependents[tid]:
                via = latency + tail[nxt]
                if via > longest:
                    longest = via
            tail[tid] = dur[tid] + longest
        del tail[size]
        return tail

    def _estimate(self, device: int, k: int, tail: list[float]) -> float:
        """The longest path through positions ``k, k+1`` of ``device`` once swapped, from
        the current starts and ``tail``s of their neighbours (exact for that path)."""
        cur, deps, dur = self.current, self.table.deps, self.table.dur
        dependents = self.table.dependents
        order = cur.orders[device]
        first, second = order[k], order[k + 1]

        def ready(tid: int, free: float) -> float:
            return max([free, *(cur.end[before] + latency for before, latency in deps[tid])])

        def rest(tid: int, following: float) -> float:
            return dur[tid] + max([following, *(lat + tail[n] for n, lat in dependents[tid])])

        second_start = ready(second, cur.end[order[k - 1]] if k else 0.0)
        first_start = ready(first, second_start + dur[second])
        first_rest = rest(first, tail[order[k + 2]] if k + 2 < len(order) else 0.0)
        return max(second_start + rest(second, first_rest), first_start + first_rest)

    def candidates(self) -> list[tuple[int, int]]:
        """Swaps ``(device, k)`` of positions ``k, k+1`` at the ends of the critical path's
        blocks, where the second task does not depend on the first and memory allows."""
        blocks = self._blocks()
        moves = []
        for device, first, last in blocks:
            for k in {first, last - 1}:
                if self._swappable(device, k):
                    moves.append((device, k))
        return moves

    def _blocks(self) -> list[tuple[int, int, int]]:
        """The critical path's blocks as ``(device, first, last)`` positions, last > first:
        the path that ends the schedule, or for ``span`` the one that ends the widest device
        (its first start is where its input arrives; only its end can come earlier)."""
        cur, deps = self.current, self.table.deps
        where = self.where
        if self.objective == Objective.SPAN:
            tid = cur.orders[cur.widest()][-1]
        else:
            tid = max(range(len(cur.end)), key=cur.end.__getitem__)
        blocks: list[tuple[int, int, int]] = []
        run_end: int | None = None  # position where the current block ends
        while True:
            device, k = where[tid]
            start = cur.start[tid]
            before = next((b for b, lat in deps[tid] if cur.end[b] + lat == start), -1)
            tight_device = k > 0 and cur.end[cur.orders[device][k - 1]] == start
            if before >= 0:
                nxt = before  # a dependency explains the start: the block (if any) ends here
                tight_device = False
            elif tight_device:
                nxt = cur.orders[device][k - 1]
            else:
                nxt = -1
            if tight_device:
                run_end = k if run_end is None else run_end
            else:
                if run_end is not None and run_end > k:
                    blocks.append((device, k, run_end))
                run_end = None
            if nxt < 0:
                return blocks
            tid = nxt

    def _swappable(self, device: int, k: int) -> bool:
        """Whether positions ``k, k+1`` may trade places: no dependency between them, and
        memory still fits when the second one (if a forward) starts first."""
        order = self.current.orders[device]
        first, second = order[k], order[k + 1]
        if any(before == first for before, _ in self.table.deps[second]):
            return False
        if self.limit is None or self.alloc[second] <= 0:
            return True
        level = sum(self.change[tid] for tid in order[:k]) + self.alloc[second]
        return within(level, self.limit[device])

    def _swapped(self, device: int, k: int) -> _Timed:
        """The current orders with positions ``k, k+1`` of ``device`` swapped, timed."""
        orders = list(self.current.orders)
        row = list(orders[device])
        row[k], row[k + 1] = row[k + 1], row[k]
        orders[device] = row
        return _Timed(orders, *self.table.times(orders))


def tabu_search(
    schedule: Schedule,
    limit: tuple[float, ...] | None,
    seconds: float,
    deterministic: bool = False,
    patience: int | None = None,
    objective: str = Objective.MAKESPAN,
) -> Iterator[Schedule]:
    """Improve ``schedule``'s makespan (or largest per-device span) for ``seconds`` (or until
    ``patience`` iterations in a row shorten nothing); yields each schedule better than all
    before it."""
    yield from TabuSearch(schedule, limit, objective).run(seconds, deterministic, patience)
