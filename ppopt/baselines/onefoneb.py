"""1F1B (PipeDream-flush / Megatron): warm-up forwards, then one forward one backward."""

from __future__ import annotations

from ppopt.errors import NotApplicableError
from ppopt.problem import Problem
from ppopt.tasks import Kind, Task


def one_f_one_b_orders(problem: Problem, max_in_flight: int | None = None) -> list[list[Task]]:
    """Per-device 1F1B orders for a one-chunk problem, any ``m >= 1``.

    The device of pipeline position ``s`` runs ``min(S - s - 1, m)`` warm-up forwards, then
    alternates forward and backward, then drains the remaining backwards (Megatron-LM's
    ``forward_backward_pipelining_without_interleaving``). On a split problem each ``W`` runs
    directly after its ``B``. ``max_in_flight`` caps the warm-up so that no stage holds more
    than that many micro-batches' activations (1 runs micro-batches one at a time).
    """
    if problem.num_chunks != 1:
        raise NotApplicableError(
            "schedule: 1f1b runs one chunk per device; use interleaved-1f1b for num_chunks > 1"
        )
    S, m = problem.num_stages, problem.num_microbatches
    orders: list[list[Task]] = [[] for _ in range(problem.num_devices)]
    for s in range(S):
        warmup = min(S - s - 1, m)
        if max_in_flight is not None:
            warmup = min(warmup, max(max_in_flight, 1) - 1)
        order = orders[problem.device_of(s)]
        order.extend(Task(Kind.F, s, i) for i in range(warmup))
        for i in range(m):
            if warmup + i < m:
                order.append(Task(Kind.F, s, warmup + i))
            order.extend(_backward(problem, s, i))
    return orders


def _backward(problem: Problem, stage: int, microbatch: int) -> list[Task]:
    """The backward of one micro-batch: ``B``, then ``W`` at once on a split problem."""
    tasks = [Task(Kind.B, stage, microbatch)]
    if problem.is_split:
        tasks.append(Task(Kind.W, stage, microbatch))
    return tasks
