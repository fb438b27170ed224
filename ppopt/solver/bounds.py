"""Lower bounds that need no solver: what no schedule of the problem can beat.

For every device: the earliest its first task can start (the forward chain up to its first
stage), plus all of its work, plus the idle time it cannot avoid, plus what must still run
after its last task (the backward chain below it when the backward is not split). The largest
of these, and one micro-batch's whole critical path, bound the makespan; the same without the
chains before and after bounds the span. For the makespan, the one-machine bound of
:mod:`ppopt.solver.one_machine` (each task's own head and tail, Jackson's preemptive rule per
device) joins them.

Unavoidable idle on a device that holds one stage ``s`` (micro-batches in order per kind,
which loses nothing, see :mod:`ppopt.solver.model`):

* head: B(s,0) starts at least one round trip ``R_s`` (the forward and backward chains above
  ``s``, latencies included) after F(s,0) ends; until then only forwards can run, at most
  ``L`` of them where ``L`` activations fit under the limit.
* tail: B(s,m-1) starts at least ``R_s`` after F(s,m-1) ends; in between only the backwards
  and weight passes still pending can run, and memory bounds how many are pending when
  F(s,m-1) starts: ``(nb+1)a + nw r <= limit``.

The two windows are disjoint when ``m > L`` (F(s,L) must wait for B(s,0) to free memory);
otherwise only the larger one counts. A device with several stages gets the head argument
the same two windows with the work of several stages bounded by a fractional knapsack
(:func:`chunked_head_idle`, :func:`chunked_tail_idle`).
"""

from __future__ import annotations

from ppopt.metrics import Objective
from ppopt.offload import Offload
from ppopt.problem import Problem
from ppopt.recompute import Recompute
from ppopt.solver.one_machine import one_machine_bound
from ppopt.tasks import Kind, Task


def backward_tail(problem: Problem, stage: int) -> float:
    """Least time that must follow the end of B(stage, ·): the backward chain below it (to
    its copy's first stage, with two copies) and, split, that stage's W."""
    first = _copy_first(problem, stage)
    time = problem.backward_chain(stage)
    if problem.is_split and problem.weight is not None and stage > first:
        time += problem.weight[first]
    return time


def _copy_first(problem: Problem, stage: int) -> int:
    """The first virtual stage of the stage's model copy (0 with one copy)."""
    return problem.copy_segments[problem.copy_of_stage(stage)][0]


def critical_path(problem: Problem) -> float:
    """One micro-batch from its first forward to its last backward (and W of its first
    stage); with two copies, the longer copy's."""
    paths = []
    for first, last in problem.copy_segments:
        path = problem.forward_head(last) + problem.forward[last] + problem.backward[last]
        path += backward_tail(problem, last)
        if problem.weight is not None and last == first:
            path += problem.weight[first]
        paths.append(path)
    return max(paths)


def _in_flight_cap(problem: Problem, stage: int, limit: float | None) -> int:
    """How many micro-batches' activations of ``stage`` fit under the limit (at most m)."""
    m, act = problem.num_microbatches, problem.activation[stage]
    if limit is None or act <= 0:
        return m
    return max(1, min(m, int(limit / act + 1e-9)))


def _pending_work(problem: Problem, stage: int, limit: float | None) -> float:
    """Most backward and weight work that can be pending when F(stage, m-1) starts."""
    m, act, kept = problem.num_microbatches, problem.activation[stage], problem.retained[stage]
    b, w = problem.backward[stage], (problem.weight or (0.0,) * problem.num_stages)[stage]
    best = 0.0
    for nb in range(_in_flight_cap(problem, stage, limit)):
        room = m - 1 - nb
        if problem.is_split and limit is not None and kept > 0:
            room = min(room, int((limit - (nb + 1) * act) / kept + 1e-9))
        nw = max(0, room) if problem.is_split else 0
        best = max(best, nb * b + (nb + nw) * w)
    return best


