"""The timeline engine: per-device task orders in, the exact float timeline out.

Every time ppopt reports comes from here (docs/contract.md §1): a task starts at the latest of
its device's previous end and each dependency's end plus the edge latency. The dependencies are
the problem's own rules (:attr:`ppopt.problem.Problem.edges`). The engine runs the devices as
coroutines over integer task ids, so a 131k-task 1F1B timeline takes a fraction of a second;
an order that can never run is a :class:`DeadlockError` naming the waiting cycle.

With offload a device has two lanes (:mod:`ppopt.offload`): its order lists compute tasks and
copies, each lane runs its tasks in the order's sequence, and the lanes wait on each other as
the order says (a compute task for the offloads and reloads listed before it, a reload for the
compute task before it); a problem without offload takes the one-lane path unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable

from ppopt.errors import DeadlockError, OrderError
from ppopt.problem import Problem
from ppopt.schedule import Op, Orders, Schedule
from ppopt.tasks import COPY_KINDS, KIND_SPECS, Kind, Lane, Task, device_name

#: Per task id, its dependencies as ``(task id, latency)`` pairs.
Deps = list[tuple[tuple[int, float], ...]]


class _Index:
    """Dense integer ids for the tasks of a problem: ``(kind * S + stage) * m + microbatch``."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.kinds = problem.kinds
        self.kind_number = {kind: k for k, kind in enumerate(self.kinds)}
        self.S = problem.num_stages
        self.m = problem.num_microbatches
        self.size = len(self.kinds) * self.S * self.m

    def id(self, task: Task) -> int:
        kind, s, i = task
        return (self.kind_number[kind] * self.S + s) * self.m + i

    def task(self, tid: int) -> Task:
        rest, i = divmod(tid, self.m)
        k, s = divmod(rest, self.S)
        return Task(self.kinds[k], s, i)


#: Overlapped pairs as ``(forward task, backward task)`` (docs/contract.md §1).
Pairs = Iterable[tuple[Task, Task]]


def compute_timeline(
    problem: Problem,
    orders: Orders,
    name: str = "custom",
    pairs: Pairs = (),
    table: TaskTable | None = None,
) -> Schedule:
    """Time per-device task orders as early as the rules allow; the result is tight.

    ``pairs`` run as overlapped F+B pairs (each pair's two tasks consecutive in its device's
    order, F first): a pair starts when both parts' dependencies are met and both end at
    its start plus :meth:`~ppopt.problem.Problem.pair_duration`.

    ``table``: the problem's :class:`TaskTable`, when the caller times many orders of it.

    Raises :class:`OrderError` when the orders are not exactly the problem's tasks, each on its
    own device, or a pair is not one, and :class:`DeadlockError` when they wait on each other.
    """
    if table is None or table.problem is not problem:
        table = TaskTable(problem)
    id_orders = _checked_ids(problem, table.index, orders)
    chosen = frozenset((Task(*f), Task(*b)) for f, b in pairs)
    if chosen:
        starts, ends = table.paired_times(id_orders, _checked_pairs(problem, table, orders, chosen))
    else:
        starts, ends = table.times(id_orders)
    rows = tuple(
        tuple(
            Op(d, kind, s, i, starts[tid], ends[tid])
            for (kind, s, i), tid in zip(order, ids, strict=True)
        )
        for d, (order, ids) in enumerate(zip(orders, id_orders, strict=True))
    )
    if not table.copies:
        return Schedule(problem, name, rows, pairs=chosen)
    copy = Lane.COPY
    compute = tuple(tuple(op for op in row if KIND_SPECS[op.kind].lane != copy) for row in rows)
    copies = tuple(tuple(op for op in row if KIND_SPECS[op.kind].lane == copy) for row in rows)
    return Schedule(problem, name, compute, copy_ops=copies)


def _checked_pairs(
    problem: Problem, table: TaskTable, orders: Orders, pairs: frozenset[tuple[Task, Task]]
) -> dict[int, tuple[int, float]]:
    """Per pair, its forward's id -> (its backward's id, the pair's duration), after checking
    each pair is one (:meth:`~ppopt.problem.Problem.pair_fault`), its tasks consecutive in
    their device's order (F first) and no task in two pairs."""
    follows: dict[Task, Task] = {}
    for order in orders:
        for before, after in zip(order, order[1:], strict=False):
            follows[Task(*before)] = Task(*after)
    out: dict[int, tuple[int, float]] = {}
    used: set[Task] = set()
    for f, b in sorted(pairs):
        fault = problem.pair_fault(f, b)
        if fault is None and follows.get(f) != b:
            fault = "a pair's backward follows its forward in the device's order"
        if fault is None and (f in used or b in used):
            fault = "a task is in one pair at most"
        if fault is not None:
            raise OrderError(f"pair ({f.label()}, {b.label()}): {fault}")
        used.update((f, b))
        out[table.index.id(f)] = (table.index.id(b), problem.pair_duration(f.stage, b.stage))
    return out


