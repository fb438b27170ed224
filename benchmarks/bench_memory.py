"""Memory levers: the optimizer below 1F1B's memory, with and without recomputation (issue 18).

Cases: one chunk and the V placement (two chunks), p in {4, 8, 16}, m in {2p, 4p}, equal
stages (F = B = W = 1) and unequal ones (a repeating per-stage pattern), split backward (the
setting of ZB-H1, ZB-V, V-Half and V-Min). Memory limits 1x, 0.75x, 0.5x, 1/3x; on the V
placement also the peaks of V-Half and V-Min themselves (the optimizer at exactly their
memory) and 1.5 activations, below one micro-batch's two (only recomputation fits there).
Each limit runs with ``recompute: none`` and ``recompute: auto`` (R time = F time,
checkpoint 0).

Per run: the optimizer's makespan, bubble rate, status, gap and wall time, and the best
baseline that fits the same limit (every registered baseline; for ``auto`` also each baseline
with every micro-batch recomputed, ``recompute: all``, e.g. full-recompute 1F1B and ZB-H1 with
recomputation), plus V-Half / V-Min, 1F1B-recompute and ZB-H1-recompute where they apply.
Results go to a JSON-lines file line by line; a rerun skips the runs already there.

    python benchmarks/bench_memory.py --out benchmarks/memory.jsonl          # every case
    python benchmarks/bench_memory.py --out m.jsonl --p 4 --time-scale 0.5   # a quick subset
    python benchmarks/bench_memory.py --summary benchmarks/memory.jsonl      # the tables only

Time limits are ``3 s, 6 s, 10 s`` for p = 4, 8, 16 (times ``--time-scale``), one CP-SAT
worker: the machine this was measured on is shared, so wall times are under load.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ppopt.baselines import applicable_baselines  # noqa: E402
from ppopt.errors import NoScheduleError  # noqa: E402
from ppopt.limits import fits  # noqa: E402
from ppopt.metrics import compute_metrics, peak_memory  # noqa: E402
from ppopt.problem import Problem  # noqa: E402
from ppopt.solver import SolverOptions, solve  # noqa: E402
from ppopt.validate import validate  # noqa: E402

LIMITS = ("1x", "0.75x", "0.5x", "1/3x")
V_LIMITS = ("v-half", "v-min", "1.5")  # the baselines' own peaks, and below one micro-batch
TIME_LIMIT = {4: 3.0, 8: 6.0, 16: 10.0}
PATTERN_F, PATTERN_B, PATTERN_W = (
    (1.0, 1.5, 1.0, 0.75),
    (1.0, 1.25, 1.5, 1.0),
    (1.0, 0.75, 1.25, 1.0),
)


def make_problem(p: int, m: int, v: bool, unequal: bool, recompute: str, limit: object) -> Problem:
    """One benchmark problem (split backward)."""
    n = 2 * p if v else p
    if unequal:
        times = {
            key: [pattern[s % 4] for s in range(n)]
            for key, pattern in (("f", PATTERN_F), ("b", PATTERN_B), ("w", PATTERN_W))
        }
    else:
        times = {"f": 1.0, "b": 1.0, "w": 1.0}
    return Problem.create(
        p,
        m,
        forward=times["f"],
        backward=times["b"],
        weight=times["w"],
        num_chunks=2 if v else 1,
        placement="vshape" if v else "interleaved",
        recompute=recompute,
        memory_limit=limit,
    )


def resolve_limit(problem: Problem, label: str) -> object:
    """The limit as ``memory.limit`` takes it; ``v-half`` / ``v-min``: that baseline's peak."""
    if label in ("v-half", "v-min"):
        from ppopt.baselines import baseline

        return max(peak_memory(baseline(label, problem.with_limit("none"))))
    return float(label) if label[0].isdigit() and not label.endswith("x") else label


def fitting_baselines(problem: Problem) -> dict[str, tuple[float, float]]:
    """Every baseline (and, for auto, its full-recompute variant) that fits the limit:
    name -> (makespan, bubble rate)."""
    caps = problem.memory_caps
    variants = [("", problem.without_recompute())]
    if problem.recompute == "auto":
        variants.append(("-recompute", problem.with_recompute("all")))
    out = {}
    for suffix, variant in variants:
        try:
            schedules = applicable_baselines(variant)
        except NoScheduleError:
            continue
        for name, schedule in schedules.items():
            if fits(peak_memory(schedule), caps):
                metrics = compute_metrics(schedule)
                out[name + suffix] = (metrics.makespan, metrics.bubble_rate)
    return out


