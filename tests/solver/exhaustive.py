"""An exhaustive branch-and-bound over every tight schedule, independent of the solver.

Used by the solver tests as the reference optimum on small problems. It shares no code with
``ppopt.solver``: it asks the :class:`~ppopt.problem.Problem` only for the rules (tasks,
dependencies, latencies, durations, placement, memory amounts).

Enumeration: a tight schedule, its ops sorted by ``(start, device)``, is one sequence in
which every op comes after its dependencies (a dependency ends, so starts, strictly before).
The search builds that sequence: at each step any task whose dependencies are all placed may
be appended to its device, starting at ``max(device's last end, each dependency's end + its
latency)``, and is accepted only if its ``(start, device)`` is not below the last placed one.
Every tight schedule is then built exactly once, and nothing else is. Tight schedules lose
nothing: memory on a device depends only on its task order (everything earlier in the order
has ended when an F starts, everything later has not), so starting tasks earlier keeps every
memory level and only lowers end times.

Durations and memory amounts are those of each task's micro-batch (``microbatch_scale``).
There is deliberately **no** micro-batch-order symmetry break here: the tests use this search
to check that the solver's symmetry break loses nothing.

Memory: an F allocates its activation at its start, a B (W) frees its part at its end; at one
instant frees come before allocations, which on one device is exactly the run order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ppopt.problem import Problem
from ppopt.tasks import Task

#: Slack on memory comparisons (float sums of amounts).
MEMORY_EPS = 1e-9


@dataclass(frozen=True)
class SearchResult:
    """The optimum found: its value, one optimal set of per-device orders, nodes visited and
    complete schedules reached (with ``prune=False``: every tight schedule under the limit)."""

    value: float
    orders: list[list[Task]]
    nodes: int
    leaves: int


class _Search:
    """Mutable state of one depth-first branch-and-bound (integer task ids for speed)."""

    def __init__(
        self, problem: Problem, limit: Sequence[float] | None, objective: str, prune: bool
    ) -> None:
        self.problem = problem
        self.objective = objective
        self.prune = prune
        self.tasks = problem.tasks()
        index = {task: k for k, task in enumerate(self.tasks)}
        n = len(self.tasks)
        self.dur = [problem.duration(t.kind, t.stage, t.microbatch) for t in self.tasks]
        self.dev = [problem.device_of(t.stage) for t in self.tasks]
        self.deps = [
            [(index[d], problem.latency(d, t)) for d in problem.dependencies(t)] for t in self.tasks
        ]
        self.succ: list[list[int]] = [[] for _ in range(n)]
        for k, deps in enumerate(self.deps):
            for d, _ in deps:
                self.succ[d].append(k)
        self.alloc = [self._memory_alloc(t) for t in self.tasks]
        self.delta = [self._memory_delta(t) for t in self.tasks]
        p = problem.num_devices
        self.limit = list(limit) if limit is not None else None
        self.topo = sorted(range(n), key=self._depth)
        self.tail = self._tails()
        self.release = [0.0] * n
        # state
        self.end: list[float | None] = [None] * n
        self.waiting = [len(d) for d in self.deps]
        self.ready = {k for k in range(n) if not self.deps[k]}
        self.dev_end = [0.0] * p
        self.first: list[float | None] = [None] * p
        self.mem = [0.0] * p
        self.rem = [0.0] * p
        for k in range(n):
            self.rem[self.dev[k]] += self.dur[k]
        self.orders: list[list[int]] = [[] for _ in range(p)]
        self.best = float("inf")
        self.best_orders: list[list[int]] = []
        self.nodes = 0
        self.leaves = 0
        self.seen: set[tuple[object, ...]] = set()
        self.saved: list[tuple[float, float | None]] = []

    def _memory_alloc(self, task: Task) -> float:
        """Memory a task takes at its start: an F its activation (and a recomputed F its
        checkpoint too), an R the activation again (docs/contract.md §1)."""
        p, s = self.problem, task.stage
        c = p.scale_of(task.microbatch)  # microbatch_scale: every amount times the factor
        again = p.is_recomputed(s, task.microbatch)
        if task.kind == "F":
            return c * (p.activation[s] + (p.checkpoint_of(s) if again else 0.0))
        return c * p.activation[s] if task.kind == "R" else 0.0

    def _memory_delta(self, task: Task) -> float:
        """Memory change of a task on its device once it has ended: +activation for an F
        (+checkpoint only, when recomputed), +activation - checkpoint for an R, -freed at the
        end of a B or W (docs/contract.md §1)."""
        return self.problem.scale_of(task.microbatch) * self._reference_delta(task)

    def _reference_delta(self, task: Task) -> float:
        """:meth:`_memory_delta` of the reference micro-batch."""
        p, s = self.problem, task.stage
        if task.kind == "F":
            if p.is_recomputed(s, task.microbatch):
                return p.checkpoint_of(s)
            return p.activation[s]
        if task.kind == "R":
            return p.activation[s] - p.checkpoint_of(s)
        if task.kind == "B":
            return -(p.activation[s] - p.retained[s]) if p.is_split else -p.activation[s]
        return -p.retained[s]

    def _tails(self) -> list[float]:
        """Longest chain from a task's start to the end of its last successor."""
        tail = [0.0] * len(self.tasks)
        for k in reversed(self.topo):
            after = [lat + tail[s] for s in self.succ[k] for d, lat in self.deps[s] if d == k]
            tail[k] = self.dur[k] + max(after, default=0.0)
        return tail

    def _depth(self, k: int) -> int:
        """Number of tasks on the dependency chain before task ``k``."""
        depth = 0
        while self.deps[k]:
            k = self.deps[k][0][0]
            depth += 1
        return depth

    def _value(self) -> float:
        """The objective of the complete schedule."""
        if self.objective == "span":
            return max(
                e - f for e, f in zip(self.dev_end, self.first, strict=True) if f is not None
            )
        return max(self.dev_end)

    def _bound(self, last: float) -> float:
        """A value no completion of the current prefix can beat.

        Every later op starts at or after ``last`` (the start of the last placed op), after its
        device's last end and after its dependency chain: its *release*. Per device, the
        remaining tasks released at or after ``r`` all run after ``r``, and the last of them is
        followed by at least the shortest chain after any of them (one-machine bound).
        """
        release = self.release
        pending: list[list[tuple[float, float, float]]] = [[] for _ in self.rem]
        chain = 0.0
        for k in self.topo:
            if self.end[k] is not None:
                continue
            dev = self.dev[k]
            r = max(last, self.dev_end[dev])
            for d, lat in self.deps[k]:
                done = self.end[d]
                r = max(r, (release[d] + self.dur[d] if done is None else done) + lat)
            release[k] = r
            chain = max(chain, r + self.tail[k])
            pending[dev].append((r, self.dur[k], self.tail[k] - self.dur[k]))
        span = self.objective == "span"
        bound = 0.0 if span else chain
        for d, tasks in enumerate(pending):
            first = self.first[d]
            end, after = self.dev_end[d], 0.0
            work, shortest = 0.0, float("inf")
            for r, dur, tail in sorted(tasks, reverse=True):
                work += dur
                shortest = min(shortest, tail)
                if r + work + shortest > end + after:
                    end, after = r + work, shortest
            if span:
                bound = max(bound, end - first if first is not None else self.rem[d])
            else:
                bound = max(bound, end + after)
        return bound

    def _start(self, k: int) -> float:
        """Earliest start of a ready task after its device and dependencies."""
        start = self.dev_end[self.dev[k]]
        for d, lat in self.deps[k]:
            done = self.end[d]
            assert done is not None
            start = max(start, done + lat)
        return start

    def _key(self, last: float, last_dev: int) -> tuple[object, ...]:
        """Everything the future depends on: placed set, device ends, the ends of placed
        tasks still awaited, first starts (for span) and the last (start, device)."""
        placed = tuple(k for k, e in enumerate(self.end) if e is not None)
        awaited = tuple(self.end[d] for k in sorted(self.ready) for d, _ in self.deps[k])
        firsts = tuple(self.first) if self.objective == "span" else ()
        return (placed, tuple(self.dev_end), awaited, firsts, last, last_dev)

    def run(self, last: float = 0.0, last_dev: int = -1) -> None:
        """Depth-first search from the current prefix."""
        self.nodes += 1
        if not self.ready:
            if all(e is not None for e in self.end):
                self.leaves += 1
                value = self._value()
                if value < self.best:
                    self.best = value
                    self.best_orders = [list(o) for o in self.orders]
            return
        if self.prune:
            if self._bound(last) >= self.best:
                return
            key = self._key(last, last_dev)
            if key in self.seen:
                return
            self.seen.add(key)
        for start, d, k in sorted(self._candidates(last, last_dev), key=_later_kinds_first):
            self._place(k, start)
            self.run(start, d)
            self._unplace(k)

    def _candidates(self, last: float, last_dev: int) -> list[tuple[float, int, int]]:
        """Ready tasks that keep the sequence sorted by (start, device) and fit in memory."""
        out = []
        for k in self.ready:
            d, start = self.dev[k], self._start(k)
            if (start, d) < (last, last_dev):
                continue
            if self._over_limit(k, d):
                continue
            out.append((start, d, k))
        return out

    def _over_limit(self, k: int, d: int) -> bool:
        """Whether task ``k`` (an F or R) would take device ``d`` above its memory limit."""
        if self.limit is None or self.alloc[k] <= 0:
            return False
        return self.mem[d] + self.alloc[k] > self.limit[d] * (1 + MEMORY_EPS) + MEMORY_EPS

    def _place(self, k: int, start: float) -> None:
        """Put task ``k`` at ``start`` on its device and release its successors."""
        d = self.dev[k]
        self.end[k] = start + self.dur[k]
        self.saved.append((self.dev_end[d], self.first[d]))
        self.dev_end[d] = start + self.dur[k]
        if self.first[d] is None:
            self.first[d] = start
        self.mem[d] += self.delta[k]
        self.rem[d] -= self.dur[k]
        self.orders[d].append(k)
        self.ready.discard(k)
        for s in self.succ[k]:
            self.waiting[s] -= 1
            if self.waiting[s] == 0:
                self.ready.add(s)

    def _unplace(self, k: int) -> None:
        """Undo :meth:`_place` of task ``k`` (the last one placed)."""
        d = self.dev[k]
        for s in self.succ[k]:
            if self.waiting[s] == 0:
                self.ready.discard(s)
            self.waiting[s] += 1
        self.ready.add(k)
        self.orders[d].pop()
        self.rem[d] += self.dur[k]
        self.mem[d] -= self.delta[k]
        self.dev_end[d], self.first[d] = self.saved.pop()
        self.end[k] = None


