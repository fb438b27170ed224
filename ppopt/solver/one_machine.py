"""The one-machine bound: each device alone, its tasks' heads and tails from the chains.

Every task ``t`` gets a *head* ``r_t`` (no schedule starts it earlier) and a *tail* ``q_t``
(no schedule ends the step less than ``q_t`` after ``t`` ends): longest paths in a graph of
rules every schedule keeps, with the other devices' capacity left out. One device's tasks
with those heads and tails form the problem ``1 | r_j, pmtn | max C_j + q_j``, whose optimum
is a lower bound on the makespan; with preemption it is solved exactly by Jackson's rule (at
every moment run the released task of largest tail), in ``O(n log n)``. It counts the
idle a device cannot avoid wherever it comes from (warm-up, cool-down, memory), which is
what the closed forms of :mod:`ppopt.solver.bounds` miss where warm-up and cool-down
overlap (m close to p).

The graph (all rules of one micro-batch's tasks plus three rules between micro-batches):

* the dependencies of :attr:`Problem.edges`, with their latencies;
* micro-batches in order per (kind, stage): among identical micro-batches some optimal
  schedule has them (the order-statistics argument of :mod:`ppopt.solver.model`), so heads
  and tails in that order bound *every* schedule's best makespan;
* memory loops: F(s, j) cannot start before B(s, j-L) ends, where ``L`` micro-batches fit in
  memory. When F(s, j) starts, every earlier micro-batch whose B(s, ·) has not ended holds,
  on this device, the whole activation of ``s`` and of each earlier stage the device holds
  (their backwards come after B(s, ·)), ``A_s`` in all, and so does micro-batch j: at most
  ``L = floor(limit / A_s)`` of them, and with backwards in order those not ended are the
  last ones. Likewise, with a split backward, every earlier micro-batch whose W(s, ·) has not
  ended holds at least the retained part ``kept_s``: at most ``K = floor((limit - A_s) /
  kept_s)`` of them beside micro-batch j's ``A_s``, so F(s, j) waits for W(s, j-K-1).

Three refinements, each valid alone:

* the lift: a task cannot start before its device has run all of its ancestors on that
  device (each no earlier than its own head), so the head is at least the one-machine
  makespan of that set; tails likewise with descendants. It carries one device's congestion
  to the heads of the others (measured: p=32 m=64 full backward, 307.28 to 309.05).
* the cool-down cases of a device holding one stage: how many of its backwards are still
  pending when its last forward starts; each case fixes a B and a W that must have ended
  by then (memory), the device's bound is the least over the cases (:func:`cool_down_cases`).
* the warm-up cases of a device holding several stages (``hi`` the last, a V or interleaved
  placement): how many forwards F(hi, ·) have started when B(hi, 0), the device's first task
  that frees memory, starts (:func:`warm_up_cases`). The forwards started by then all hold
  their activation, so in case ``c`` memory caps those of each other stage at ``k_s``; then
  F(hi, c) and F(s, k_s) start after B(hi, 0) ends, B(hi, 0) starts after the device has run
  every F(s, i < c), and the raises travel along the order and within micro-batches on the
  device (:func:`warm_up_jobs`). The device's bound is the least over the cases. The heads
  alone let Jackson's rule fill the whole warm-up with forwards (the memory loops bound each
  stage's count apart); the cases share one budget between the stages, as the closed form's
  knapsack does, and add the heads and tails (measured: p=32 m=64 full backward V, 1x
  memory, 528.50 closed form and 502.92 one-machine, to 530.38).

Only for problems whose micro-batches are identical and whose passes are F, B (and W), one
at a time per device: :func:`applies` says which.
"""

from __future__ import annotations

import bisect
import heapq
import math
from collections.abc import Sequence

import numpy as np

from ppopt.limits import MEMORY_TOLERANCE
from ppopt.offload import Offload
from ppopt.problem import Problem, StageKind
from ppopt.recompute import Recompute
from ppopt.tasks import Kind

#: Per (kind, stage), per micro-batch: a head or a tail.
Times = dict[StageKind, list[float]]