def run_case(key: dict[str, object], scale: float) -> dict[str, object]:
    """Solve one case and measure the baselines beside it."""
    p, m, v = int(key["p"]), int(key["m"]), bool(key["v"])  # type: ignore[call-overload]
    base = make_problem(p, m, v, bool(key["unequal"]), str(key["recompute"]), "none")
    limit = resolve_limit(base, str(key["limit"]))
    problem = base.with_limit(limit)
    record: dict[str, object] = {**key, "limit_value": limit, "tasks": problem.num_tasks}
    try:
        problem.check_one_microbatch_fits()
    except NoScheduleError as error:
        return {**record, "status": "NO_SCHEDULE", "reason": str(error)}
    started = time.perf_counter()
    result = solve(problem, SolverOptions(workers=1, time_limit=TIME_LIMIT[p] * scale))
    wall = time.perf_counter() - started
    metrics = compute_metrics(result.schedule)
    violations = validate(result.schedule, problem.memory_caps)
    others = fitting_baselines(problem)
    best = min(others.items(), key=lambda item: item[1][0]) if others else None
    return {
        **record,
        "status": str(result.status),
        "valid": not violations,  # the independent validator, memory limit included
        "makespan": metrics.makespan,
        "bubble_rate": metrics.bubble_rate,
        "lower_bound": result.lower_bound,
        "gap": result.gap,
        "wall_time": wall,
        "source": result.source,
        "recomputed": result.schedule.problem.num_recomputed,
        "best_baseline": None if best is None else best[0],
        "best_baseline_makespan": None if best is None else best[1][0],
        "best_baseline_bubble": None if best is None else best[1][1],
        "baselines": {name: value[0] for name, value in sorted(others.items())},
    }


def cases(ps: list[int]) -> list[dict[str, object]]:
    """Every case key, small ones first."""
    out = []
    for p in ps:
        for m in (2 * p, 4 * p):
            for v in (False, True):
                for unequal in (False, True):
                    for limit in (*LIMITS, *(V_LIMITS if v else ())):
                        for recompute in ("none", "auto"):
                            if limit == "1.5" and recompute == "none":
                                continue  # nothing fits without recomputation
                            out.append(
                                {"p": p, "m": m, "v": v, "unequal": unequal, "limit": limit,
                                 "recompute": recompute}
                            )  # fmt: skip
    return out


def _key(record: dict[str, object]) -> tuple[object, ...]:
    return tuple(record[k] for k in ("p", "m", "v", "unequal", "limit", "recompute"))


def run_all(out: Path, ps: list[int], scale: float) -> None:
    """Run every case not yet in ``out``, appending one JSON line each."""
    done = set()
    if out.exists():
        records = [json.loads(line) for line in out.read_text().splitlines() if line]
        done = {_key(r) for r in records if "valid" in r or r.get("status") == "NO_SCHEDULE"}
    for key in cases(ps):
        if _key(key) in done:
            continue
        record = run_case(key, scale)
        with out.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        print(_row(record), flush=True)


def _row(r: dict[str, object]) -> str:
    place, stages = "V  " if r["v"] else "1ch", "uneq" if r["unequal"] else "eq  "
    shape = f"p={r['p']:<2} m={r['m']:<3} {place} {stages}"
    head = f"{shape} {str(r['limit']):<6} {str(r['recompute']):<4}"
    if r.get("status") == "NO_SCHEDULE":
        return f"{head} no schedule"
    best = r["best_baseline_makespan"]
    gain = "" if best is None else f"{(best - r['makespan']) / best:+7.2%}"  # type: ignore[operator]
    return (
        f"{head} opt {r['makespan']:8.6g} bubble {r['bubble_rate']:6.2%} {r['status']:<8} "
        f"gap {r['gap']:6.2%} {r['wall_time']:5.1f}s R {r['recomputed']:<4} | best baseline "
        f"{r['best_baseline']} {best} {gain}"
    )