class TaskTable:
    """Each task id's dependencies (with their latencies), its dependents and its duration,
    built once per problem so that many orders of it can be timed (see
    :mod:`ppopt.solver.local`)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.index = _Index(problem)
        self.deps = _dependency_table(problem, self.index)
        self.dependents: list[list[tuple[int, float]]] = [[] for _ in range(self.index.size)]
        for tid, befores in enumerate(self.deps):
            for before, latency in befores:
                self.dependents[before].append((tid, latency))
        self.dur = _durations(problem, self.index)
        #: Per task id: 0 compute, 1 offload, 2 reload; empty when nothing is offloaded.
        self.copies = _copy_roles(problem, self.index)
        self.timed = 0  # tasks timed so far, over all calls (a local search's work)
        self._tasks: list[Task] | None = None  # every task by id, made on first use

    def ids(self, orders: Orders) -> list[list[int]]:
        """The orders as task ids (unchecked: for orders taken from a valid schedule)."""
        return [[self.index.id(task) for task in order] for order in orders]

    def tasks(self, id_orders: list[list[int]]) -> list[list[Task]]:
        """The id orders as tasks."""
        if self._tasks is None:
            self._tasks = [self.index.task(tid) for tid in range(self.index.size)]
        every = self._tasks
        return [[every[tid] for tid in order] for order in id_orders]

    def times(self, orders: list[list[int]]) -> tuple[list[float], list[float]]:
        """Start and end of every task id under the orders, each device advancing as far as
        its dependencies allow until all tasks are timed; :class:`DeadlockError` if they
        cannot be."""
        if self.copies:
            return self._times_two_lanes(orders)
        start = [0.0] * self.index.size
        end = [-1.0] * self.index.size
        return self._advance(orders, start, end, [0] * len(orders))

    def times_after(
        self, orders: list[list[int]], start: list[float], end: list[float], cuts: list[int]
    ) -> tuple[list[float], list[float]]:
        """:meth:`times` of ``orders`` that keeps an earlier timing's ``start`` and ``end``
        for the tasks before each device's cut and times the rest (the local search's
        trials, which change late parts of the orders). Exact, the same floats as
        :meth:`times`, when the caller's cuts keep a set closed under dependencies whose
        positions and times are those of the earlier timing; the cuts before a time ``t``
        (every task starting before ``t`` stays, when nothing starting before ``t`` moved) are
        such a set, since a task's dependencies and device predecessor end by its start."""
        if self.copies:
            return self._times_two_lanes(orders)
        start, end = list(start), list(end)
        for order, cut in zip(orders, cuts, strict=True):
            for tid in order[cut:]:
                end[tid] = -1.0
        return self._advance(orders, start, end, list(cuts))

    def _advance(
        self, orders: list[list[int]], start: list[float], end: list[float], pos: list[int]
    ) -> tuple[list[float], list[float]]:
        """Time the tasks from position ``pos[d]`` of each device on (``end`` is -1 for the
        untimed ones), in place; :class:`DeadlockError` if they cannot all be."""
        deps, dur = self.deps, self.dur
        self.timed += sum(len(order) - k for order, k in zip(orders, pos, strict=True))
        clock = [end[order[k - 1]] if k else 0.0 for order, k in zip(orders, pos, strict=True)]
        waiters: dict[int, list[int]] = {}
        ready = list(range(len(orders)))
        while ready:
            d = ready.pop()
            order, k, now = orders[d], pos[d], clock[d]
            n = len(order)
            while k < n:
                tid = order[k]
                at = now
                for before, latency in deps[tid]:
                    done = end[before]
                    if done < 0.0:
                        waiters.setdefault(before, []).append(d)
                        break
                    done += latency
                    if done > at:
                        at = done
                else:
                    start[tid] = at
                    now = at + dur[tid]
                    end[tid] = now
                    k += 1
                    woken = waiters.pop(tid, None)
                    if woken:
                        ready.extend(woken)
                    continue
                break
            pos[d], clock[d] = k, now
        if sum(pos) < sum(len(order) for order in orders):
            raise DeadlockError(_describe_deadlock(self.index, orders, pos, end, deps))
        return start, end

    def _times_two_lanes(self, orders: list[list[int]]) -> tuple[list[float], list[float]]:
        """:meth:`times` of a problem with copies: per device a compute clock, a copy clock
        and the gate the compute lane waits for (the end of the last offload and the start
        of the last reload listed so far); a reload also waits for the compute clock."""
        deps, dur, role = self.deps, self.dur, self.copies
        self.timed += self.problem.num_tasks
        start = [0.0] * self.index.size
        end = [-1.0] * self.index.size
        p = len(orders)
        pos, compute, copy, gate = [0] * p, [0.0] * p, [0.0] * p, [0.0] * p
        waiters: dict[int, list[int]] = {}
        ready = list(range(p))
        while ready:
            d = ready.pop()
            order, k = orders[d], pos[d]
            while k < len(order):
                tid = order[k]
                kind = role[tid]
                at = max(compute[d], gate[d]) if kind == 0 else copy[d]
                if kind == 2 and compute[d] > at:
                    at = compute[d]
                blocked = False
                for before, latency in deps[tid]:
                    done = end[before]
                    if done < 0.0:
                        waiters.setdefault(before, []).append(d)
                        blocked = True
                        break
                    at = max(at, done + latency)
                if blocked:
                    break
                start[tid], end[tid] = at, at + dur[tid]
                if kind == 0:
                    compute[d] = end[tid]
                else:
                    copy[d] = end[tid]
                    gate[d] = max(gate[d], end[tid] if kind == 1 else at)
                k += 1
                ready.extend(waiters.pop(tid, ()))
            pos[d] = k
        if sum(pos) < sum(len(order) for order in orders):
            raise DeadlockError(_describe_deadlock(self.index, orders, pos, end, deps))
        return start, end

    def paired_times(
        self, orders: list[list[int]], pairs: dict[int, tuple[int, float]]
    ) -> tuple[list[float], list[float]]:
        """:meth:`times` with overlapped pairs (forward id -> backward id, duration): a pair's
        two ids, consecutive in their order, start together once both parts' dependencies
        have ended and end together after the pair's duration."""
        deps, dur = self.deps, self.dur
        self.timed += self.problem.num_tasks
        start = [0.0] * self.index.size
        end = [-1.0] * self.index.size
        pos = [0] * len(orders)
        clock = [0.0] * len(orders)
        waiters: dict[int, list[int]] = {}
        ready = list(range(len(orders)))
        while ready:
            d = ready.pop()
            order, k, now = orders[d], pos[d], clock[d]
            while k < len(order):
                tid = order[k]
                pair = pairs.get(tid)
                group = (tid,) if pair is None else (tid, pair[0])
                at, blocked = now, False
                for member in group:
                    for before, latency in deps[member]:
                        if end[before] < 0.0:
                            waiters.setdefault(before, []).append(d)
                            blocked = True
                            break
                        at = max(at, end[before] + latency)
                    if blocked:
                        break
                if blocked:
                    break
                now = at + (dur[tid] if pair is None else pair[1])
                for member in group:
                    start[member], end[member] = at, now
                    woken = waiters.pop(member, None)
                    if woken:
                        ready.extend(woken)
                k += len(group)
            pos[d], clock[d] = k, now
        if sum(pos) < sum(len(order) for order in orders):
            joined = list(deps)  # a pair's F waits for what its B waits for too
            for f, (b, _) in pairs.items():
                joined[f] = (*deps[f], *deps[b])
            raise DeadlockError(_describe_deadlock(self.index, orders, pos, end, joined))
        return start, end