def applies(problem: Problem) -> bool:
    """Whether the bound holds: identical micro-batches (the order argument), no R, O or L
    tasks (they change what holds memory), no overlapped pairs (two tasks at a time), one
    model copy (with two, a device's stages see disjoint micro-batches: a memory loop that
    adds up the device's stages for one micro-batch does not hold)."""
    return (
        problem.copies == 1
        and not problem.is_scaled
        and problem.recompute == Recompute.NONE
        and problem.offload == Offload.NONE
        and problem.overlap is None
    )


def memory_loops(
    problem: Problem, limit: Sequence[float] | None
) -> dict[StageKind, list[tuple[Kind, int]]]:
    """Per forward (F, s): the (kind, lag) of each memory loop, F(s, j) after the end of
    ``kind``(s, j - lag) (see the module docstring); none without a limit."""
    loops: dict[StageKind, list[tuple[Kind, int]]] = {}
    if limit is None:
        return loops
    for d in range(problem.num_devices):
        room = limit[d] * (1 + 2 * MEMORY_TOLERANCE)  # what the validator lets through, and more
        held = 0.0
        for s in problem.stages_on(d):
            held += problem.activation[s]
            rules = []
            if held > 0:
                rules.append((Kind.B, max(1, math.floor(room / held))))
            kept = problem.retained[s]
            if problem.is_split and kept > 0 and room >= held:
                rules.append((Kind.W, math.floor((room - held) / kept) + 1))
            loops[Kind.F, s] = rules
    return loops


def _stage_kind_order(problem: Problem) -> list[StageKind]:
    """The (kind, stage) pairs with every dependency before its dependents (Kahn's rule)."""
    waiting = {key: len(edges) for key, edges in problem.edges.items()}
    order = [key for key, count in waiting.items() if count == 0]
    for key in order:  # grows while it is read
        for e in problem.successors[key]:
            waiting[e.kind, e.stage] -= 1
            if waiting[e.kind, e.stage] == 0:
                order.append((e.kind, e.stage))
    return order


def heads(problem: Problem, limit: Sequence[float] | None, lift: bool = True) -> Times:
    """Per task, the longest path to its start: dependencies, order, memory loops; with
    ``lift``, at least the time its device needs for the task's ancestors on it
    (:func:`_longest`)."""
    order = _stage_kind_order(problem)
    loops = memory_loops(problem, limit)
    chain = {key: [((e.kind, e.stage), e.latency) for e in problem.edges[key]] for key in order}
    return _longest(problem, order, chain, loops, lift)


def tails(problem: Problem, limit: Sequence[float] | None, lift: bool = True) -> Times:
    """Per task, the longest path from its end to the end of the step (the same graph
    reversed, micro-batches counted from the last)."""
    order = _stage_kind_order(problem)[::-1]
    waiting: dict[StageKind, list[tuple[Kind, int]]] = {}
    for (_, s), rules in memory_loops(problem, limit).items():
        for freer, lag in rules:
            waiting.setdefault((freer, s), []).append((Kind.F, lag))
    chain = {
        key: [((e.kind, e.stage), e.latency) for e in problem.successors[key]] for key in order
    }
    reversed_tails = _longest(problem, order, chain, waiting, lift)
    return {key: values[::-1] for key, values in reversed_tails.items()}


#: Above this many tasks the ancestors are not tracked (no lift): it costs about 0.13 ms a
#: task (measured 0.8 s at 6,144 tasks, 3.2 s at 24,576 on the shared 2-core machine), and
#: the bound is computed twice per solve (float and integer units).
LIFT_TASKS = 12_288


