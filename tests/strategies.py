"""Hypothesis strategies shared by the test suite: random problems and random valid orders.

``problems()`` draws a problem of docs/contract.md §1 (devices, micro-batches, chunks with a
placement, split or not, random positive times and memory amounts, latency 0 or positive).
``valid_orders(problem)`` draws per-device orders that can run: the projection of a random
topological order of all tasks onto the devices, so no order ever deadlocks.
``timed(...)`` draws both and times them with the engine.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from hypothesis import strategies as st

from ppopt.problem import Problem
from ppopt.schedule import Schedule
from ppopt.tasks import Task
from ppopt.timeline import compute_timeline

#: Positive durations: round values (which make ties between events likely) and arbitrary floats.
TIMES = st.sampled_from([0.5, 1.0, 1.5, 2.0, 3.0]) | st.floats(0.05, 5.0, allow_nan=False)

#: Memory amounts per stage.
AMOUNTS = st.sampled_from([1.0, 2.0, 0.5]) | st.floats(0.1, 4.0, allow_nan=False)


@st.composite
def problems(
    draw: st.DrawFn,
    max_devices: int = 6,
    max_microbatches: int = 8,
    max_chunks: int = 2,
    split: bool | None = None,
    latency: bool | None = None,
    placements: Sequence[str] = ("interleaved", "vshape"),
) -> Problem:
    """A random valid problem; ``split``/``latency`` force the choice when not ``None``.

    ``placements`` lists the named placements to draw from for two chunks (``vshape`` needs
    exactly two) plus, if it holds ``"explicit"``, a random list where each device gets
    ``num_chunks`` stages.
    """
    p = draw(st.integers(1, max_devices))
    m = draw(st.integers(1, max_microbatches))
    v = draw(st.integers(1, max_chunks))
    allowed = [name for name in placements if name != "vshape" or v == 2]
    name = draw(st.sampled_from(allowed)) if allowed else "interleaved"
    placement: str | list[int] = name
    if name == "explicit":
        placement = draw(st.permutations([d for d in range(p) for _ in range(v)]))
    n = p * v
    is_split = draw(st.booleans()) if split is None else split
    with_latency = draw(st.booleans()) if latency is None else latency
    activation = draw(st.lists(AMOUNTS, min_size=n, max_size=n))
    shares = draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0]), min_size=n, max_size=n))
    return Problem.create(
        num_devices=p,
        num_microbatches=m,
        forward=draw(st.lists(TIMES, min_size=n, max_size=n)),
        backward=draw(st.lists(TIMES, min_size=n, max_size=n)),
        weight=draw(st.lists(TIMES, min_size=n, max_size=n)) if is_split else None,
        p2p=draw(TIMES) if with_latency else 0.0,
        num_chunks=v,
        placement=placement,
        activation=activation,
        retained=[a * f for a, f in zip(activation, shares, strict=True)] if is_split else 0.0,
    )


def successors(problem: Problem) -> dict[Task, list[Task]]:
    """The tasks that wait on each task, from the problem's own dependency rule."""
    after: dict[Task, list[Task]] = {task: [] for task in problem.tasks()}
    for task in after:
        for dep in problem.dependencies(task):
            after[dep].append(task)
    return after


def random_orders(problem: Problem, rng: random.Random) -> list[list[Task]]:
    """Per-device orders from a random topological order of every task (never deadlocks).

    Each step picks a uniformly random task whose dependencies are all placed already and
    appends it to its device's order; every order is a subsequence of one global order that
    respects every dependency, so the devices can always run them.
    """
    after = successors(problem)
    waiting = {task: len(problem.dependencies(task)) for task in after}
    ready = [task for task, count in waiting.items() if count == 0]
    orders: list[list[Task]] = [[] for _ in range(problem.num_devices)]
    while ready:
        k = rng.randrange(len(ready))
        ready[k], ready[-1] = ready[-1], ready[k]
        task = ready.pop()
        orders[problem.device_of(task.stage)].append(task)
        for nxt in after[task]:
            waiting[nxt] -= 1
            if waiting[nxt] == 0:
                ready.append(nxt)
    return orders


@st.composite
def valid_orders(draw: st.DrawFn, problem: Problem) -> list[list[Task]]:
    """Random per-device orders of ``problem`` that respect every dependency."""
    return random_orders(problem, draw(st.randoms(use_true_random=False)))


@st.composite
def timed(draw: st.DrawFn, problem_strategy: st.SearchStrategy[Problem] | None = None) -> Schedule:
    """A random problem with random valid orders, timed by the engine."""
    problem = draw(problem_strategy if problem_strategy is not None else problems())
    return compute_timeline(problem, draw(valid_orders(problem)), "random")