def exhaustive_optimum(
    problem: Problem,
    limit: Sequence[float] | None = None,
    objective: str = "makespan",
    prune: bool = True,
) -> SearchResult:
    """The least makespan (or largest per-device span) over every tight schedule of
    ``problem`` whose memory stays within ``limit`` (absolute, per device; ``None``: no limit).

    ``prune=False`` turns off the bound and the transposition table, so every tight schedule
    is reached once (``leaves`` counts them; only for tiny problems). Raises ``ValueError``
    when no schedule fits the limit.
    """
    search = _Search(problem, limit, objective, prune)
    search.run()
    if not search.best_orders:
        raise ValueError("no schedule fits the memory limit")
    orders = [[search.tasks[k] for k in row] for row in search.best_orders]
    return SearchResult(search.best, orders, search.nodes, search.leaves)


def exhaustive_recompute_optimum(
    problem: Problem, limit: Sequence[float] | None = None
) -> tuple[float, frozenset[tuple[int, int]]]:
    """For a ``recompute: auto`` problem: the least makespan over every choice of recomputed
    (stage, micro-batch) pairs and every tight schedule of each, and one optimal choice (the
    smallest when several tie). Raises ``ValueError`` when no choice fits the limit."""
    pairs = [(s, i) for s in range(problem.num_stages) for i in range(problem.num_microbatches)]
    best: tuple[float, int, frozenset[tuple[int, int]]] | None = None
    for mask in range(1 << len(pairs)):
        chosen = frozenset(pair for bit, pair in enumerate(pairs) if mask >> bit & 1)
        try:
            value = exhaustive_optimum(problem.with_recomputed(chosen), limit).value
        except ValueError:
            continue
        if best is None or (value, len(chosen)) < best[:2]:
            best = (value, len(chosen), chosen)
    if best is None:
        raise ValueError("no choice of recomputation fits the memory limit")
    return best[0], best[2]


def _later_kinds_first(candidate: tuple[float, int, int]) -> tuple[float, int, int]:
    """Search order: earliest start first; at a tie, backward work (higher task ids: B, W)
    before forwards, which frees memory and finds a good first schedule under a limit."""
    start, d, k = candidate
    return (start, d, -k)