def _longest(
    problem: Problem,
    order: list[StageKind],
    chain: dict[StageKind, list[tuple[StageKind, float]]],
    loops: dict[StageKind, list[tuple[Kind, int]]],
    lift: bool,
) -> Times:
    """Longest paths to every task's start in a graph of positions: task (key, i) waits for
    (key, i-1) (order), for each ``chain`` entry (other key, latency) at i, and for each loop
    (kind, lag) for (kind, same stage) at i - lag. ``order`` lists the keys topologically.

    With ``lift``, a task also waits until its device has run all of the task's ancestors
    on it: the tasks of each (kind, stage) among its ancestors are a prefix (the order
    rule), so their counts propagate as a vector per task, and the device needs at least
    ``t + (work of those ancestors released at or after t)`` for every ``t`` (one machine,
    every release ``t`` tried: the optimum of ``1 | r_j | C_max``)."""
    m, keys = problem.num_microbatches, len(order)
    pos = {key: k for k, key in enumerate(order)}
    dur = [problem.duration(*key) for key in order]
    value = [[0.0] * m for _ in order]
    lift = lift and problem.num_tasks <= LIFT_TASKS
    counts = np.zeros((m, keys, keys), dtype=np.int64) if lift else None
    own = [
        [pos[k] for k in order if problem.device_of(k[1]) == problem.device_of(key[1])]
        for key in order
    ]
    edges = [
        [(pos[dep], 0, lat) for dep, lat in chain[key]]
        + [(pos[kind, key[1]], lag, 0.0) for kind, lag in loops.get(key, ())]
        for key in order
    ]
    for i in range(m):
        for k in range(keys):
            waits = [(k, 1, 0.0), *edges[k]] if i else edges[k]
            best = 0.0
            for j, lag, lat in waits:
                if i >= lag:
                    best = max(best, value[j][i - lag] + dur[j] + lat)
            if counts is not None:
                row = counts[i, k]
                for j, lag, _ in waits:
                    if i >= lag:
                        np.maximum(row, counts[i - lag, j], out=row)
                        row[j] = max(row[j], i - lag + 1)
                mine = own[k]
                best = max(best, _device_release(value, dur, mine, row[mine].tolist()))
            value[k][i] = best
    return {key: value[k] for k, key in enumerate(order)}


def _device_release(
    value: list[list[float]], dur: list[float], keys: list[int], counts: list[int]
) -> float:
    """A time before which one device cannot have run the first ``counts[c]`` tasks of each
    of its ``keys`` (each no earlier than its value in ``value``, increasing in the index):
    for a release ``t``, ``t`` plus the work released at or after ``t``; the releases tried
    are each key's first and last (any ``t`` gives a bound; all of them, the optimum of
    ``1 | r_j | C_max`` that :func:`_release_time` computes for a short list of jobs, cost a
    sort per task)."""
    present = [(c, n) for c, n in zip(keys, counts, strict=True) if n > 0]
    best = 0.0
    for c, n in present:
        for t in (value[c][0], value[c][n - 1]):
            later = sum(dur[e] * (k - bisect.bisect_left(value[e], t, 0, k)) for e, k in present)
            best = max(best, t + later)
    return best


def jackson_bound(jobs: Sequence[tuple[float, float, float]]) -> float:
    """The optimum of ``1 | r_j, pmtn | max C_j + q_j`` for ``(r, p, q)`` jobs: Jackson's
    preemptive schedule (always run the released job of largest tail), which is optimal."""
    pending = sorted(jobs)
    ready: list[list[float]] = []  # [-q, remaining p] of released jobs
    now, best, k = -math.inf, 0.0, 0
    while k < len(pending) or ready:
        if not ready:
            now = max(now, pending[k][0])
        while k < len(pending) and pending[k][0] <= now:
            r, p, q = pending[k]
            heapq.heappush(ready, [-q, p])
            k += 1
        job = ready[0]
        upcoming = pending[k][0] if k < len(pending) else math.inf
        if now + job[1] <= upcoming:
            heapq.heappop(ready)
            now += job[1]
            best = max(best, now - job[0])
        else:  # a job is released first: it may preempt this one
            job[1] -= upcoming - now
            now = upcoming
    return best


def device_jobs(
    problem: Problem, device: int, head: Times, tail: Times
) -> list[tuple[float, float, float]]:
    """The ``(r, p, q)`` of every task of one device."""
    jobs = []
    for s in problem.stages_on(device):
        for kind in problem.pass_kinds:
            p = problem.duration(kind, s)
            jobs += [(r, p, q) for r, q in zip(head[kind, s], tail[kind, s], strict=True)]
    return jobs


