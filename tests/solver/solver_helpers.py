"""What the solver tests share: test options (one worker, deterministic), ops as plain tuples,
the seeded small problems checked against the exhaustive search (``exhaustive.py``) with their
cached optima, and the random problems of the hypothesis properties (issue 9) with a memory
limit from just feasible to none.

The seeded problems: p <= 3, m <= 4, unequal times in steps of 0.5, latency 0 or 0.5, memory
limit none / 1x / an absolute value between one micro-batch and 1x, split and unsplit, a few
with two chunks. The properties' example counts are fixed per test; raise them locally with
``PPOPT_PROPERTY_SCALE`` (``HYPOTHESIS_PROFILE=thorough`` does not change them).
"""

from __future__ import annotations

import functools
import os
import random
from itertools import product

from exhaustive import exhaustive_optimum
from hypothesis import strategies as st
from strategies import problems

from ppopt.errors import DeadlockError
from ppopt.limits import MemoryLimit
from ppopt.problem import Problem
from ppopt.schedule import Schedule
from ppopt.solver import SolverOptions
from ppopt.tasks import Kind
from ppopt.timeline import compute_timeline

#: Relative slack for comparing two float objectives / a bound with an objective.
TOL = 1e-9


def options(time_limit: float = 1.0, **kwargs: object) -> SolverOptions:
    """Test options: one worker, deterministic, a small time limit."""
    return SolverOptions(workers=1, deterministic=True, time_limit=time_limit, **kwargs)  # type: ignore[arg-type]


#: Every solver call in these tests: one worker, reproducible, small time limit.
OPTIONS = SolverOptions(workers=1, deterministic=True, time_limit=5.0)


def ops(schedule: Schedule) -> list[tuple[int, str, int, int, float, float]]:
    """Every op as a plain tuple (device, kind, stage, micro-batch, start, end), in run order."""
    return [tuple(op) for op in schedule.ops()]  # type: ignore[misc]


# ---------------------------------------------------------------------- seeded small problems


#: Stage times: unequal, integer-ish (exact in binary, so every comparison below is exact).
TIMES = [1.0, 1.5, 2.0, 2.5, 3.0]


def random_problem(seed: int, chunks: int = 1) -> Problem:
    """A small reproducible problem: p <= 3 (2 with chunks), m <= 4 (3 with chunks), random
    times, latency, split, activations (retained share with a split) and memory limit."""
    rng = random.Random(seed)
    p = rng.choice([2, 3, 3]) if chunks == 1 else 2
    m = rng.choice([2, 3, 4]) if chunks == 1 else rng.choice([2, 3])
    n = p * chunks
    split = rng.random() < 0.5
    activation = [rng.choice([0.5, 1.0, 1.5]) for _ in range(n)]
    problem = Problem.create(
        p,
        m,
        forward=[rng.choice(TIMES) for _ in range(n)],
        backward=[rng.choice(TIMES) for _ in range(n)],
        weight=[rng.choice(TIMES) for _ in range(n)] if split else None,
        p2p=rng.choice([0.0, 0.5]),
        num_chunks=chunks,
        placement=rng.choice(["interleaved", "vshape"]) if chunks == 2 else "interleaved",
        activation=activation,
        retained=[a * rng.choice([0.0, 0.5, 1.0]) for a in activation] if split else 0.0,
    )
    return problem.with_limit(random_limit(rng, problem))


def random_limit(rng: random.Random, problem: Problem) -> MemoryLimit:
    """None, 1x, or an absolute value (step 0.5) from one micro-batch's need up to 1x."""
    kind = rng.choice(["none", "1x", "absolute"])
    if kind == "none":
        return MemoryLimit()
    if kind == "1x":
        return MemoryLimit(factor=1.0)
    need = max(
        sum(problem.activation[s] for s in problem.stages_on(d)) for d in range(problem.num_devices)
    )
    top = problem.reference_peak()
    steps = [need + 0.5 * k for k in range(int((top - need) / 0.5) + 1)]
    return MemoryLimit(values=(rng.choice(steps),))


def describe(problem: Problem) -> str:
    """A short test id: p, m, chunks, split, latency, limit."""
    split = "split" if problem.is_split else "unsplit"
    chunks = f"v{problem.num_chunks}{problem.placement_name[0]}-" if problem.num_chunks > 1 else ""
    return (
        f"p{problem.num_devices}m{problem.num_microbatches}-{chunks}{split}-"
        f"p2p{problem.p2p:g}-limit{problem.memory_limit.to_config()}"
    )


