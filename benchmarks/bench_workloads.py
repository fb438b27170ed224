"""Workloads as they are (issue 20): a registry of named cases, each run with ``--case NAME``.

    python benchmarks/bench_workloads.py --case varlen              # both limits, 25 s each
    python benchmarks/bench_workloads.py --case varlen --time-limit 20

``varlen`` (variable-length micro-batches): p = 8 devices, m = 32 micro-batches whose
sequence lengths are drawn from a lognormal distribution (``LENGTH_SIGMA``, seed
``LENGTH_SEED``: a long tail, a few micro-batches several times the median), turned into
factors by ``microbatch_scale: {lengths, linear: 1, quadratic: 0.25}`` (reference: the mean
length). F = B = W = 1 per stage for the reference micro-batch, activation 1. For each memory
limit (1x and 2x the 1F1B peak, given order) it runs every baseline in each micro-batch order
(given / longest-first / shortest-first) and the optimizer (``--workers 1``), and prints the
makespans and the optimizer's margin over the best baseline order that fits the limit (and
over the best of all, fitting or not).
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable

from ppopt.baselines import applicable_baselines
from ppopt.metrics import peak_memory
from ppopt.problem import Problem
from ppopt.solver import SolverOptions, solve

LENGTH_SEED = 20
LENGTH_SIGMA = 0.8
MEDIAN_LENGTH = 2048


def varlen_lengths(m: int = 32) -> list[int]:
    """The case's sequence lengths: lognormal around ``MEDIAN_LENGTH``, fixed seed."""
    rng = random.Random(LENGTH_SEED)
    return [
        max(128, round(MEDIAN_LENGTH * rng.lognormvariate(0.0, LENGTH_SIGMA))) for _ in range(m)
    ]


def varlen_problem(limit: str) -> Problem:
    """p = 8, m = 32, split backward, long-tailed lengths, the given memory limit."""
    scale = {"lengths": varlen_lengths(), "linear": 1.0, "quadratic": 0.25}
    return Problem.create(
        8, 32, forward=1.0, backward=1.0, weight=1.0, microbatch_scale=scale, memory_limit=limit
    )


def fits(schedule_peaks: tuple[float, ...], caps: tuple[float, ...] | None) -> bool:
    return caps is None or all(
        p <= c * (1 + 1e-9) for p, c in zip(schedule_peaks, caps, strict=True)
    )


def run_varlen(time_limit: float) -> None:
    """The table of the ``varlen`` case (benchmarks/README.md)."""
    lengths = varlen_lengths()
    print(f"lengths: min {min(lengths)}, median {sorted(lengths)[16]}, max {max(lengths)}")
    for limit in ("1x", "2x"):
        problem = varlen_problem(limit)
        scales = problem.microbatch_scale or ()
        print(f"\n## memory {limit}  (scales {min(scales):.3f}..{max(scales):.3f})")
        caps = problem.memory_caps
        rows = []
        for name, schedule in applicable_baselines(problem).items():
            ok = fits(peak_memory(schedule), caps)
            rows.append((schedule.makespan, name, ok))
        result = solve(problem, SolverOptions(workers=1, time_limit=time_limit))
        for makespan, name, ok in sorted(rows):
            print(f"{name:32s} {makespan:10.3f}  {'fits' if ok else 'over the limit'}")
        best_fit = min((r for r in rows if r[2]), default=None)
        best_any = min(rows)
        value = result.objective_value
        print(f"{'optimal':32s} {value:10.3f}  ({result.status}, bound {result.lower_bound:.3f})")
        if best_fit is not None:
            margin = 100 * (best_fit[0] - value) / best_fit[0]
            print(f"margin over the best fitting baseline ({best_fit[1]}): {margin:.2f}%")
        margin_any = 100 * (best_any[0] - value) / best_any[0]
        print(f"margin over the best baseline of all ({best_any[1]}): {margin_any:.2f}%")


CASES: dict[str, Callable[[float], None]] = {"varlen": run_varlen}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), required=True)
    parser.add_argument("--time-limit", type=float, default=25.0, help="seconds per solve")
    args = parser.parse_args()
    CASES[args.case](args.time_limit)


if __name__ == "__main__":
    main()