def one_machine_bound(
    problem: Problem, limit: Sequence[float] | None = None, floor: float = 0.0
) -> float:
    """The largest one-machine bound over the devices (0 where it does not apply), each
    device's strengthened by the cool-down cases of a one-stage device
    (:func:`cool_down_bound`) and the warm-up cases of a device with several stages
    (:func:`warm_up_bound`). ``floor`` is a bound already known (the closed forms): a device
    whose cases cannot beat it is not split further, and the result is never below it."""
    if not applies(problem):
        return 0.0
    head, tail = heads(problem, limit), tails(problem, limit)
    jobs = [device_jobs(problem, d, head, tail) for d in range(problem.num_devices)]
    best = max(floor, *(jackson_bound(row) for row in jobs))
    for d in range(problem.num_devices):
        room = math.inf if limit is None else limit[d]
        if limit is not None:
            best = max(best, cool_down_bound(problem, d, room, head, tail, best))
        best = max(best, warm_up_bound(problem, d, room, head, tail, best))
    return best


def cool_down_cases(problem: Problem, stage: int, room: float) -> list[tuple[int, int]]:
    """Per case ``nb`` (how many backwards of stage ``s`` are still pending, not ended, when
    its last forward F(s, m-1) starts), the last B(s, ·) and the last W(s, ·) that must have
    ended by then (-1: none). Backwards end in order, so the pending ones are B(s, m-1-nb ..
    m-2) and B(s, m-2-nb) has ended; each holds the activation ``a`` beside F(s, m-1)'s, so
    ``nb < L``. Each earlier micro-batch whose B ended and W did not holds ``kept``: at most
    ``K = floor((limit - (nb+1) a) / kept)`` of them, the last ones (W in order), so
    W(s, m-2-nb-K) has ended too. One stage on the device."""
    m, act, kept = problem.num_microbatches, problem.activation[stage], problem.retained[stage]
    room *= 1 + 2 * MEMORY_TOLERANCE
    fit = m if act <= 0 else max(1, math.floor(room / act))
    cases = []
    for nb in range(min(fit, m)):
        last_w = -1
        if problem.is_split and kept > 0:
            last_w = m - 2 - nb - math.floor((room - (nb + 1) * act) / kept)
        cases.append((m - 2 - nb, last_w))
    return cases


def cool_down_bound(
    problem: Problem, device: int, room: float, head: Times, tail: Times, floor: float
) -> float:
    """The one-machine bound of a device holding one stage, split into the cases of
    :func:`cool_down_cases`: in each, F(s, m-1) waits for the B and W that must have ended
    (its head and B(s, m-1)'s rise), and those and the ones before them in order carry
    F(s, m-1)'s tail (its duration and tail beyond theirs). The device's bound is the least
    over the cases; ``floor`` when the device cannot beat it (0 with several stages)."""
    stages = problem.stages_on(device)
    if len(stages) != 1:
        return 0.0
    s, m = stages[0], problem.num_microbatches
    best = math.inf
    for last_b, last_w in cool_down_cases(problem, s, room):
        value = jackson_bound(_case_jobs(problem, s, head, tail, last_b, last_w))
        best = min(best, value)
        if best <= floor:
            return floor  # the least over the cases cannot beat the bound already known
    return best if m > 1 else floor


def _case_jobs(
    problem: Problem, s: int, head: Times, tail: Times, last_b: int, last_w: int
) -> list[tuple[float, float, float]]:
    """The ``(r, p, q)`` jobs of stage ``s``'s device in one cool-down case."""
    m = problem.num_microbatches
    f, b = problem.duration(Kind.F, s), problem.duration(Kind.B, s)
    w = problem.duration(Kind.W, s) if problem.is_split else 0.0
    r = {kind: list(head[kind, s]) for kind in problem.pass_kinds}
    q = {kind: list(tail[kind, s]) for kind in problem.pass_kinds}
    last = m - 1
    after = f + q[Kind.F][last]  # what follows the end of a task F(s, m-1) waits for
    if last_b >= 0:
        r[Kind.F][last] = max(r[Kind.F][last], r[Kind.B][last_b] + b)
        for i in range(last_b, -1, -1):
            q[Kind.B][i] = max(q[Kind.B][i], after + (last_b - i) * b)
    if last_w >= 0:
        r[Kind.F][last] = max(r[Kind.F][last], r[Kind.W][last_w] + w)
        for i in range(last_w, -1, -1):
            q[Kind.W][i] = max(q[Kind.W][i], after + (last_w - i) * w)
            q[Kind.B][i] = max(q[Kind.B][i], w + q[Kind.W][i])
    r[Kind.B][last] = max(r[Kind.B][last], r[Kind.F][last] + f + problem.round_trip(s))
    if problem.is_split:
        r[Kind.W][last] = max(r[Kind.W][last], r[Kind.B][last] + b)
    durations = {kind: problem.duration(kind, s) for kind in problem.pass_kinds}
    return [
        (r[kind][i], durations[kind], q[kind][i]) for kind in problem.pass_kinds for i in range(m)
    ]