#: The seeded cases. The first 70 seeds all search in under 0.3 s each; some later ones
#: (p=3, m=4, split, a tight limit) take a minute, so the range is not arbitrary.
CASES = [random_problem(seed) for seed in range(70)]
CHUNK_CASES = [random_problem(seed, chunks=2) for seed in range(12)]


@functools.cache
def optimum(problem: Problem, objective: str = "makespan") -> float:
    """The exhaustive optimum under the problem's own limit (cached: several tests ask)."""
    return exhaustive_optimum(problem, problem.memory_caps, objective).value


# ---------------------------------------------------------------------------- random problems


#: Multiplies every example count (``PPOPT_PROPERTY_SCALE=10`` for a long local run).
SCALE = max(1, int(os.environ.get("PPOPT_PROPERTY_SCALE", "1")))

#: The properties' problems: 1-8 devices, 1-16 micro-batches, 1-2 chunks placed interleaved or
#: as a V, split backward or not, latency 0 or not, random stage times and activations.
RANDOM_PROBLEMS = problems(max_devices=8, max_microbatches=16, max_chunks=2)


def one_microbatch_need(problem: Problem) -> tuple[float, ...]:
    """Per device, the memory one micro-batch needs there: its stages' activations summed."""
    return tuple(
        sum(problem.activation[s] for s in problem.stages_on(d)) for d in range(problem.num_devices)
    )


@st.composite
def limited_problems(draw: st.DrawFn) -> Problem:
    """A random problem with a memory limit from just feasible to none.

    The limit is one of: per device, the one-micro-batch need times ``1 + slack`` (slack 0 is
    *just feasible*; listed first, so hypothesis shrinks towards it); none; ``Nx`` with N >= 1
    (never below one micro-batch: the 1F1B reference holds at least one micro-batch on its most
    loaded device); or one value for all devices, the largest need times ``1 + slack``.
    """
    problem = draw(RANDOM_PROBLEMS)
    need = one_microbatch_need(problem)
    slack = st.sampled_from([0.0, 0.0, 0.5, 1.0, 2.0]) | st.floats(0.0, 4.0)
    kind = draw(st.sampled_from(["per-device", "none", "factor", "uniform"]))
    if kind == "none":
        limit = MemoryLimit()
    elif kind == "factor":
        limit = MemoryLimit(factor=draw(st.sampled_from([1.0, 1.5, 2.0, 3.0])))
    elif kind == "per-device":
        limit = MemoryLimit(values=tuple(n * (1 + draw(slack)) for n in need))
    else:
        limit = MemoryLimit(values=(max(need) * (1 + draw(slack)),))
    return problem.with_limit(limit)


def at_most(smaller: float, larger: float) -> bool:
    """``smaller <= larger`` up to float rounding of sums of durations."""
    return smaller <= larger + TOL * max(1.0, abs(larger))


def paired_optimum(problem: Problem) -> float:
    """The shortest makespan over every per-device order (each device's tasks in every
    sequence that keeps its own micro-batches' dependencies) and every set of pairs of an
    adjacent F and the B after it (different micro-batches), each timed by the engine;
    orders that deadlock skipped. Brute force, for tiny problems only."""

    def local_orders(tasks: list) -> list[tuple]:
        """Every sequence of ``tasks`` in which each one comes after its dependencies among
        them (built task by task)."""
        out: list[tuple] = []

        def extend(prefix: list, left: list) -> None:
            if not left:
                out.append(tuple(prefix))
            for task in left:
                if all(e not in left for e in befores[task]):
                    extend([*prefix, task], [t for t in left if t != task])

        extend([], list(tasks))
        return out

    def pairings(order: tuple, k: int = 0) -> list[list]:
        if k >= len(order) - 1:
            return [[]]
        out = pairings(order, k + 1)
        f, b = order[k], order[k + 1]
        if f.kind == Kind.F and problem.pair_fault(f, b) is None:
            out += [[(f, b), *rest] for rest in pairings(order, k + 2)]
        return out

    befores = {
        task: [
            type(task)(e.kind, e.stage, task.microbatch)
            for e in problem.edges[task.kind, task.stage]
        ]
        for task in problem.tasks()
    }
    per_device = [
        [t for t in problem.tasks() if problem.device_of(t.stage) == d]
        for d in range(problem.num_devices)
    ]
    best = float("inf")
    for orders in product(*(local_orders(tasks) for tasks in per_device)):
        for chosen in product(*(pairings(order) for order in orders)):
            pairs = [pair for device_pairs in chosen for pair in device_pairs]
            try:
                schedule = compute_timeline(problem, orders, pairs=pairs)
            except DeadlockError:
                continue
            best = min(best, schedule.makespan)
    return best