def _copy_roles(problem: Problem, index: _Index) -> bytes:
    """Per task id, 0 for a compute task, 1 for an offload, 2 for a reload; empty bytes when
    the problem has no copies (the one-lane engine runs)."""
    if not any(kind in COPY_KINDS for kind in index.kinds):
        return b""
    role = {Kind.O: 1, Kind.L: 2}
    return bytes(role.get(kind, 0) for kind in index.kinds for _ in range(index.S * index.m))


def _checked_ids(problem: Problem, index: _Index, orders: Orders) -> list[list[int]]:
    """Integer orders, after checking every task appears once on its own device."""
    if len(orders) != problem.num_devices:
        raise OrderError(f"expected {problem.num_devices} device orders, got {len(orders)}")
    S, m, place = index.S, index.m, problem.placement
    kind_index = {kind: k for k, kind in enumerate(problem.kinds)}
    optional = {k for kind, k in kind_index.items() if kind == Kind.R or kind in COPY_KINDS}
    seen = bytearray(index.size)
    if problem.copies == 2:  # a micro-batch has tasks on its own copy's stages only
        optional = set(kind_index.values())
    id_orders = []
    for d, order in enumerate(orders):
        ids = []
        for kind, s, i in order:
            k = kind_index.get(kind)
            if (
                k is None
                or not (0 <= s < S and 0 <= i < m)
                or (k in optional and not problem.has_task(Task(kind, s, i)))
            ):
                if k is not None and 0 <= s < S and 0 <= i < m and problem.copies == 2:
                    raise OrderError(
                        f"{device_name(d)}: {Task(kind, s, i).label()} is not a task of this "
                        f"problem (micro-batch {i + 1} runs through model copy "
                        f"{problem.copy_of_microbatch(i) + 1}, stage {s + 1} is copy "
                        f"{problem.copy_of_stage(s) + 1}'s)"
                    )
                raise OrderError(f"{device_name(d)}: {(kind, s, i)} is not a task of this problem")
            if place[s] != d:
                raise OrderError(
                    f"{device_name(d)}: {Task(kind, s, i).label()} belongs on "
                    f"{device_name(place[s])}"
                )
            tid = (k * S + s) * m + i
            if seen[tid]:
                raise OrderError(f"{device_name(d)}: {Task(kind, s, i).label()} appears twice")
            seen[tid] = 1
            ids.append(tid)
        id_orders.append(ids)
    missing = problem.num_tasks - sum(seen)
    if missing:
        first = next(t for t in problem.tasks() if not seen[index.id(t)])
        raise OrderError(f"{missing} tasks are in no device order, e.g. {first.label()}")
    return id_orders


