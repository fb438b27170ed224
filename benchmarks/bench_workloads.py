"""Workloads as they are (issue 20): named cases, each a few problems, every one solved by the
optimizer and by every applicable baseline; prints a markdown table (makespan, bubble rate =
idle share, ratio to the best baseline that fits the memory limit).

Cases are a small registry: add a function returning ``[(variant, Problem), ...]`` to
:data:`CASES`. Run one case::

    PYTHONPATH=. python benchmarks/bench_workloads.py --case two-node --time-limit 20 \\
        --workers 1 --json-out benchmarks/workloads_two_node.jsonl
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

from ppopt.baselines import applicable_baselines
from ppopt.metrics import compute_metrics, peak_memory
from ppopt.problem import Problem
from ppopt.solver import SolverOptions, solve
from ppopt.validate import assert_valid

Case = Callable[[], list[tuple[str, Problem]]]


def two_node() -> list[tuple[str, Problem]]:
    """p = 8 over two nodes of 4 devices: the link between device 3 and 4 is 10x slower
    (0.5) than the others (0.05). Split F=B=W=1 and unsplit F=1, B=2 as a per-boundary list;
    V placement (two chunks, split) as a device matrix, whose slow pair is crossed twice."""
    p, fast, slow = 8, 0.05, 0.5
    boundary = [slow if s == 3 else fast for s in range(p - 1)]
    matrix = [
        [0.0 if a == b else (slow if {a, b} == {3, 4} else fast) for b in range(p)]
        for a in range(p)
    ]
    out = []
    for m in (16, 32):
        out.append((f"split m={m}", Problem.create(p, m, 1.0, 1.0, 1.0, p2p=boundary)))
        out.append((f"unsplit m={m}", Problem.create(p, m, 1.0, 2.0, p2p=boundary)))
        out.append(
            (
                f"V split m={m}",
                Problem.create(p, m, 0.5, 0.5, 0.5, p2p=matrix, num_chunks=2, placement="vshape"),
            )
        )
    return out


#: Every case by name (other workloads add theirs here).
CASES: dict[str, Case] = {"two-node": two_node}


def run_problem(variant: str, problem: Problem, args: argparse.Namespace) -> list[dict]:
    """The optimizer and every applicable baseline on one problem, as result rows."""
    caps = problem.memory_caps
    rows = []
    for name, schedule in applicable_baselines(problem).items():
        assert_valid(schedule)
        peaks = peak_memory(schedule)
        fits = caps is None or all(pk <= c + 1e-9 for pk, c in zip(peaks, caps, strict=True))
        rows.append(_row(variant, name, schedule, fits))
    result = solve(problem, SolverOptions(time_limit=args.time_limit, workers=args.workers, seed=1))
    assert_valid(result.schedule)
    rows.append({**_row(variant, "optimal", result.schedule, True), "status": str(result.status)})
    best = min(r["makespan"] for r in rows if r["fits"] and r["schedule"] != "optimal")
    for r in rows:
        r["ratio_to_best_baseline"] = r["makespan"] / best
    return rows


def _row(variant: str, name: str, schedule: object, fits: bool) -> dict:
    metrics = compute_metrics(schedule)  # type: ignore[arg-type]
    return {
        "variant": variant,
        "schedule": name,
        "makespan": metrics.makespan,
        "bubble_rate": metrics.bubble_rate,
        "fits": fits,
    }


def table(rows: list[dict]) -> str:
    """The markdown table of every row."""
    lines = [
        "| variant | schedule | makespan | bubble rate (idle share) | / best baseline | fits 1x |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        name = r["schedule"] + (f" ({r['status']})" if "status" in r else "")
        lines.append(
            f"| {r['variant']} | {name} | {r['makespan']:.4g} | {r['bubble_rate']:.2%} | "
            f"{r['ratio_to_best_baseline']:.3f} | {'yes' if r['fits'] else 'no'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--case", choices=sorted(CASES), required=True)
    parser.add_argument("--time-limit", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    rows: list[dict] = []
    for variant, problem in CASES[args.case]():
        new = run_problem(variant, problem, args)
        rows += new
        if args.json_out is not None:
            with args.json_out.open("a") as out:
                for r in new:
                    out.write(json.dumps({"case": args.case, **r}) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
