"""The timeline engine: per-device task orders in, the exact float timeline out.

Every time ppopt reports comes from here (CONTRACT §1): a task starts at the latest of its
device's previous end and each dependency's end plus the edge latency. The engine runs the
devices as coroutines over integer task ids, so a 131k-task 1F1B timeline takes a fraction of
a second; an order that can never run is a :class:`DeadlockError` naming the waiting cycle.
"""

from __future__ import annotations

from ppopt.problem import KINDS, Problem, Task
from ppopt.schedule import Op, Orders, Schedule


class OrderError(ValueError):
    """Orders that are not a permutation of the problem's tasks on their own devices."""


class DeadlockError(ValueError):
    """Orders in which some tasks wait on each other forever."""


class _Index:
    """Dense integer ids for the tasks of a problem: ``(kind * S + stage) * m + microbatch``."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.S = problem.num_stages
        self.m = problem.num_microbatches
        self.size = len(problem.kinds) * self.S * self.m

    def id(self, task: Task) -> int:
        kind, s, i = task
        k = KINDS.index(kind)
        return (k * self.S + s) * self.m + i

    def task(self, tid: int) -> Task:
        rest, i = divmod(tid, self.m)
        k, s = divmod(rest, self.S)
        return Task(KINDS[k], s, i)


def compute_timeline(problem: Problem, orders: Orders, name: str = "custom") -> Schedule:
    """Time per-device task orders as early as the rules allow; the result is tight.

    Raises :class:`OrderError` when the orders are not exactly the problem's tasks, each on its
    own device, and :class:`DeadlockError` when they wait on each other.
    """
    table = TaskTable(problem)
    id_orders = _checked_ids(problem, table.index, orders)
    starts, ends = table.times(id_orders)
    rows = tuple(
        tuple(
            Op(d, kind, s, i, starts[tid], ends[tid])
            for (kind, s, i), tid in zip(order, ids, strict=True)
        )
        for d, (order, ids) in enumerate(zip(orders, id_orders, strict=True))
    )
    return Schedule(problem, name, rows)


class TaskTable:
    """Each task id's single dependency, edge latency and duration, built once per problem
    so that many orders of the same problem can be timed (see :mod:`ppopt.solver.local`)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.index = _Index(problem)
        self.dep, self.lat = _dependency_table(problem, self.index)
        self.dur = _durations(problem, self.index)
        self.timed = 0  # tasks timed so far, over all calls (a local search's work)

    def ids(self, orders: Orders) -> list[list[int]]:
        """The orders as task ids (unchecked: for orders taken from a valid schedule)."""
        return [[self.index.id(task) for task in order] for order in orders]

    def tasks(self, id_orders: list[list[int]]) -> list[list[Task]]:
        """The id orders as tasks."""
        return [[self.index.task(tid) for tid in order] for order in id_orders]

    def times(self, orders: list[list[int]]) -> tuple[list[float], list[float]]:
        """Start and end of every task id under the orders, each device advancing as far as
        its dependencies allow until all tasks are timed; :class:`DeadlockError` if they
        cannot be."""
        dep, lat, dur = self.dep, self.lat, self.dur
        self.timed += self.index.size
        start = [0.0] * self.index.size
        end = [-1.0] * self.index.size
        pos = [0] * len(orders)
        clock = [0.0] * len(orders)
        waiters: dict[int, list[int]] = {}
        ready = list(range(len(orders)))
        while ready:
            d = ready.pop()
            order, k, now = orders[d], pos[d], clock[d]
            n = len(order)
            while k < n:
                tid = order[k]
                before = dep[tid]
                if before >= 0:
                    done = end[before]
                    if done < 0.0:
                        waiters.setdefault(before, []).append(d)
                        break
                    done += lat[tid]
                    if done > now:
                        now = done
                start[tid] = now
                now += dur[tid]
                end[tid] = now
                k += 1
                woken = waiters.pop(tid, None)
                if woken:
                    ready.extend(woken)
            pos[d], clock[d] = k, now
        if sum(pos) < self.index.size:
            raise DeadlockError(_describe_deadlock(self.index, orders, pos, dep))
        return start, end


def _checked_ids(problem: Problem, index: _Index, orders: Orders) -> list[list[int]]:
    """Integer orders, after checking every task appears once on its own device."""
    if len(orders) != problem.num_devices:
        raise OrderError(f"expected {problem.num_devices} device orders, got {len(orders)}")
    S, m, place = index.S, index.m, problem.placement
    kind_index = {kind: k for k, kind in enumerate(problem.kinds)}
    seen = bytearray(index.size)
    id_orders = []
    for d, order in enumerate(orders):
        ids = []
        for kind, s, i in order:
            k = kind_index.get(kind)
            if k is None or not 0 <= s < S or not 0 <= i < m:
                raise OrderError(f"device {d}: {(kind, s, i)} is not a task of this problem")
            if place[s] != d:
                raise OrderError(
                    f"device {d}: {Task(kind, s, i).label()} belongs on device {place[s]}"
                )
            tid = (k * S + s) * m + i
            if seen[tid]:
                raise OrderError(f"device {d}: {Task(kind, s, i).label()} appears twice")
            seen[tid] = 1
            ids.append(tid)
        id_orders.append(ids)
    missing = index.size - sum(seen)
    if missing:
        first = index.task(seen.index(0))
        raise OrderError(f"{missing} tasks are in no device order, e.g. {first.label()}")
    return id_orders


def _dependency_table(problem: Problem, index: _Index) -> tuple[list[int], list[float]]:
    """For each task id: the id of its single dependency (-1 if none) and the edge latency."""
    S, m = index.S, index.m
    place = problem.placement
    dep = [-1] * index.size
    lat = [0.0] * index.size
    for k, kind in enumerate(problem.kinds):
        for s in range(S):
            if kind == "F":
                src = (0, s - 1) if s > 0 else None
            elif kind == "B":
                src = (1, s + 1) if s < S - 1 else (0, s)
            else:
                src = (1, s)
            if src is None:
                continue
            delay = 0.0 if place[src[1]] == place[s] else problem.p2p
            base, src_base = (k * S + s) * m, (src[0] * S + src[1]) * m
            dep[base : base + m] = range(src_base, src_base + m)
            lat[base : base + m] = [delay] * m
    return dep, lat


def _durations(problem: Problem, index: _Index) -> list[float]:
    """Duration of each task id."""
    out: list[float] = []
    for kind in problem.kinds:
        for s in range(index.S):
            out.extend([problem.duration(kind, s)] * index.m)
    return out


def _describe_deadlock(
    index: _Index, orders: list[list[int]], pos: list[int], dep: list[int]
) -> str:
    """Name the cycle of devices whose next tasks wait on each other."""
    place = index.problem.placement
    stuck = {d for d, order in enumerate(orders) if pos[d] < len(order)}
    d = min(stuck)
    visited: list[int] = []
    while d not in visited:
        visited.append(d)
        blocker = dep[orders[d][pos[d]]]
        d = place[index.task(blocker).stage]
    cycle = visited[visited.index(d) :]
    links = []
    for dev in cycle:
        head = orders[dev][pos[dev]]
        blocker = dep[head]
        links.append(
            f"device {dev} waits at {index.task(head).label()} for {index.task(blocker).label()} "
            f"(device {place[index.task(blocker).stage]})"
        )
    return f"deadlock: {len(stuck)} devices can never continue; " + "; ".join(links)
