"""Lower bounds that need no solver: what no schedule of the problem can beat.

For every device: the earliest its first task can start (the forward chain up to its first
stage), plus all of its work, plus what must still run after its last task (the backward
chain from its stage down to stage 0 when the backward is not split). The largest of these,
and one micro-batch's whole critical path, bound the makespan; each device's work bounds
the span.
"""

from __future__ import annotations

from ppopt.problem import Problem, Task


def forward_head(problem: Problem, stage: int) -> float:
    """Earliest start of F(stage, ·): the forward chain before it, latencies included."""
    time = 0.0
    for s in range(stage):
        time += problem.forward[s] + problem.latency(Task("F", s, 0), Task("F", s + 1, 0))
    return time


def backward_tail(problem: Problem, stage: int) -> float:
    """Least time that must follow the end of B(stage, ·): the backward chain below it."""
    time = 0.0
    for s in range(stage, 0, -1):
        time += problem.latency(Task("B", s, 0), Task("B", s - 1, 0)) + problem.backward[s - 1]
    if problem.is_split and problem.weight is not None and stage > 0:
        time += problem.weight[0]
    return time


def critical_path(problem: Problem) -> float:
    """One micro-batch from its first forward to its last backward (and W of stage 0)."""
    last = problem.num_stages - 1
    path = forward_head(problem, last) + problem.forward[last] + problem.backward[last]
    path += backward_tail(problem, last)
    if problem.weight is not None and last == 0:
        path += problem.weight[0]
    return path


def device_bound(problem: Problem, device: int) -> float:
    """Head + work + tail of one device."""
    stages = problem.stages_on(device)
    head = min(forward_head(problem, s) for s in stages)
    tail = 0.0 if problem.is_split else min(backward_tail(problem, s) for s in stages)
    return head + problem.device_work(device) + tail


def makespan_lower_bound(problem: Problem) -> float:
    """A makespan no schedule can beat."""
    per_device = max(device_bound(problem, d) for d in range(problem.num_devices))
    return max(per_device, critical_path(problem))


def span_lower_bound(problem: Problem) -> float:
    """A largest per-device span no schedule can beat: the busiest device's work."""
    return max(problem.device_work(d) for d in range(problem.num_devices))


def lower_bound(problem: Problem, objective: str) -> float:
    """The bound for the chosen objective (``makespan`` or ``span``)."""
    return span_lower_bound(problem) if objective == "span" else makespan_lower_bound(problem)