def chunked_head_idle(problem: Problem, device: int, limit: float | None) -> float:
    """Head idle of a device with several stages (lowest ``lo``, highest ``hi``).

    F(lo,0) is the device's first task and B(hi,0) the first backward or weight pass it may
    run; between them only forwards run and nothing is freed, so the forwards' memory stays
    under the limit. Their work is bounded by a fractional knapsack (forward time per unit of
    memory, best first), and the window is at least F(lo,0) plus the trip from the end of
    F(lo,0) to the start of B(hi,0)."""
    stages = problem.stages_on(device)
    lo, hi = stages[0], stages[-1]
    last = problem.num_stages - 1
    window = problem.forward_head(last) + problem.forward[last] - problem.forward_head(lo)
    for s in range(last, hi, -1):
        window += problem.backward[s] + problem.latency(Task(Kind.B, s, 0), Task(Kind.B, s - 1, 0))
    forwards = [(problem.forward[s], problem.activation[s]) for s in stages]
    room = float("inf") if limit is None else limit
    return max(0.0, window - _knapsack(forwards, room, problem.num_microbatches))


def chunked_tail_idle(problem: Problem, device: int, limit: float | None) -> float:
    """Tail idle of a device with several stages (highest ``hi``).

    F(hi,m-1) is the device's last forward; B(hi,m-1) starts at least a round trip after it
    ends, and in between only backward and weight passes of earlier micro-batches run: those
    still pending when F(hi,m-1) starts. Each pending one holds memory then (a backward pass
    its stage's whole activation, a lone weight pass the retained part) beside micro-batch
    m-1's activations, so their work is bounded by a fractional knapsack under the limit."""
    stages = problem.stages_on(device)
    hi, m = stages[-1], problem.num_microbatches
    weight = problem.weight or (0.0,) * problem.num_stages
    room = float("inf") if limit is None else limit - sum(problem.activation[s] for s in stages)
    items = []  # (work, memory) of one pending pass, at most m-1 of each
    for s in stages:
        items.append((problem.backward[s] + weight[s], problem.activation[s]))
        if problem.is_split:
            items.append((weight[s], problem.retained[s]))
    return max(0.0, problem.round_trip(hi) - _knapsack(items, room, m - 1))


def _knapsack(items: list[tuple[float, float]], room: float, count: int) -> float:
    """Most work that fits in ``room`` memory with at most ``count`` of each (work, memory)
    item, fractions allowed: densest first, items that hold no memory in full."""

    def density(item: tuple[float, float]) -> float:
        work, memory = item
        return float("inf") if memory <= 0 else work / memory

    total = 0.0
    for work, memory in sorted(items, key=density, reverse=True):
        taken = float(count) if memory <= 0 else min(float(count), max(0.0, room) / memory)
        total += taken * work
        room -= taken * memory
    return total


def _forwards_fit(problem: Problem, device: int, limit: float | None) -> bool:
    """Whether every forward of the device fits in memory at once (then the head and tail
    windows can overlap: no backward need run before the last forward)."""
    if limit is None:
        return True
    held = sum(problem.activation[s] for s in problem.stages_on(device))
    return problem.num_microbatches * held <= limit * (1 + 1e-12)


def unavoidable_idle(problem: Problem, device: int, limit: float | None) -> float:
    """Idle time inside a device's span that no schedule avoids."""
    stages = problem.stages_on(device)
    if len(stages) != 1:
        head = chunked_head_idle(problem, device, limit)
        tail = chunked_tail_idle(problem, device, limit)
        return max(head, tail) if _forwards_fit(problem, device, limit) else head + tail
    s = stages[0]
    trip, f = problem.round_trip(s), problem.forward[s]
    cap = _in_flight_cap(problem, s, limit)
    head = max(0.0, f + trip - cap * f)
    tail = max(0.0, trip - _pending_work(problem, s, limit))
    if problem.num_microbatches > cap:
        return head + tail
    return max(head, tail)


def device_bound(problem: Problem, device: int, limit: float | None = None) -> float:
    """Head + work + unavoidable idle + tail of one device."""
    stages = problem.stages_on(device)
    head = min(problem.forward_head(s) for s in stages)
    tail = 0.0 if problem.is_split else min(backward_tail(problem, s) for s in stages)
    return head + device_span_bound(problem, device, limit) + tail


def device_span_bound(problem: Problem, device: int, limit: float | None = None) -> float:
    """Work + unavoidable idle of one device: a bound on its span."""
    return problem.device_work(device) + unavoidable_idle(problem, device, limit)


