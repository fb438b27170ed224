"""Scaling study: the optimizer from hundreds to tens of thousands of tasks.

Cases: p in {8, 16, 32}, m in {2p, 8p}, plus p=32 m=256; split and unsplit backward; one
chunk and V placement; unequal stages (seeded); 1x memory; makespan objective. For each case:
task count, method (direct model or large-model LNS), time to the first valid schedule, best
baseline, final makespan, gain over the best baseline, lower bound, gap, status, wall time,
and the process's peak resident memory. Results are appended to a JSONL file (resumable) and
``--plot`` draws gap and time against task count.

    python benchmarks/bench_scaling.py --time-limit 60 --workers 2 --out benchmarks/scaling.jsonl
    python benchmarks/bench_scaling.py --plot docs/scaling.png --out benchmarks/scaling.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
from pathlib import Path

from ppopt.problem import Problem
from ppopt.solver import SolverOptions, solve
from ppopt.solver.floor import best_floor
from ppopt.solver.options import Progress
from ppopt.solver.run import DIRECT_TASK_LIMIT
from ppopt.validate import assert_valid


def make_problem(p: int, m: int, split: bool, vshape: bool, seed: int = 0) -> Problem:
    """Unequal stages around f=1, b=1 (split: B 1, W 0.6) or b=2 (unsplit), seeded."""
    rng = random.Random(f"{seed}-{p}-{m}-{split}-{vshape}")
    stages = 2 * p if vshape else p
    forward = [round(rng.uniform(0.8, 1.2), 2) for _ in range(stages)]
    if split:
        backward = [round(rng.uniform(0.8, 1.2), 2) for _ in range(stages)]
        weight: list[float] | None = [round(0.6 * f, 2) for f in forward]
    else:
        backward = [round(2 * rng.uniform(0.8, 1.2), 2) for _ in range(stages)]
        weight = None
    activation = 0.5 if vshape else 1.0
    return Problem.create(
        p,
        m,
        forward,
        backward,
        weight=weight,
        p2p=0.05,
        num_chunks=2 if vshape else 1,
        placement="vshape" if vshape else "interleaved",
        activation=activation,
        retained=0.4 * activation if split else 0.0,
        memory_limit="1x",
    )


def case_list() -> list[tuple[int, int, bool, bool]]:
    """(p, m, split, vshape) of every case, smallest first."""
    out = []
    for p in (8, 16, 32):
        for m in (2 * p, 8 * p):
            for split in (False, True):
                for vshape in (False, True):
                    out.append((p, m, split, vshape))
    out.append((32, 256, True, False))  # the scaling issue's target cases
    out.append((16, 64, True, True))
    return sorted(set(out), key=lambda c: make_problem(*c).num_tasks)


def run_case(p: int, m: int, split: bool, vshape: bool, args: argparse.Namespace) -> dict:
    """Solve one case and collect its figures."""
    problem = make_problem(p, m, split, vshape, args.seed)
    limit = problem.memory_caps
    floor = best_floor(problem, limit, "makespan")
    events: list[Progress] = []
    options = SolverOptions(time_limit=args.time_limit, workers=args.workers)
    result = solve(problem, options, progress=events.append)
    assert_valid(result.schedule, limit=limit)
    base = floor.makespan if floor is not None else float("nan")
    return {
        "p": p,
        "m": m,
        "split": split,
        "vshape": vshape,
        "seed": args.seed,
        "tasks": problem.num_tasks,
        "method": "direct" if problem.num_tasks <= DIRECT_TASK_LIMIT else "large",
        "t_first": events[0].elapsed if events else None,
        "best_baseline": floor.name if floor is not None else None,
        "baseline": base,
        "makespan": result.objective_value,
        "gain_pct": 100 * (base - result.objective_value) / base,
        "bound": result.lower_bound,
        "gap_pct": 100 * result.gap,
        "status": result.status,
        "source": result.source,
        "wall": result.wall_time,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def key(row: dict) -> tuple:
    return (row["p"], row["m"], row["split"], row["vshape"], row.get("seed", 0))


def run_all(args: argparse.Namespace) -> None:
    out = Path(args.out)
    done = set()
    if out.exists():
        done = {key(json.loads(line)) for line in out.read_text().splitlines() if line.strip()}
    wanted = [_parse_case(text) for text in args.case]
    for case in wanted or case_list():
        too_big = args.max_tasks and make_problem(*case).num_tasks > args.max_tasks
        if (*case, args.seed) in done or too_big:
            continue
        started = time.perf_counter()
        row = run_case(*case, args)
        row["wall_total"] = time.perf_counter() - started
        with out.open("a") as handle:
            handle.write(json.dumps(row) + "\n")
        print(_line(row), flush=True)


def _parse_case(text: str) -> tuple[int, int, bool, bool]:
    """``p,m,split,vshape`` with the last two as 0/1, e.g. ``32,256,1,0``."""
    p, m, split, vshape = (int(part) for part in text.split(","))
    return p, m, bool(split), bool(vshape)


def _line(row: dict) -> str:
    shape = ("split" if row["split"] else "full") + ("/V" if row["vshape"] else "/1ch")
    return (
        f"p={row['p']:<3} m={row['m']:<4} {shape:<9} tasks={row['tasks']:<6} {row['method']:<6} "
        f"first={row['t_first']:.2f}s base={row['baseline']:.2f} ({row['best_baseline']}) "
        f"best={row['makespan']:.2f} gain={row['gain_pct']:.2f}% gap={row['gap_pct']:.3f}% "
        f"{row['status']} wall={row['wall']:.1f}s rss={row['peak_rss_mib']:.0f}MiB"
    )


def plot(args: argparse.Namespace) -> None:
    """Gap and wall time against task count, one marker per case shape."""
    from matplotlib.figure import Figure

    from ppopt.viz.save import save_figure

    rows = [json.loads(line) for line in Path(args.out).read_text().splitlines() if line.strip()]
    fig = Figure(figsize=(10, 4))
    gap_ax, time_ax = fig.subplots(1, 2)
    for split in (False, True):
        for vshape in (False, True):
            pick = [r for r in rows if r["split"] == split and r["vshape"] == vshape]
            if not pick:
                continue
            label = ("split B/W" if split else "full backward") + (", V" if vshape else ", 1 chunk")
            tasks = [r["tasks"] for r in pick]
            gap_ax.plot(tasks, [r["gap_pct"] for r in pick], "o", label=label)
            time_ax.plot(tasks, [r["t_first"] for r in pick], "o", label=label)
    for ax in (gap_ax, time_ax):
        ax.set_xscale("log")
        ax.set_xlabel("tasks")
        ax.grid(alpha=0.3)
    gap_ax.set_ylabel("gap to lower bound (%)")
    gap_ax.set_title("final gap (makespan - bound) / makespan")
    time_ax.set_ylabel("seconds")
    time_ax.set_title("time to first valid schedule")
    gap_ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, args.plot)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/scaling.jsonl")
    parser.add_argument("--seed", type=int, default=0, help="stage times' random seed")
    parser.add_argument("--max-tasks", type=int, default=0, help="skip larger cases (0: none)")
    parser.add_argument("--plot", default="", help="draw the figure from --out instead of running")
    parser.add_argument(
        "--case", action="append", default=[], help="only this case: p,m,split,vshape (0/1)"
    )
    args = parser.parse_args()
    if args.plot:
        plot(args)
    else:
        run_all(args)


if __name__ == "__main__":
    main()