def summary(path: Path) -> None:
    """The tables of benchmarks/README.md and each issue target, met or not."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line]
    records = list({_key(r): r for r in records}.values())  # a rerun's line replaces
    for r in records:
        print(_row(r))
    solved = [r for r in records if r.get("status") != "NO_SCHEDULE"]
    invalid = [_key(r) for r in solved if not r.get("valid")]
    print(f"\n# every optimizer schedule valid (independent validator): {len(solved)} runs, "
          f"invalid or unchecked {len(invalid)} {invalid}")  # fmt: skip
    print("\n# Target 1: V placements at 0.5x, 1/3x and at V-Half's / V-Min's own peak")
    for name in ("v-half", "v-min"):
        rows = [
            r for r in solved
            if r["v"] and r["limit"] in ("0.5x", "1/3x", name) and name in r["baselines"]
        ]  # fmt: skip
        at_or_below = sum(r["makespan"] <= r["baselines"][name] * (1 + 1e-9) for r in rows)
        unequal = [r for r in rows if r["unequal"]]
        strictly = sum(r["makespan"] < r["baselines"][name] * (1 - 1e-9) for r in unequal)
        gains = [1 - r["makespan"] / r["baselines"][name] for r in rows]
        median = statistics.median(gains) if gains else float("nan")
        print(
            f"{name}: fits in {len(rows)} runs; optimizer at or below in {at_or_below}; "
            f"strictly below on unequal stages in {strictly}/{len(unequal)}; median gain "
            f"{median:.2%}"
        )
    print("\n# Target 2: recompute auto vs full-recompute 1F1B / ZB-H1 where they do not fit")
    for name in ("1f1b", "zb-h1"):
        rows = [
            r for r in solved
            if r["recompute"] == "auto" and not r["v"] and name not in r["baselines"]
            and f"{name}-recompute" in r["baselines"]
        ]  # fmt: skip
        ok = sum(r["makespan"] <= r["baselines"][f"{name}-recompute"] * (1 + 1e-9) for r in rows)
        gains = [1 - r["makespan"] / r["baselines"][f"{name}-recompute"] for r in rows]
        median = statistics.median(gains) if gains else float("nan")
        print(
            f"{name}-recompute: {len(rows)} runs, optimizer at or below in {ok}; "
            f"median gain {median:.2%}"
        )
    below = [r for r in solved if r["limit"] == "1.5"]
    print(
        f"below one micro-batch (V, limit 1.5): {len(below)} runs solved with recompute, "
        f"none fits without"
    )
    pairs = {}
    for r in solved:
        if r["limit"] == "1x":
            pairs.setdefault(_key(r)[:4], {})[r["recompute"]] = r["makespan"]
    worse = [
        k
        for k, v in pairs.items()
        if "auto" in v and "none" in v and v["auto"] > v["none"] * (1 + 1e-9)
    ]
    print(f"at 1x: auto worse than none in {len(worse)} of {len(pairs)} cases {worse}")


def offload_table(ps: list[int]) -> None:
    """Offload, baselines only (no optimizer run): per p (m = 4p,
    F = B = W = 1), copy time and limit, the best baseline that fits without offload, with
    ``recompute: all`` and with ``offload: all`` (makespan, bubble rate), and the bubble
    change of the best offloading one against the best that fits without offload."""
    head = ("p, m", "copy", "limit", "best none", "best recompute all", "best offload all")
    print("| " + " | ".join(head) + " | bubble vs none |")
    print("|---|---|---|---|---|---|---|")
    for p in ps:
        for copy in (0.5, 1.0):
            for limit in ("1x", "0.5x", "0.33x"):
                plain = make_problem(p, 4 * p, False, False, "none", limit)
                caps = plain.memory_caps
                best = {}
                for label, variant in (
                    ("none", plain),
                    ("recompute", plain.with_recompute("all")),
                    ("offload", plain.with_offload("all", copy)),
                ):
                    found = [
                        (compute_metrics(s).makespan, compute_metrics(s).bubble_rate, name)
                        for name, s in applicable_baselines(variant).items()
                        if fits(peak_memory(s), caps)
                    ]
                    best[label] = min(found) if found else None

                def cell(row: tuple[float, float, str] | None) -> str:
                    return "-" if row is None else f"{row[2]} {row[0]:g}, {row[1]:.1%}"

                change = "-"
                if best["none"] and best["offload"]:
                    change = f"{(best['offload'][1] - best['none'][1]) / best['none'][1]:+.0%}"
                print(
                    f"| {p}, {4 * p} | {copy:g} F | {limit} | {cell(best['none'])} | "
                    f"{cell(best['recompute'])} | {cell(best['offload'])} | {change} |"
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "memory.jsonl")
    parser.add_argument("--p", type=int, nargs="*", default=[4, 8, 16])
    parser.add_argument("--time-scale", type=float, default=1.0)
    parser.add_argument("--summary", type=Path, help="print the tables of a results file")
    parser.add_argument("--offload", action="store_true", help="the offload table (baselines)")
    args = parser.parse_args()
    if args.offload:
        offload_table([p for p in args.p if p <= 8])
        return
    if args.summary:
        summary(args.summary)
        return
    run_all(args.out, args.p, args.time_scale)
    summary(args.out)


if __name__ == "__main__":
    main()
