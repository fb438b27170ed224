"""Workloads as they are (issue 20): a registry of named cases, one run per ``--case NAME``.

``overlap``: overlapped F&B pairs on DualPipe's own settings — p=8 devices, m=20 micro-batches
(the README's example), the V placement (16 virtual stages), a split backward, the pair time
``overlap_times = r (F + B)`` for r = 0.6, 0.75, 0.9 — on equal stages (F = B = W = 1) and on
unequal stages (F_s = B_s = W_s cycling 0.8 .. 1.4). Memory limit: DualPipeV's own peak
(2p + 1 = 17 chunk activations per device, the README's PP + 1), so both run in the same
memory. Rows: DualPipeV with its pairs, the optimizer (CP-SAT choosing the pairs), its lower
bound; every schedule validated.

    python benchmarks/bench_workloads.py --case overlap --time-limit 20 --workers 1
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ppopt.baselines import baseline
from ppopt.metrics import peak_memory
from ppopt.problem import Problem
from ppopt.solver import SolverOptions, solve
from ppopt.validate import assert_valid

RATIOS = (0.6, 0.75, 0.9)


def overlap_problems() -> list[tuple[str, Problem]]:
    """The ``overlap`` case's problems, by name."""
    p, m = 8, 20
    stages = 2 * p
    unequal = [round(0.8 + 0.2 * ((5 * s) % 4), 3) for s in range(stages)]
    out = []
    for label, times in (("equal", [1.0] * stages), ("unequal", unequal)):
        for r in RATIOS:
            problem = Problem.create(
                p,
                m,
                forward=times,
                backward=times,
                weight=times,
                num_chunks=2,
                placement="vshape",
                overlap=[round(r * 2 * t, 6) for t in times],
                memory_limit=[2 * p + 1.0] * p,
            )
            out.append((f"{label} r={r}", problem))
    return out


def overlap_case(args: argparse.Namespace) -> None:
    """DualPipeV with real overlap against the optimizer, one row per problem."""
    print("| stages | F&B / (F+B) | DualPipeV | pairs | optimizer | pairs | bound | vs DualPipeV |")
    print("|---|---|---|---|---|---|---|---|")
    for name, problem in overlap_problems():
        rival = baseline("dualpipev", problem)
        caps = problem.memory_caps
        assert_valid(rival, caps)
        options = SolverOptions(time_limit=args.time_limit, workers=args.workers, seed=args.seed)
        result = solve(problem, options)
        best = result.schedule
        assert_valid(best, caps)
        assert max(peak_memory(best)) <= 2 * problem.num_devices + 1 + 1e-9
        change = (best.makespan - rival.makespan) / rival.makespan
        label, ratio = name.split(" r=")
        print(
            f"| {label} | {ratio} | {rival.makespan:.6g} | {len(rival.pairs)} | "
            f"{best.makespan:.6g} | {len(best.pairs)} | {result.lower_bound:.6g} | "
            f"{change:+.2%} |",
            flush=True,
        )


#: Every case by its ``--case`` name.
CASES: dict[str, Callable[[argparse.Namespace], None]] = {"overlap": overlap_case}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES), required=True)
    parser.add_argument("--time-limit", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    CASES[args.case](args)


if __name__ == "__main__":
    main()
