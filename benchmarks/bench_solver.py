"""Optimizer vs 1F1B on unequal stages: p in {4, 8, 16, 32}, m in {p, 4p}, 1x memory.

Prints, per case: tasks, 1F1B makespan, optimal makespan, gain, status, lower bound, gap,
time to the first and to the best CP-SAT solution, wall time.

    python benchmarks/bench_solver.py --time-limit 60 --workers 2
"""

from __future__ import annotations

import argparse
import random
import time

from ppopt.baselines import baseline
from ppopt.problem import Problem
from ppopt.solver import SolverOptions, solve
from ppopt.solver.options import Progress
from ppopt.validate import assert_valid


def unequal_problem(p: int, m: int, seed: int, p2p: float = 0.1) -> Problem:
    """Stage times drawn around f=1, b=2 (±30 %), rounded to 0.01, reproducible by seed."""
    rng = random.Random(seed * 1000 + p * 7 + m)
    forward = [round(rng.uniform(0.7, 1.3), 2) for _ in range(p)]
    backward = [round(2 * rng.uniform(0.7, 1.3), 2) for _ in range(p)]
    return Problem.create(p, m, forward, backward, p2p=p2p, memory_limit="1x")


def run_case(p: int, m: int, args: argparse.Namespace) -> dict[str, float | str | int]:
    """Solve one case and collect its figures."""
    problem = unequal_problem(p, m, args.seed)
    reference = baseline("1f1b", problem).makespan
    events: list[Progress] = []
    result = solve(
        problem,
        SolverOptions(time_limit=args.time_limit, workers=args.workers, seed=args.seed),
        progress=events.append,
    )
    assert_valid(result.schedule, limit=problem.memory_caps)
    return {
        "p": p,
        "m": m,
        "tasks": problem.num_tasks,
        "1f1b": reference,
        "optimal": result.objective_value,
        "gain_%": 100 * (reference - result.objective_value) / reference,
        "status": result.status,
        "bound": result.lower_bound,
        "gap_%": 100 * result.gap,
        "t_first": events[0].elapsed if events else float("nan"),
        "t_best": events[-1].elapsed if events else float("nan"),
        "wall": result.wall_time,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sizes", default="4,8,16,32")
    args = parser.parse_args()
    header = [
        "p",
        "m",
        "tasks",
        "1f1b",
        "optimal",
        "gain_%",
        "status",
        "bound",
        "gap_%",
        "t_first",
        "t_best",
        "wall",
    ]
    print(" ".join(f"{h:>9}" for h in header))
    for p in (int(x) for x in args.sizes.split(",")):
        for m in (p, 4 * p):
            started = time.perf_counter()
            row = run_case(p, m, args)
            row["wall"] = time.perf_counter() - started
            print(" ".join(_cell(row[h]) for h in header), flush=True)


def _cell(value: float | str | int) -> str:
    if isinstance(value, float):
        return f"{value:>9.3f}"
    return f"{value!s:>9}"


if __name__ == "__main__":
    main()
