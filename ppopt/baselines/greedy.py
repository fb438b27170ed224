"""A memory-aware greedy list scheduler for any problem (split or not, any chunks/placement).

An event-driven simulation: whenever a device is idle it picks one of its ready tasks
(dependency ended, latency included): a ``B`` first (it is on the critical path), then an
``F`` if memory allows, then a ``W`` (which frees memory or fills a gap). With nothing to
run it waits for the next event. The chosen per-device orders are then timed by the engine,
which can only start tasks earlier; a device's memory at an ``F``'s start depends on its own
order alone (every earlier task has ended), so the limit holds for the timed schedule too.

Deadlock freedom (banker's rule). Micro-batches are admitted (their stage-0 ``F`` started) in
index order. A state is *safe* when the admitted micro-batches could finish one after the
other, oldest first: on every device ``d``, for every active micro-batch ``j``,
``hard_d(>= j) + rem_d(j) <= limit_d``, where ``hard`` is activation held by ``F`` passes
whose ``B`` has not run (retained parts do not count: their ``W`` can always run) and
``rem_d(j)`` what ``j``'s forwards on ``d`` still need. Starting an ``F`` only into a safe
state keeps it safe, and the oldest micro-batch's forwards never break it, so the oldest one
always progresses: no deadlock once one micro-batch fits on every device.

With two model copies (``copies: 2``) each copy admits its own micro-batches in index order
at its first stage (copy 0 at stage 0 on device 0, copy 1 at stage ``p`` on device ``p-1``);
*older* is then admitted earlier, the banker's order, and a micro-batch's forwards need on
device ``d`` only its own copy's stage there. The argument above holds as it is (it needs only
that each micro-batch's tasks form one chain). Age for the priorities is the index within the
copy, so the two directions take turns.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ppopt.baselines.policy import PREFERENCES, Policy, deadlines
from ppopt.errors import NoScheduleError, UnknownScheduleError
from ppopt.limits import MEMORY_TOLERANCE, per_device, within
from ppopt.metrics import Objective
from ppopt.problem import Problem
from ppopt.schedule import Schedule
from ppopt.tasks import Kind, Task, device_name
from ppopt.timeline import compute_timeline

_Key = Callable[[Task], tuple[int, int]]


def greedy_orders(
    problem: Problem, limit: Sequence[float] | None = None, prefer: str = "fill"
) -> list[list[Task]]:
    """Per-device orders of the greedy list scheduler under a per-device memory ``limit``.

    ``limit`` is absolute, one value or one per device (``None``: unlimited). ``prefer``:

    * ``fill``: ``B``, then the oldest ``F`` memory allows, then ``W`` (frees memory, fills gaps);
    * ``eager``: ``B``, then ``W``, then ``F`` (each W right after its B when nothing waits);
    * ``fit``: as ``fill``, but an idle device starts no ``W`` that would delay an ``F`` or
      ``B`` already known to arrive (W passes are saved for later gaps);
    * ``staged`` / ``staged-fit``: as ``fill`` / ``fit`` with at most 1F1B's in-flight
      activations per device, the rest of the limit only for retained parts (ZB-H1's idea);
      ``staged-fit`` reproduces ZB-H1 on the paper's profile at 1x;
    * ``staged2`` / ``staged2-fit``: the same with ZB-H2's head, about twice the activations;
    * ``breadth``: as ``fill``, but among forwards the shallowest stage first (chunks);
    * ``deadline``: as ``fill``, but the stages after the bottleneck run forwards and
      backwards by earliest deadline, the time the bottleneck needs that micro-batch's
      backward (it waits for an imminent, more urgent arrival rather than block it).

    :class:`Policy` spells each variant out.

    Raises :class:`NoScheduleError` when some device cannot hold one micro-batch under
    ``limit``.
    """
    if prefer not in PREFERENCES:
        raise UnknownScheduleError(
            f"prefer: expected one of {', '.join(PREFERENCES)}, got {prefer!r}"
        )
    caps = _caps(problem, limit)
    return _Simulation(problem, caps, PREFERENCES[prefer]).run()


def applicable_preferences(problem: Problem) -> list[str]:
    """The variants that differ on this problem (``deadline`` needs one stage per device)."""
    return [prefer for prefer in PREFERENCES if prefer != "deadline" or problem.num_chunks == 1]


def greedy_schedules(problem: Problem, limit: Sequence[float] | None = None) -> dict[str, Schedule]:
    """Every applicable variant's schedule, timed by the engine, named ``greedy-<variant>``."""
    return {
        prefer: compute_timeline(problem, greedy_orders(problem, limit, prefer), f"greedy-{prefer}")
        for prefer in applicable_preferences(problem)
    }


def best_greedy(
    problem: Problem, limit: Sequence[float] | None = None, objective: str = "makespan"
) -> Schedule:
    """The variant with the smallest makespan (or largest per-device span), named ``greedy``."""
    schedules = greedy_schedules(problem, limit)
    return min(schedules.values(), key=lambda s: _objective(s, objective)).renamed("greedy")


def greedy_baseline_orders(problem: Problem) -> list[list[Task]]:
    """The registered ``greedy`` baseline: the best variant by makespan under the problem's
    own memory limit (:attr:`Problem.memory_caps`)."""
    return best_greedy(problem, problem.memory_caps).orders()


# ------------------------------------------------------------------------------- internals


def _objective(schedule: Schedule, objective: str) -> float:
    """Makespan, or the largest per-device span (first start to last end)."""
    if objective == Objective.SPAN:
        return max(row[-1].end - row[0].start for row in schedule.device_ops if row)
    return schedule.makespan


def _caps(problem: Problem, limit: Sequence[float] | None) -> tuple[float, ...] | None:
    """The limit per device with float slack, after checking one micro-batch fits."""
    if limit is None:
        return None
    values = per_device("memory.limit", limit, problem.num_devices)
    for d, cap in enumerate(values):
        need = problem.microbatch_memory(d)
        if not within(need, cap):
            raise NoScheduleError(
                f"memory.limit: {device_name(d)} needs {need:g} for one micro-batch, the limit is "
                f"{cap:g} (no schedule exists)"
            )
    return tuple(v * (1 + MEMORY_TOLERANCE) for v in values)


@dataclass
class _Device:
    """One device's simulation state."""

    free_at: float = 0.0
    level: float = 0.0  # memory held: activations plus retained parts awaiting their W
    # heaps of (ready time, seq, task): forwards and backwards apart from weight passes, so
    # the next F/B arrival is at hand for ``lookahead``
    arriving: list[tuple[float, int, Task]] = field(default_factory=list)
    arriving_w: list[tuple[float, int, Task]] = field(default_factory=list)
    # per kind, a heap of (priority key, task) of the ready tasks
    ready: dict[str, list[tuple[tuple[int, int], Task]]] = field(
        default_factory=lambda: {"F": [], "B": [], "W": []}
    )
    hard: dict[int, float] = field(default_factory=dict)  # per active micro-batch, see module
    rem: dict[int, float] = field(default_factory=dict)
    hard_total: float = 0.0
    rem_total: float = 0.0
    order: list[Task] = field(default_factory=list)


class _Simulation:
    """The event loop of :func:`greedy_orders`."""

    def __init__(self, problem: Problem, caps: tuple[float, ...] | None, policy: Policy) -> None:
        self.problem = problem
        self.caps = caps
        self.policy = policy
        p = problem.num_devices
        self.devices = [_Device() for _ in range(p)]
        #: per copy, per device: what one micro-batch's forwards take there
        self.need = [
            [
                sum(problem.activation[s] for s in problem.stages_on(d) if first <= s <= last)
                for d in range(p)
            ]
            for first, last in problem.copy_segments
        ]
        S = problem.num_stages
        self.in_flight = [0] * S  # per stage: micro-batches whose F ran and B has not
        k = policy.staged
        #: per stage, its position from its copy's end (S - s with one copy)
        depth = [last - s + 1 for a, last in problem.copy_segments for s in range(a, last + 1)]
        self.stage_caps = [k * depth[s] - (k - 1) for s in range(S)] if k else None
        self.active: list[int] = []  # admitted micro-batches with F or B work left, in order
        chain = [last - first + 1 for first, last in problem.copy_segments]
        self.left = [
            2 * chain[problem.copy_of_microbatch(i)] for i in range(problem.num_microbatches)
        ]
        self.events: list[tuple[float, int]] = []
        self.seq = 0
        firsts = [problem.microbatches_of(first).start for first, _ in problem.copy_segments]
        copy = [problem.copy_of_microbatch(i) for i in range(problem.num_microbatches)]
        age = [2 * (i - firsts[c]) + c for i, c in enumerate(copy)]  # the copies take turns
        pos = [problem.model_stage(s) for s in range(S)]
        oldest: _Key = lambda t: (age[t.microbatch], -pos[t.stage])  # noqa: E731
        self.keys: dict[str, _Key] = {
            "B": oldest,
            "F": (lambda t: (pos[t.stage], age[t.microbatch])) if policy.breadth else oldest,
            "W": lambda t: (age[t.microbatch], pos[t.stage]),
        }
        use = policy.deadline and problem.num_chunks == 1
        self.deadlines = deadlines(problem, caps) if use else {}

    def run(self) -> list[list[Task]]:
        """Simulate until every task has started; return the per-device orders."""
        for first, _ in self.problem.copy_segments:
            self._arrive(Task(Kind.F, first, self.problem.microbatches_of(first).start), 0.0)
        total = self.problem.num_tasks
        started = 0
        while self.events:
            now = self.events[0][0]
            woken = set()
            while self.events and self.events[0][0] == now:
                woken.add(heapq.heappop(self.events)[1])
            for d in sorted(woken):
                started += self._step(d, now)
        if started != total:  # cannot happen when one micro-batch fits (see module docstring)
            raise RuntimeError(f"greedy scheduler stuck after {started} of {total} tasks")
        return [device.order for device in self.devices]

    def _arrive(self, task: Task, when: float) -> None:
        """Make ``task`` ready on its device at time ``when`` and wake the device then."""
        d = self.problem.device_of(task.stage)
        device = self.devices[d]
        self.seq += 1
        queue = device.arriving_w if task.kind == Kind.W else device.arriving
        heapq.heappush(queue, (when, self.seq, task))
        heapq.heappush(self.events, (when, d))

    def _step(self, d: int, now: float) -> int:
        """If device ``d`` is idle at ``now``, start its preferred task; 1 if one started."""
        device = self.devices[d]
        if device.free_at > now:
            return 0
        for queue in (device.arriving, device.arriving_w):
            while queue and queue[0][0] <= now:
                arrived = heapq.heappop(queue)[2]
                heapq.heappush(
                    device.ready[arrived.kind], (self.keys[arrived.kind](arrived), arrived)
                )
        task = self._choose(d, device, now)
        if task is None:
            return 0
        self._start(d, device, task, now)
        return 1

    def _best(self, device: _Device, kind: str) -> Task | None:
        """The ready task of this kind that the priority key puts first."""
        tasks = device.ready[kind]
        return tasks[0][1] if tasks else None

    def _choose(self, d: int, device: _Device, now: float) -> Task | None:
        """The task to start at ``now``, or ``None`` to wait for the next event."""
        task = self._preferred(d, device, now)
        if task is None or task not in self.deadlines:
            return task  # weight passes and stages without deadlines keep the policy's rule
        return self._most_urgent(d, device, now, task)

    def _most_urgent(self, d: int, device: _Device, now: float, preferred: Task) -> Task | None:
        """The ready backward or startable forward with the earliest deadline (``preferred``
        if neither), or ``None`` (wait) when a more urgent task arrives before it would end
        and would then miss its deadline."""
        ready = [self._best(device, "B"), self._safe_forward(d, device)]
        due = self.deadlines
        startable = [
            t for t in ready if t is not None and (t.kind == Kind.B or self._fits(d, device, t))
        ]
        pick = min(startable, key=due.__getitem__) if startable else preferred
        ends = now + self.problem.duration(*pick)
        for when, _, task in device.arriving:
            if task in due and due[task] < due[pick] and when < ends and ends > due[task]:
                return None
        return pick

    def _preferred(self, d: int, device: _Device, now: float) -> Task | None:
        """The policy's choice without deadlines (``B``, then ``F`` or ``W``)."""
        b = self._best(device, "B")
        if b is not None:
            return b
        w = self._best(device, "W")
        if self.policy.w_first and w is not None:
            return w
        f = self._safe_forward(d, device)
        if f is not None and not self._fits(d, device, f) and w is not None:
            return w  # memory held by retained parts: running their W frees it
        if f is not None:
            return f  # a safe F fits up to float noise once no retained part is left
        if w is not None and self.policy.lookahead and not self._ends_in_time(device, w, now):
            return None
        return w

    def _ends_in_time(self, device: _Device, task: Task, now: float) -> bool:
        """Whether ``task`` ends before the next F or B already known to arrive here."""
        arrivals = device.arriving
        return not arrivals or now + self.problem.duration(*task) <= arrivals[0][0]

    def _fits(self, d: int, device: _Device, f: Task) -> bool:
        """Whether the forward's activation fits in the device's memory right now."""
        if self.caps is None:
            return True
        return device.level + self._activation(f.stage, f.microbatch) <= self.caps[d]

    def _safe_forward(self, d: int, device: _Device) -> Task | None:
        """The preferred ready forward whose start keeps the state safe (module docstring)."""
        heap = device.ready["F"]
        if not heap:
            return None
        first = heap[0][1]
        if self._within_stage_cap(first) and self._safe(d, device, first):
            return first  # the usual case: no need to order the rest
        for _, f in sorted(heap)[1:]:
            if self._within_stage_cap(f) and self._safe(d, device, f):
                return f
        return None

    def _within_stage_cap(self, f: Task) -> bool:
        """The ``staged`` in-flight cap; the oldest micro-batch is exempt so it always moves."""
        if self.stage_caps is None or not self.active or f.microbatch == self.active[0]:
            return True
        return self.in_flight[f.stage] < self.stage_caps[f.stage]

    def _safe(self, d: int, device: _Device, f: Task) -> bool:
        """Banker's check: every active micro-batch older than ``f``'s still fits on ``d``."""
        if self.caps is None:
            return True
        cap, amount = self.caps[d], self._activation(f.stage, f.microbatch)
        if device.hard_total + device.rem_total + amount <= cap:
            return True  # each condition is at most this sum
        suffix = device.hard_total
        for j in self.active:  # admission order; suffix = hard held by j and younger ones
            if j == f.microbatch:
                break
            if suffix + amount + device.rem.get(j, 0.0) > cap:
                return False
            suffix -= device.hard.get(j, 0.0)
        return True

    def _start(self, d: int, device: _Device, task: Task, now: float) -> None:
        """Start ``task`` on ``d`` at ``now``: book it, update memory, release successors."""
        problem = self.problem
        kind, s, i = task
        _take(device.ready[kind], task)
        device.order.append(task)
        end = now + problem.duration(kind, s, i)
        device.free_at = end
        heapq.heappush(self.events, (end, d))
        if kind == Kind.F:
            if not problem.edges[Kind.F, s]:  # a copy's first stage
                self._admit(i, s, now)
            self._allocate(device, s, i)
            self.in_flight[s] += 1
        elif kind == Kind.B:
            self.in_flight[s] -= 1
            self._release_backward(device, s, i)
        else:
            device.level -= problem.release("W", s) * problem.scale_of(i)
        if kind != Kind.W:
            self.left[i] -= 1
            if self.left[i] == 0:
                self._retire(i)
        for nxt, latency in self._successors(task):
            self._arrive(nxt, end + latency)

    def _admit(self, i: int, first: int, now: float) -> None:
        """Micro-batch ``i`` enters at its copy's first stage ``first``: reserve its
        forwards' needs, let the copy's next micro-batch queue up."""
        self.active.append(i)
        needs = self.need[self.problem.copy_of_microbatch(i)]
        for device, need in zip(self.devices, needs, strict=True):
            if need:
                need *= self.problem.scale_of(i)
                device.rem[i] = need
                device.rem_total += need
        if i + 1 in self.problem.microbatches_of(first):
            self._arrive(Task(Kind.F, first, i + 1), now)

    def _allocate(self, device: _Device, s: int, i: int) -> None:
        """A forward starts: its activation moves from ``rem`` to ``hard`` and the level."""
        amount = self._activation(s, i)
        device.level += amount
        device.hard[i] = device.hard.get(i, 0.0) + amount
        device.hard_total += amount
        device.rem[i] = device.rem.get(i, 0.0) - amount
        device.rem_total -= amount

    def _release_backward(self, device: _Device, s: int, i: int) -> None:
        """A backward runs (booked at its start: the device reads its state only when idle)."""
        amount = self._activation(s, i)
        device.level -= self.problem.release("B", s) * self.problem.scale_of(i)
        device.hard[i] = device.hard.get(i, 0.0) - amount
        device.hard_total -= amount

    def _activation(self, s: int, i: int) -> float:
        """Activation of micro-batch ``i`` on stage ``s`` (times its ``microbatch_scale``)."""
        return self.problem.activation[s] * self.problem.scale_of(i)

    def _retire(self, i: int) -> None:
        """Micro-batch ``i`` has run every F and B: it holds no hard memory any more."""
        self.active.remove(i)
        for device in self.devices:
            device.hard_total -= device.hard.pop(i, 0.0)
            device.rem_total -= device.rem.pop(i, 0.0)

    def _successors(self, task: Task) -> list[tuple[Task, float]]:
        """The tasks that wait on ``task``, with the latency of each wait (the problem's
        edges reversed; stage-0 forwards have none and are released by admission)."""
        kind, s, i = task
        return [(Task(e.kind, e.stage, i), e.latency) for e in self.problem.successors[kind, s]]


def _take(heap: list[tuple[tuple[int, int], Task]], task: Task) -> None:
    """Remove ``task`` from a ready heap (almost always its top)."""
    if heap[0][1] == task:
        heapq.heappop(heap)
        return
    heap.remove(next(item for item in heap if item[1] == task))
    heapq.heapify(heap)
