"""Workloads as they are (issue 20): named cases, each a few problems, every one solved by the
optimizer and by every applicable baseline; prints a markdown table (makespan, bubble rate =
idle share, ratio to the best baseline that fits the memory limit).

Cases are a small registry: add a function returning ``[(variant, Problem), ...]`` to
:data:`CASES`. Run one case::

    PYTHONPATH=. python benchmarks/bench_workloads.py --case two-node --time-limit 20 \\
        --workers 1 --json-out benchmarks/workloads_two_node.jsonl
    PYTHONPATH=. python benchmarks/bench_workloads.py --case varlen --time-limit 25

``two-node`` (per-link latency): p = 8 over two nodes, one boundary 10x slower.
``varlen`` (variable-length micro-batches): p = 8, m = 32 micro-batches whose sequence lengths
are drawn from a lognormal distribution (``LENGTH_SIGMA``, seed ``LENGTH_SEED``: a long tail, a
few micro-batches several times the median), turned into factors by ``microbatch_scale:
{lengths, linear: 1, quadratic: 0.25}`` (reference: the mean length); F = B = W = 1 per stage
for the reference micro-batch, at 1x and 2x the 1F1B peak (given order). The baselines run in
each micro-batch order (``NAME``, ``NAME@longest-first``, ``NAME@shortest-first``).
``overlap`` (overlapped F&B pairs): DualPipe's own settings — p=8 devices, m=20 micro-batches
(the README's example), the V placement (16 virtual stages), a split backward, the pair time
``overlap_times = r (F + B)`` for r = 0.6, 0.75, 0.9 — on equal stages (F = B = W = 1) and on
unequal stages (F_s = B_s = W_s cycling 0.8 .. 1.4). Memory limit: DualPipeV's own peak
(2p + 1 = 17 chunk activations per device, the README's PP + 1), so both run in the same
memory. Rows: DualPipeV with its pairs, the optimizer (the tabu search pairing and splitting F
and B from the best baseline, then CP-SAT choosing the pairs), its lower bound; every schedule
validated; its own table (:data:`REPORTS`).

    python benchmarks/bench_workloads.py --case overlap --time-limit 20 --workers 1

``dualpipe`` (DualPipe, two model copies): DualPipe's own setting — p=8 devices (PP ranks),
m=20 micro-batches (the README's example, 10 each way), ``copies: 2`` (each device holds
model stage d of copy 1 and stage p-1-d of copy 2), a split backward, the pair time
``overlap_times = r (F + B)`` for r = 0.6, 0.75, 0.9, on equal stages (F = B = W = 1) and on
unequal ones (per model stage cycling 0.8 .. 1.4, as ``overlap``). Memory limit: DualPipe's
own peak (p + 1 = 9 stage activations per device, the README's PP + 1). Rows: DualPipe with
its pairs, the optimizer, its lower bound, and for reference DualPipeV on the same 8-stage
model cut in half (p/2 = 4 devices, m/2 = 10 micro-batches: the same work per device; equal
to DualPipe on symmetric stage times).

    python benchmarks/bench_workloads.py --case dualpipe --time-limit 20 --workers 1
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Callable
from pathlib import Path

from ppopt.baselines import applicable_baselines, baseline
from ppopt.metrics import compute_metrics, peak_memory
from ppopt.problem import Problem
from ppopt.schedule import Schedule
from ppopt.solver import SolveResult, SolverOptions, solve
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


LENGTH_SEED = 20
LENGTH_SIGMA = 0.8
MEDIAN_LENGTH = 2048


def varlen_lengths(m: int = 32) -> list[int]:
    """The case's sequence lengths: lognormal around ``MEDIAN_LENGTH``, fixed seed."""
    rng = random.Random(LENGTH_SEED)
    return [
        max(128, round(MEDIAN_LENGTH * rng.lognormvariate(0.0, LENGTH_SIGMA))) for _ in range(m)
    ]