def warm_up_cases(problem: Problem, device: int, room: float) -> list[tuple[int, dict[int, int]]]:
    """The warm-up cases of a device with several stages (``hi`` the last): per case ``c``
    (how many F(hi, ·) have started when B(hi, 0) starts), for each other stage ``s`` of the
    device the first micro-batch ``k_s`` whose F(s, ·) cannot have started by then (``m``:
    any may have). B(hi, 0) is the first task of the device that frees memory (every B of the
    device waits for B(hi, ·) of its micro-batch, every W for its B), and no task starts while
    it runs, so every forward started before it holds its activation when it starts: ``c``
    of hi, at least ``c`` of every stage below it (F(s, j) comes before F(hi, j)), ``n_s`` of
    ``s``, all within the limit. Hence ``k_s = floor((limit - c sum_{t != s} a_t) / a_s)``;
    ``c`` runs from 1 (F(hi, 0) comes before B(hi, 0)) while ``c`` of every stage fit."""
    stages, m, act = problem.stages_on(device), problem.num_microbatches, problem.activation
    room *= 1 + 2 * MEMORY_TOLERANCE
    total = sum(act[s] for s in stages)
    cases = []
    for c in range(1, m + 1):
        if c * total > room:
            break
        caps = {}
        for s in stages[:-1]:
            fit = m if act[s] <= 0 else (room - c * (total - act[s])) / act[s]
            caps[s] = m if fit >= m else math.floor(fit)
        cases.append((c, caps))
    return cases


def warm_up_bound(
    problem: Problem, device: int, room: float, head: Times, tail: Times, floor: float
) -> float:
    """The one-machine bound of a device with several stages, split into the cases of
    :func:`warm_up_cases` (:func:`warm_up_jobs` raises each case's heads and tails); the least
    over the cases, or ``floor`` when the device cannot beat it (and with one stage)."""
    stages = problem.stages_on(device)
    if len(stages) < 2 or problem.num_microbatches < 2:
        return floor
    cases = warm_up_cases(problem, device, room)
    middle = len(cases) // 2  # the least case lies inside: try from the middle outwards
    order = sorted(range(len(cases)), key=lambda k: (abs(k - middle), k))
    keys = [key for key in _stage_kind_order(problem) if problem.device_of(key[1]) == device]
    between = _chain_distances(problem, keys)
    best = math.inf
    for k in order:
        c, caps = cases[k]
        jobs = warm_up_jobs(problem, device, keys, between, head, tail, c, caps)
        best = min(best, jackson_bound(jobs))
        if best <= floor * (1 + 1e-12) + 1e-12:  # a tie up to rounding cannot beat it either
            return floor
    return best