def makespan_lower_bound(
    problem: Problem, limit: tuple[float, ...] | None = None, one_machine: bool = True
) -> float:
    """A makespan no schedule can beat under the per-device memory limit: the closed forms
    above and the one-machine bound (:mod:`ppopt.solver.one_machine`), each valid alone
    (neither dominates: the closed forms' memory knapsack bounds the work that can wait in
    the cool-down, the one-machine bound counts each task's own head and tail). The closed
    forms are the one-machine bound's floor: its device cases stop early where they cannot
    beat them."""
    caps = limit or (None,) * problem.num_devices
    per_device = max(device_bound(problem, d, caps[d]) for d in range(problem.num_devices))
    closed = max(per_device, critical_path(problem))
    return max(closed, one_machine_bound(problem, limit, closed) if one_machine else 0.0)


def span_lower_bound(problem: Problem, limit: tuple[float, ...] | None = None) -> float:
    """A largest per-device span no schedule can beat under the memory limit."""
    caps = limit or (None,) * problem.num_devices
    return max(device_span_bound(problem, d, caps[d]) for d in range(problem.num_devices))


def lower_bound(
    problem: Problem,
    objective: str,
    limit: tuple[float, ...] | None = None,
    one_machine: bool = True,
) -> float:
    """The bound for the chosen objective (``makespan`` or ``span``). With recomputation the
    memory arguments do not hold (a recomputed micro-batch frees memory before its B, and R
    passes can fill the idle windows): the bound is that of the problem without R passes and
    without a limit, a relaxation. ``one_machine=False`` leaves out the one-machine bound
    (about 0.1 ms a task), for a first bound before the first schedule."""
    if problem.recompute != Recompute.NONE:
        problem, limit = problem.without_recompute(), None
    if problem.offload != Offload.NONE:  # an offloaded micro-batch frees memory before B too
        problem, limit = problem.without_offload(), None
    if problem.is_scaled:
        return scaled_lower_bound(problem, objective)
    if problem.copies == 2:
        return two_copy_lower_bound(problem, objective)
    if problem.overlap is not None:
        return overlap_lower_bound(problem, objective)
    if objective == Objective.SPAN:
        return span_lower_bound(problem, limit)
    return makespan_lower_bound(problem, limit, one_machine)


def scaled_lower_bound(problem: Problem, objective: str) -> float:
    """The bound of a problem with scaled micro-batches (:mod:`ppopt.microbatches`), weaker
    but valid whatever the micro-batch order. Each device runs all of its work (the scaled
    sums). Its first task is some micro-batch's first forward there, which waits for that
    micro-batch's forward chain, at least the chain of the *shortest* micro-batch; likewise
    the unsplit backward chain after its last task. One micro-batch's critical path is a
    bound, the *longest* one's the largest. The idle arguments of the uniform bound count
    identical micro-batches in order and are left out (a memory limit is not used)."""
    scales = problem.microbatch_scale or (1.0,)
    shortest = problem.scaled_uniform(min(scales))
    per_device = []
    for d in range(problem.num_devices):
        work = problem.device_work(d)
        if objective == Objective.SPAN:
            per_device.append(work)
            continue
        stages = problem.stages_on(d)
        head = min(shortest.forward_head(s) for s in stages)
        tail = 0.0 if problem.is_split else min(backward_tail(shortest, s) for s in stages)
        per_device.append(head + work + tail)
    if objective == Objective.SPAN:
        return max(per_device)
    return max(*per_device, critical_path(problem.scaled_uniform(max(scales))))


def pair_saving_cap(problem: Problem, device: int) -> float:
    """Most time overlapped pairs can save on a device: ``m * sum(saving_s) - min(saving_s)``
    over its stages. A pair saves at most the smaller of its parts' stage savings (the pair
    rule of :meth:`~ppopt.problem.Problem.pair_duration`), so at most the mean of the two;
    each forward and each backward is in one pair at most, so the pairs' forward savings sum
    to at most ``m * sum(saving_s)``, and so do their backward savings. The device's first
    forward runs alone (a pair's B waits for its own F on this device) and so does the B of
    its last forward (no F follows it), so each sum loses at least the smallest saving.
    With two copies a stage runs its copy's ``m/2`` micro-batches: ``m/2`` in place of ``m``
    (the device's first task is still a lone forward and its last a lone backward)."""
    stages = problem.stages_on(device)
    savings = [problem.overlap_saving(s) for s in stages]
    counts = [len(problem.microbatches_of(s)) for s in stages]  # m, or m/2 with two copies
    return sum(n * x for n, x in zip(counts, savings, strict=True)) - min(savings)


