"""Zero-bubble targets: the optimizer against the paper's heuristics, split backward.

Cases: the paper's 1.5B profile (p=8, m=24, T_F 18.522, T_B 18.086, T_W 9.337, p2p 0.601,
activation 1, retained 0.3664) at 1x and 2x memory, and two cases of our own at p=16 and p=32.
For each: the zero-bubble paper's bubble ``(span - per-device work) / span`` of classic 1F1B
(unsplit), ZB-H1, ZB-H2 (when it fits), the optimizer with ``objective: span``, its lower bound
and gap, and the solver status.

    python benchmarks/bench_zerobubble.py --time-limit 60 --workers 2
"""

from __future__ import annotations

import argparse

from ppopt.baselines import baseline
from ppopt.metrics import compute_metrics, peak_memory
from ppopt.problem import Problem
from ppopt.solver import SolverOptions, solve
from ppopt.validate import assert_valid

PAPER_1_5B = {"forward": 18.522, "backward": 18.086, "weight": 9.337, "p2p": 0.601}


def cases() -> list[tuple[str, Problem]]:
    """The benchmark's problems, by name."""
    out = []
    for limit in ("1x", "2x"):
        problem = Problem.create(
            8, 24, **PAPER_1_5B, activation=1.0, retained=0.3664, memory_limit=limit
        )
        out.append((f"1.5B p=8 m=24 {limit}", problem))
    for p, m in ((16, 48), (32, 96)):
        forward = [round(1.0 + 0.2 * ((7 * s) % 5) / 4, 3) for s in range(p)]
        backward = [round(1.1 * f, 3) for f in forward]
        weight = [round(0.6 * f, 3) for f in forward]
        problem = Problem.create(
            p,
            m,
            forward,
            backward,
            weight=weight,
            p2p=0.05,
            activation=1.0,
            retained=0.35,
            memory_limit="1x",
        )
        out.append((f"p={p} m={m} unequal 1x", problem))
    return out


def zb_bubble_of(name: str, problem: Problem) -> str:
    """The paper's bubble of a baseline, or '-' when it does not apply or exceeds the limit."""
    try:
        schedule = baseline(name, problem)
    except ValueError:
        return "-"
    limit = problem.memory_caps
    over = limit is not None and any(
        peak > cap * (1 + 1e-9) for peak, cap in zip(peak_memory(schedule), limit, strict=True)
    )
    value = compute_metrics(schedule).zb_bubble
    return f"{value:.4f}" + ("(over)" if over else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--only", default="", help="substring of the case names to run")
    args = parser.parse_args()
    header = ("case", "tasks", "1f1b", "zb-h1", "zb-h2", "optimal", "bound", "gap_%", "status", "s")
    print(" | ".join(header))
    for name, problem in cases():
        if args.only not in name:
            continue
        classic = compute_metrics(baseline("1f1b", problem.unsplit())).zb_bubble
        options = SolverOptions(time_limit=args.time_limit, workers=args.workers, objective="span")
        result = solve(problem, options)
        assert_valid(result.schedule, limit=problem.memory_caps)
        metrics = compute_metrics(result.schedule)
        work = max(metrics.busy)
        bound_bubble = (result.lower_bound - work) / result.lower_bound
        row = (
            name,
            str(problem.num_tasks),
            f"{classic:.4f}",
            zb_bubble_of("zb-h1", problem),
            zb_bubble_of("zb-h2", problem),
            f"{metrics.zb_bubble:.5f}",
            f"{bound_bubble:.5f}",
            f"{100 * result.gap:.2f}",
            f"{result.status} ({result.source})",
            f"{result.wall_time:.1f}",
        )
        print(" | ".join(row), flush=True)


if __name__ == "__main__":
    main()