def warm_up_jobs(
    problem: Problem,
    device: int,
    keys: list[StageKind],
    between: dict[tuple[StageKind, StageKind], float],
    head: Times,
    tail: Times,
    c: int,
    caps: dict[int, int],
) -> list[tuple[float, float, float]]:
    """The ``(r, p, q)`` jobs of one device in warm-up case ``(c, caps)``
    (:func:`warm_up_cases`), ``keys`` its (kind, stage) pairs in dependency order and
    ``between`` their distances within a micro-batch (:func:`_chain_distances`). Every
    F(s, i), i < c, has run before B(hi, 0) starts: B(hi, 0) starts no earlier than the
    device can run all of them (:func:`_release_time`), and each has B(hi, 0)'s duration and
    tail after its end. F(hi, c) and F(s, k_s) start after B(hi, 0) starts, so after it
    ends. The raises travel along the order and within micro-batches (:func:`_propagate`)."""
    m, stages = problem.num_microbatches, problem.stages_on(device)
    hi = stages[-1]
    r = {key: np.array(head[key], dtype=float) for key in keys}
    q = {key: np.array(tail[key], dtype=float) for key in keys}
    dur = {key: problem.duration(*key) for key in keys}
    first_b = (Kind.B, hi)
    before = [float(r[Kind.F, s][i]) for s in stages for i in range(c)]
    durations = [dur[Kind.F, s] for s in stages for _ in range(c)]
    r[first_b][0] = max(r[first_b][0], _release_time(before, durations))
    for s in stages:
        np.maximum(q[Kind.F, s][:c], dur[first_b] + q[first_b][0], out=q[Kind.F, s][:c])
    _propagate(keys, between, dur, r, q)
    after = r[first_b][0] + dur[first_b]
    for s, first in [(hi, c), *caps.items()]:
        if first < m:
            r[Kind.F, s][first] = max(r[Kind.F, s][first], after)
    _propagate(keys, between, dur, r, q)
    return [
        (a, dur[key], b)
        for key in keys
        for a, b in zip(r[key].tolist(), q[key].tolist(), strict=True)
    ]


def _release_time(releases: list[float], durations: list[float]) -> float:
    """The earliest one machine can end all of these jobs (each no earlier than its release):
    released in order, each as early as it can (optimal for ``1 | r_j | C_max``)."""
    now = -math.inf
    for r, p in sorted(zip(releases, durations, strict=True)):
        now = max(now, r) + p
    return now


def _chain_distances(
    problem: Problem, keys: list[StageKind]
) -> dict[tuple[StageKind, StageKind], float]:
    """Per pair of ``keys`` (a, b) where b waits for a within one micro-batch: the longest
    path from the start of a's task to the start of b's (durations and latencies of the
    dependency graph), the least time between the two starts in every schedule."""
    order = _stage_kind_order(problem)
    out = {}
    for source in keys:
        reach = {source: 0.0}
        for key in order:
            for e in problem.edges[key]:
                dep = (e.kind, e.stage)
                if dep in reach:
                    value = reach[dep] + problem.duration(*dep) + e.latency
                    reach[key] = max(reach.get(key, -math.inf), value)
        for target in keys:
            if target != source and target in reach:
                out[source, target] = reach[target]
    return out


def _propagate(
    keys: list[StageKind],
    between: dict[tuple[StageKind, StageKind], float],
    dur: dict[StageKind, float],
    r: dict[StageKind, np.ndarray],
    q: dict[StageKind, np.ndarray],
) -> None:
    """Raise one device's heads ``r`` and tails ``q`` (per key, per micro-batch) in place by
    the rules among its own tasks: the order (task (key, i) starts after (key, i-1) ends, on
    the same device) and the distances within a micro-batch (``between``,
    :func:`_chain_distances`). ``keys`` are in dependency order and the distances only lead
    forwards in it, so one pass per direction closes both rules: each key takes its
    predecessors' final values, then runs the order as a running maximum."""
    m = len(r[keys[0]])
    index = np.arange(m, dtype=float)
    for b in keys:
        for a in keys:
            if (a, b) in between:
                np.maximum(r[b], r[a] + between[a, b], out=r[b])
        steps = index * dur[b]  # r_i >= r_k + (i - k) dur for every k <= i
        r[b] = np.maximum.accumulate(r[b] - steps) + steps
    for a in reversed(keys):
        for b in keys:
            if (a, b) in between:
                np.maximum(q[a], between[a, b] - dur[a] + dur[b] + q[b], out=q[a])
        steps = (m - 1 - index) * dur[a]  # q_i >= q_k + (k - i) dur for every k >= i
        q[a] = (np.maximum.accumulate((q[a] - steps)[::-1]) + steps[::-1])[::-1]