def _dependency_table(problem: Problem, index: _Index) -> Deps:
    """For each task id: its dependencies' ids with the latency of each edge."""
    S, m = index.S, index.m
    deps: Deps = [()] * index.size
    for (kind, s), edges in problem.edges.items():
        base = (index.kind_number[kind] * S + s) * m
        sources = [((index.kind_number[e.kind] * S + e.stage) * m, e.latency) for e in edges]
        for i in range(m):
            deps[base + i] = tuple((src + i, latency) for src, latency in sources)
    if problem.num_recomputed < S * m and Kind.R in index.kind_number:
        for tid, task in ((tid, index.task(tid)) for tid in range(index.size)):
            if task.kind == Kind.B and not problem.is_recomputed(task.stage, task.microbatch):
                deps[tid] = tuple(d for d in deps[tid] if index.task(d[0]).kind != Kind.R)
    if problem.num_offloaded < S * m and Kind.L in index.kind_number:
        for tid, task in ((tid, index.task(tid)) for tid in range(index.size)):
            if task.kind == Kind.B and not problem.is_offloaded(task.stage, task.microbatch):
                deps[tid] = tuple(d for d in deps[tid] if index.task(d[0]).kind != Kind.L)
    return deps


def _durations(problem: Problem, index: _Index) -> list[float]:
    """Duration of each task id."""
    out: list[float] = []
    scales = problem.microbatch_scale
    for kind in problem.kinds:
        for s in range(index.S):
            base = problem.duration(kind, s)
            if scales is None:
                out.extend([base] * index.m)
            else:
                out.extend([problem.duration(kind, s, i) for i in range(index.m)])
    return out


def _describe_deadlock(
    index: _Index, orders: list[list[int]], pos: list[int], end: list[float], deps: Deps
) -> str:
    """Name the cycle of devices whose next tasks wait on each other."""
    place = index.problem.placement

    def blocker(dev: int) -> int:
        """The first dependency of ``dev``'s next task that has not run."""
        return next(b for b, _ in deps[orders[dev][pos[dev]]] if end[b] < 0.0)

    stuck = {d for d, order in enumerate(orders) if pos[d] < len(order)}
    d = min(stuck)
    visited: list[int] = []
    while d not in visited:
        visited.append(d)
        d = place[index.task(blocker(d)).stage]
    cycle = visited[visited.index(d) :]
    links = []
    for dev in cycle:
        head, before = orders[dev][pos[dev]], blocker(dev)
        links.append(
            f"{device_name(dev)} waits at {index.task(head).label()} for "
            f"{index.task(before).label()} "
            f"({device_name(place[index.task(before).stage])})"
        )
    return f"deadlock: {len(stuck)} devices can never continue; " + "; ".join(links)
