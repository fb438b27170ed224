"""The greedy list scheduler's choices: each variant's :class:`Policy`, by name, and the
deadlines of the ``deadline`` variant (see :mod:`ppopt.baselines.greedy`)."""

from __future__ import annotations

from dataclasses import dataclass

from ppopt.problem import Problem
from ppopt.tasks import Kind, Task


@dataclass(frozen=True)
class Policy:
    """How an idle device chooses; ``B`` always comes first.

    ``w_first``: a ready ``W`` before any ``F`` (low memory). ``lookahead``: an idle device
    starts no ``W`` that would end after an ``F`` or ``B`` already known to arrive (it waits,
    saving its W passes for later gaps). ``staged`` = k > 0: virtual stage ``s`` of ``S`` holds
    at most ``k(S-s) - (k-1)`` micro-batches whose ``F`` ran and ``B`` has not (k=1: 1F1B's
    warm-up, as ZB-H1; k=2: ZB-H2's head), so the rest of the limit serves retained parts;
    the oldest active micro-batch is exempt, which keeps the scheduler deadlock-free.
    ``breadth``: among forwards the shallowest stage first (else the oldest micro-batch,
    deepest stage). ``deadline``: below the bottleneck stage, forwards and backwards by
    earliest deadline instead (see :func:`deadlines`; one stage per device only).
    """

    w_first: bool = False
    lookahead: bool = False
    staged: int = 0
    breadth: bool = False
    deadline: bool = False


#: Priority variants by name, each the best somewhere (see :func:`greedy_orders`).
PREFERENCES: dict[str, Policy] = {
    "fill": Policy(),
    "eager": Policy(w_first=True),
    "fit": Policy(lookahead=True),
    "staged": Policy(staged=1),
    "staged-fit": Policy(staged=1, lookahead=True),
    "staged2": Policy(staged=2),
    "staged2-fit": Policy(staged=2, lookahead=True),
    "breadth": Policy(breadth=True),
    "deadline": Policy(deadline=True),
}


def deadlines(problem: Problem, caps: tuple[float, ...] | None) -> dict[Task, float]:
    """Latest starts of the forwards and backwards after the bottleneck stage ``c`` (the one
    with the most forward head plus work) that keep ``c`` busy.

    ``c`` runs as many forwards as fit, then one F, B (and W) per micro-batch, so it wants
    B(c,j) at ``D_j = head_c + (j + cap) f_c + j (b_c + w_c)``; B(s,j) below it must start
    by ``D_j`` less the backward chain from ``s`` down to ``c``, and F(s,j) by that less
    the round trip above ``s``. One stage per device (``num_chunks = 1``)."""
    S, m = problem.num_stages, problem.num_microbatches
    f, b = problem.forward, problem.backward
    w = problem.weight or (0.0,) * S
    c = max(range(S), key=lambda s: problem.forward_head(s) + m * (f[s] + b[s] + w[s]))
    act = problem.activation[c]
    cap = m if caps is None or act <= 0 else max(1, int(caps[c] / act + 1e-9))
    head = problem.forward_head(c)
    out: dict[Task, float] = {}
    chain = 0.0  # backward work between s and c, latencies included
    for s in range(c + 1, S):
        chain += problem.hop(s, s - 1) + (b[s - 1] if s - 1 > c else 0.0)
        for j in range(m):
            due = head + (j + cap) * f[c] + j * (b[c] + w[c]) - chain - b[s]
            out[Task(Kind.B, s, j)] = due
            out[Task(Kind.F, s, j)] = due - problem.round_trip(s) - f[s]
    return out