def varlen() -> list[tuple[str, Problem]]:
    """p = 8, m = 32, split backward, long-tailed lengths, at 1x and 2x memory."""
    scale = {"lengths": varlen_lengths(), "linear": 1.0, "quadratic": 0.25}
    return [
        (
            f"varlen {limit}",
            Problem.create(
                8, 32, forward=1.0, backward=1.0, weight=1.0, microbatch_scale=scale,
                memory_limit=limit,
            ),
        )
        for limit in ("1x", "2x")
    ]  # fmt: skip


#: Every case by name (other workloads add theirs here).
CASES: dict[str, Case] = {"two-node": two_node, "varlen": varlen}


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
        "| variant | schedule | makespan | bubble rate (idle share) | / best baseline | fits |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        name = r["schedule"] + (f" ({r['status']})" if "status" in r else "")
        lines.append(
            f"| {r['variant']} | {name} | {r['makespan']:.4g} | {r['bubble_rate']:.2%} | "
            f"{r['ratio_to_best_baseline']:.3f} | {'yes' if r['fits'] else 'no'} |"
        )
    return "\n".join(lines)


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
        print(_pair_row(name, rival, result) + " |", flush=True)


def dualpipe_problems() -> list[tuple[str, Problem, Problem]]:
    """The ``dualpipe`` case: per variant its two-copy problem and DualPipeV's cut in half."""
    p, m = 8, 20
    unequal = [round(0.8 + 0.2 * ((5 * s) % 4), 3) for s in range(p)]
    out = []
    for label, times in (("equal", [1.0] * p), ("unequal", unequal)):
        for r in RATIOS:
            common = dict(
                forward=times, backward=times, weight=times,
                overlap=[round(r * 2 * t, 6) for t in times],
            )  # fmt: skip
            two = Problem.create(p, m, copies=2, memory_limit=[p + 1.0] * p, **common)
            half = Problem.create(
                p // 2, m // 2, num_chunks=2, placement="vshape", memory_limit="none", **common
            )
            out.append((f"{label} r={r}", two, half))
    return out


def dualpipe_case(args: argparse.Namespace) -> None:
    """DualPipe with real overlap against the optimizer, DualPipeV (cut in half) beside."""
    print(
        "| stages | F&B / (F+B) | DualPipe | pairs | optimizer | pairs | bound | vs DualPipe "
        "| DualPipeV (p/2, m/2) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name, problem, half in dualpipe_problems():
        rival = baseline("dualpipe", problem)
        caps = problem.memory_caps
        assert_valid(rival, caps)
        vee = baseline("dualpipev", half)
        assert_valid(vee)
        options = SolverOptions(time_limit=args.time_limit, workers=args.workers, seed=args.seed)
        result = solve(problem, options)
        best = result.schedule
        assert_valid(best, caps)
        print(_pair_row(name, rival, result) + f" | {vee.makespan:.6g} |", flush=True)


def _pair_row(name: str, rival: Schedule, result: SolveResult) -> str:
    """A table row's cells up to the change: variant, ratio, the rival's makespan and pairs,
    the optimizer's, its bound and the change (the caller closes the row)."""
    best = result.schedule
    change = (best.makespan - rival.makespan) / rival.makespan
    label, ratio = name.split(" r=")
    return (
        f"| {label} | {ratio} | {rival.makespan:.6g} | {len(rival.pairs)} | "
        f"{best.makespan:.6g} | {len(best.pairs)} | {result.lower_bound:.6g} | {change:+.2%}"
    )


#: Cases with a table of their own (DualPipeV / DualPipe against the optimizer, pairs).
REPORTS: dict[str, Callable[[argparse.Namespace], None]] = {
    "overlap": overlap_case,
    "dualpipe": dualpipe_case,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--case", choices=sorted([*CASES, *REPORTS]), required=True)
    parser.add_argument("--time-limit", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()
    if args.case in REPORTS:
        REPORTS[args.case](args)
        return
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
