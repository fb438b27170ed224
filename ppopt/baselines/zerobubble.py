"""The handcrafted zero-bubble schedules ZB-H1 and ZB-H2 (Qi et al., ICLR 2024).

Both need a split backward (B = input gradient, W = weight gradient) and one chunk per device.
A W may float: these schedules postpone W passes so that they fill the bubbles 1F1B leaves.

For equal stages (same T_F, T_B, T_W everywhere), no latency, ``T_W <= T_F`` and ``p``
devices, the largest per-device span minus the per-device work ``m (T_F + T_B + T_W)`` is

* ZB-H1: ``(p-1)(T_F + T_B) - (min(m, p) - 1) T_W``, i.e. the paper's ``(p-1)(T_F+T_B-T_W)``
  once ``m >= p``; device 0 has the largest span, and when also ``T_W <= T_B`` it ends last,
  so its span is the makespan;
* ZB-H2: ``(p-1)(T_F + T_B) - (min(m, 2p-1) - 1) T_W``, i.e. ``(p-1)(T_F+T_B-2T_W)`` once
  ``m >= 2p-1`` (needs ``T_F + T_B >= 2 T_W``): zero when ``T_F = T_B = T_W``.

With unequal stages or latency they are still valid static orders (the engine times them).
"""

from __future__ import annotations

from ppopt.errors import NotApplicableError
from ppopt.problem import Problem
from ppopt.tasks import Kind, Task


def zb_h1_orders(problem: Problem) -> list[list[Task]]:
    """Per-device ZB-H1 orders: 1F1B's warm-up, stage ``s`` delays its W passes by ``s`` steps.

    Pipeline position ``s`` runs ``min(S-s-1, m)`` warm-up forwards, then steps of
    ``F, B, W`` where the W of step ``j`` is micro-batch ``j - s`` (none for ``j < s``); the
    ``s`` postponed W passes fill the cool-down. Stage ``s`` thus holds at most ``S - s``
    activations plus ``s`` retained parts: never more than stage 0's ``S`` activations when
    every stage has the same amounts (1F1B's peak).
    """
    _check_applies(problem, "zb-h1")
    S, m = problem.num_stages, problem.num_microbatches
    orders: list[list[Task]] = [[] for _ in range(problem.num_devices)]
    for s in range(S):
        warmup = min(S - s - 1, m)
        order = orders[problem.device_of(s)]
        order.extend(Task(Kind.F, s, i) for i in range(warmup))
        for j in range(m):
            if warmup + j < m:
                order.append(Task(Kind.F, s, warmup + j))
            order.append(Task(Kind.B, s, j))
            if j >= s:
                order.append(Task(Kind.W, s, j - s))
        order.extend(Task(Kind.W, s, i) for i in range(max(m - s, 0), m))
    return orders


def zb_h2_orders(problem: Problem) -> list[list[Task]]:
    """Per-device ZB-H2 orders: extra warm-up forwards fill the head, W passes the tail.

    Pipeline position ``s`` runs ``min(2(S-s-1)+1, m)`` forwards before its first backward
    (exactly the ones that fit before that backward arrives when ``T_F = T_B``), then steps
    of ``B, W, F`` where the W of step ``j`` is micro-batch ``j - 2s``; the last ``2s`` W
    passes close the order. The layout becomes a parallelogram: stage 0 holds at most
    ``2S-1`` activations (under twice 1F1B's ``S``), deeper stages fewer activations and
    ``2s`` retained parts.
    """
    _check_applies(problem, "zb-h2")
    S, m = problem.num_stages, problem.num_microbatches
    orders: list[list[Task]] = [[] for _ in range(problem.num_devices)]
    for s in range(S):
        head = min(2 * (S - s - 1) + 1, m)
        delay = 2 * s
        order = orders[problem.device_of(s)]
        order.extend(Task(Kind.F, s, i) for i in range(head))
        for j in range(m):
            order.append(Task(Kind.B, s, j))
            if j >= delay:
                order.append(Task(Kind.W, s, j - delay))
            if head + j < m:
                order.append(Task(Kind.F, s, head + j))
        order.extend(Task(Kind.W, s, i) for i in range(max(m - delay, 0), m))
    return orders


def _check_applies(problem: Problem, name: str) -> None:
    """Refuse problems the handcrafted schedule is not defined for."""
    if not problem.is_split:
        raise NotApplicableError(
            f"schedule: {name} needs a split backward (weight_times); use 1f1b without one"
        )
    if problem.num_chunks != 1:
        raise NotApplicableError(
            f"schedule: {name} runs one chunk per device; use zb-v or greedy for num_chunks > 1"
        )