def overlap_lower_bound(problem: Problem, objective: str) -> float:
    """The bound when F and B may run as overlapped pairs: the idle-time arguments assume one
    task at a time, so only the work less the most the pairs can save counts (plus, for the
    makespan, the forward chain before the device and the critical path: a task of a pair
    still lasts at least its own duration from its start to its end)."""
    spans = [
        problem.device_work(d) - pair_saving_cap(problem, d) for d in range(problem.num_devices)
    ]
    if objective == Objective.SPAN:
        return max(spans)
    heads = [min(problem.forward_head(s) for s in problem.stages_on(d)) for d in range(len(spans))]
    return max(critical_path(problem), *(h + w for h, w in zip(heads, spans, strict=True)))


def two_copy_lower_bound(problem: Problem, objective: str) -> float:
    """The bound of a two-copy problem (``copies: 2``): every device runs all of its work
    (less the most overlapped pairs can save, :func:`pair_saving_cap`), its first task is a
    forward of one of its two stages (a backward there waits for its own forward on the
    device), so it starts no earlier than the shorter of their forward chains, and, with an
    unsplit backward, its last task is a backward, followed by that stage's backward chain
    down its copy. With the critical path of either copy that bounds the makespan; the work
    alone bounds the span. The idle-time arguments of one chain (which stage's backward
    comes first) do not carry over and are left out; the memory limit is not used (the pair
    cap's windows, :func:`two_copy_pair_saving_cap`, need none)."""
    spans = []
    for d in range(problem.num_devices):
        saving = two_copy_pair_saving_cap(problem, d) if problem.overlap is not None else 0.0
        spans.append(problem.device_work(d) - saving)
    if objective == Objective.SPAN:
        return max(spans)
    ends = []
    for d, work in enumerate(spans):
        stages = problem.stages_on(d)
        head = min(problem.forward_head(s) for s in stages)
        tail = 0.0 if problem.is_split else min(backward_tail(problem, s) for s in stages)
        ends.append(head + work + tail)
    return max(critical_path(problem), *ends)


def two_copy_pair_saving_cap(problem: Problem, device: int) -> float:
    """Most time pairs can save on a device of a two-copy problem: the forwards' savings
    ``sum_s (m/2) saving_s`` (a pair saves at most its forward's stage saving, and as much
    counting by backwards) less what the device's two windows of lone tasks cost.

    Head: from the device's first start to its first backward, at least
    ``min_s (F_s + R_s)`` (that backward's own forward runs on the device first, then the
    round trip ``R_s`` above it), only forwards run, each alone (its partner would be an
    earlier backward), or the device idles. A lone forward of stage ``s`` gives up
    ``saving_s >= rho F_s`` (``rho = min_s saving_s / F_s <= 1``), idle costs itself: the
    window costs at least ``rho min_s (F_s + R_s)`` of the forwards' savings, and never less
    than the first forward's own. Tail, unsplit only: after the device's last forward ends,
    at least ``min_s (R_s + B_s)`` of lone backwards or idle, costing the backwards' side
    ``rho_B min_s (R_s + B_s)`` the same way (a split problem's W passes could fill it)."""
    stages = problem.stages_on(device)
    savings = [problem.overlap_saving(s) for s in stages]
    total = sum(len(problem.microbatches_of(s)) * x for s, x in zip(stages, savings, strict=True))
    rho_f = min(x / problem.forward[s] for s, x in zip(stages, savings, strict=True))
    head = min(problem.forward[s] + problem.round_trip(s) for s in stages)
    lost = max(min(savings), rho_f * head)
    if not problem.is_split:
        rho_b = min(x / problem.backward[s] for s, x in zip(stages, savings, strict=True))
        tail = min(problem.round_trip(s) + problem.backward[s] for s in stages)
        lost = max(lost, rho_b * tail)
    return max(0.0, total - lost)
