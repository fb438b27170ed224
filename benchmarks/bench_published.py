"""ppopt against the zero-bubble papers' published bubble rates (issue 17).

Rows: the 12 rows of Table 5 of "Zero Bubble Pipeline Parallelism" (Qi et al., arXiv:2401.10241)
at 1x memory (published: ZB-1p) and at 2x (published: ZB-2p), and the 9 ZB-V rows of its
Table 8 at 1x (V placement, two chunks per device). Profiles: T_F, T_B, T_W, T_comm per stage from
the paper's Table 9 (one chunk, ms) and the per-chunk settings of the authors' V-schedule runs
(µs, listed in issue 17). Memory: activation 1 per stage (0.5 per chunk), of which the part
``M_W / M_B = 32h / (34h + 5as)`` (the paper's Table 1, with its model sizes) stays until W.

For each row: the published bubble ``(span - work) / span``, the authors' heuristic as ppopt
reimplements it (``zb-auto`` / ``zbv-auto``, in the floor), ppopt's result with
``objective: span``, the bound's bubble, the gap and the status.

    python benchmarks/bench_published.py --time-limit 60 --workers 2 --out published.jsonl
    python benchmarks/bench_published.py --rows t5-28.3B-96-2x,t8-6.2B-48   # a subset
    python benchmarks/bench_published.py --random --seed 18   # random unequal instances

Published values: Table 5's ZB-1p and ZB-2p columns as the authors' own script prints them
(``megatron/core/pipeline_parallel/efficiency.py`` of sail-sg/zero-bubble-pipeline-parallelism,
``iclr_bubble_rates`` and the table in its closing string, which also gives the model sizes and
``s = 1024`` used for the memory shares); the ZB-V 6.2B values as quoted in issue 17; ``-``
where no published value is at hand (the other six ZB-V rows).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass

from ppopt.atomic import atomic_write_text
from ppopt.baselines import baseline
from ppopt.errors import NotApplicableError
from ppopt.metrics import compute_metrics
from ppopt.problem import Problem
from ppopt.solver import SolverOptions, solve
from ppopt.validate import assert_valid

#: Model sizes as the authors' own script sets them (``efficiency.py``, see the module
#: docstring): hidden size h, attention heads a, sequence length s.
MODELS = {"1.5B": (2304, 24, 1024), "6.2B": (4096, 32, 1024), "14.6B": (5120, 40, 1024),
          "28.3B": (6144, 48, 1024)}  # fmt: skip


def retained_share(model: str) -> float:
    """``M_W / M_B``: the part of a stage's activation memory W still needs after B."""
    h, a, s = MODELS[model]
    return 32 * h / (34 * h + 5 * a * s)


#: Table 9 (one chunk): model, p, m -> T_F, T_B, T_W, T_comm (ms).
TABLE9 = {
    ("1.5B", 8, 24): (18.522, 18.086, 9.337, 0.601),
    ("1.5B", 8, 32): (18.513, 18.086, 9.331, 0.626),
    ("1.5B", 8, 64): (18.546, 18.097, 9.321, 0.762),
    ("6.2B", 8, 24): (29.718, 29.444, 19.927, 0.527),
    ("6.2B", 8, 32): (29.802, 29.428, 19.530, 0.577),
    ("6.2B", 8, 64): (29.935, 29.621, 19.388, 0.535),
    ("14.6B", 16, 48): (11.347, 11.248, 8.132, 0.377),
    ("14.6B", 16, 64): (11.307, 11.254, 8.101, 0.379),
    ("14.6B", 16, 128): (11.325, 11.308, 8.109, 0.378),
    ("28.3B", 32, 96): (10.419, 10.207, 7.715, 0.408),
    ("28.3B", 32, 128): (10.408, 10.204, 7.703, 0.408),
    ("28.3B", 32, 256): (10.402, 10.248, 7.698, 0.460),
}
#: Table 5, bubble rates of ZB-1p (1x memory) and ZB-2p (2x), same keys.
ZB_1P = dict(zip(TABLE9, (0.1585, 0.1242, 0.0674, 0.1323, 0.1045, 0.0554, 0.1397, 0.1088,
                          0.0576, 0.1421, 0.1106, 0.0594), strict=True))  # fmt: skip
ZB_2P = dict(zip(TABLE9, (0.0433, 0.0039, 0.0026, 0.0029, 0.0022, 0.0010, 0.0066, 0.0054,
                          0.0028, 0.0038, 0.0029, 0.0018), strict=True))  # fmt: skip
#: Table 8 (ZB-V, 1x): model, p, m -> per-chunk T_F, T_B, T_W, T_comm (µs), published bubble.
TABLE8 = {
    ("6.2B", 16, 48): ((14407, 14380, 9676, 1610), 0.0697),
    ("6.2B", 16, 64): ((14412, 14393, 9688, 1621), 0.0533),
    ("6.2B", 16, 128): ((14316, 14306, 9639, 1619), 0.0274),
    ("14.6B", 24, 72): ((6763, 6969, 5251, 755), None),
    ("14.6B", 24, 96): ((6783, 6984, 5259, 758), None),
    ("14.6B", 24, 192): ((6785, 6990, 5260, 770), None),
    ("28.3B", 32, 96): ((9458, 9748, 7288, 879), None),
    ("28.3B", 32, 128): ((9469, 9744, 7306, 892), None),
    ("28.3B", 32, 256): ((9447, 9644, 7193, 887), None),
}


@dataclass(frozen=True)
class Row:
    """One benchmark row: its id, the problem, the published bubble and the heuristic's name."""

    name: str
    problem: Problem
    published: float | None
    heuristic: str


def rows() -> list[Row]:
    """Every row, Table 5 at 1x and 2x, then Table 8."""
    out = []
    for (model, p, m), (f, b, w, comm) in TABLE9.items():
        share = retained_share(model)
        for limit, published in (("1x", ZB_1P), ("2x", ZB_2P)):
            problem = Problem.create(
                p, m, f, b, weight=w, p2p=comm, retained=share, memory_limit=limit
            )
            out.append(Row(f"t5-{model}-{m}-{limit}", problem, published[model, p, m], "zb-auto"))
    for (model, p, m), ((f, b, w, comm), published) in TABLE8.items():
        problem = Problem.create(
            p, m, f / 1000, b / 1000, weight=w / 1000, p2p=comm / 1000, num_chunks=2,
            placement="vshape", activation=0.5, retained=0.5 * retained_share(model),
            memory_limit="1x",
        )  # fmt: skip
        out.append(Row(f"t8-{model}-{m}", problem, published, "zbv-auto"))
    return out


def random_rows(seed: int = 17) -> list[Row]:
    """Random unequal-stage instances (issue 17's second target): p in {8, 16}, m in {2p, 4p},
    1x and 2x, one chunk and V; stage times drawn around 1 (F), 1.1 (B), 0.8 (W) +-30 %,
    p2p 0.05, retained 0.3 of the activation. ``published`` is ``-``: the comparison is with
    the heuristic, which is in ppopt's floor."""
    import random

    rng = random.Random(seed)
    out = []
    for p in (8, 16):
        for m in (2 * p, 4 * p):
            for limit in ("1x", "2x"):
                for chunks in (1, 2):
                    n = p * chunks
                    f = [round(rng.uniform(0.7, 1.3), 3) for _ in range(n)]
                    b = [round(1.1 * x * rng.uniform(0.85, 1.15), 3) for x in f]
                    w = [round(0.8 * x * rng.uniform(0.85, 1.15), 3) for x in f]
                    problem = Problem.create(
                        p, m, f, b, weight=w, p2p=0.05, num_chunks=chunks,
                        placement="vshape" if chunks == 2 else "interleaved",
                        activation=1.0 / chunks, retained=0.3 / chunks, memory_limit=limit,
                    )  # fmt: skip
                    name = f"rand-p{p}-m{m}-{limit}-{'v' if chunks == 2 else 'one'}"
                    out.append(Row(name, problem, None, "zbv-auto" if chunks == 2 else "zb-auto"))
    return out


def measure(row: Row, time_limit: float, workers: int) -> dict[str, object]:
    """Solve one row and compare it with the published value and the heuristic."""
    problem = row.problem
    try:
        own = compute_metrics(baseline(row.heuristic, problem))
    except NotApplicableError:  # no knob setting fits the limit
        own = None
    options = SolverOptions(time_limit=time_limit, workers=workers, objective="span")
    started = time.perf_counter()
    result = solve(problem, options)
    seconds = time.perf_counter() - started
    assert_valid(result.schedule, limit=problem.memory_caps)
    metrics = compute_metrics(result.schedule)
    work = max(metrics.busy)
    bound_bubble = max(0.0, (result.lower_bound - work) / result.lower_bound)
    at_or_below = None if row.published is None else round(metrics.zb_bubble, 4) <= row.published
    floor = result.source not in ("cp-sat", "window", "tabu")
    return {
        "row": row.name,
        "p": problem.num_devices,
        "m": problem.num_microbatches,
        "tasks": problem.num_tasks,
        "published": row.published,
        "heuristic": row.heuristic,
        "heuristic_bubble": None if own is None else own.zb_bubble,
        "heuristic_span": None if own is None else own.span,
        "ppopt_bubble": metrics.zb_bubble,
        "ppopt_span": metrics.span,
        "bound_bubble": bound_bubble,
        "lower_bound": result.lower_bound,
        "bound_source": result.bound_source,
        "gap": result.gap,
        "status": str(result.status),
        "source": result.source,
        "at_or_below_published": at_or_below,
        "not_worse_than_heuristic": own is None or metrics.span <= own.span * (1 + 1e-12),
        "improved_floor": not floor,
        "seconds": round(seconds, 2),
        "time_limit": time_limit,
        "workers": workers,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rows", default="", help="comma-separated row ids (default: all)")
    parser.add_argument("--out", default="", help="JSONL file of the results")
    parser.add_argument(
        "--random", action="store_true", help="the random unequal instances instead"
    )
    parser.add_argument(
        "--seed", type=int, help="the random instances' seed (with --random; default 17)"
    )
    args = parser.parse_args()
    if args.seed is not None and not args.random:
        sys.exit("error: --seed: only the random instances (--random) have a seed")
    seed = 17 if args.seed is None else args.seed
    table = random_rows(seed) if args.random else rows()
    chosen = [r for r in table if not args.rows or r.name in args.rows.split(",")]
    if not chosen:
        known = ", ".join(r.name for r in table)
        sys.exit(f"error: --rows: none of {args.rows!r} is a row (known: {known})")
    header = ("row", "tasks", "published", "heuristic", "ppopt", "bound", "gap_%", "status", "s")
    if args.random:  # unequal stages: the bubble is of the widest device; spans compare
        header = ("row", "tasks", "heuristic span", "ppopt span", "bound", "gap_%", "status", "s")
    print(" | ".join(header), flush=True)
    lines = []
    for row in chosen:
        record = measure(row, args.time_limit, args.workers)
        if args.random:
            record["seed"] = seed
        lines.append(json.dumps(record))
        if args.out:
            atomic_write_text(args.out, "\n".join(lines) + "\n")
        heuristic = record["heuristic_bubble"]
        published = "-" if row.published is None else f"{row.published:.4f}"
        tail = (
            f"{100 * float(record['gap']):.2f}",  # type: ignore[arg-type]
            f"{record['status']} ({record['source']})",
            str(record["seconds"]),
        )
        if args.random:
            own_span = record["heuristic_span"]
            cells: tuple[str, ...] = (
                row.name,
                str(record["tasks"]),
                "-" if own_span is None else f"{own_span:.3f}",
                f"{record['ppopt_span']:.3f}",
                f"{record['lower_bound']:.3f}",
                *tail,
            )
        else:
            cells = (
                row.name,
                str(record["tasks"]),
                published,
                "-" if heuristic is None else f"{heuristic:.4f}",
                f"{record['ppopt_bubble']:.4f}",
                f"{record['bound_bubble']:.4f}",
                *tail,
            )
        print(" | ".join(cells), flush=True)
    if args.random:
        print(summary([json.loads(line) for line in lines]))


def summary(records: list[dict]) -> str:
    """The random study's counts: below the heuristic, below ppopt's own floor, and the
    floors proven optimal (which nothing can improve)."""
    below = sum(
        r["heuristic_span"] is not None and r["ppopt_span"] < r["heuristic_span"] * (1 - 1e-12)
        for r in records
    )
    improved = sum(bool(r["improved_floor"]) for r in records)
    proven = sum(not r["improved_floor"] and r["status"] == "OPTIMAL" for r in records)
    worse = sum(not r["not_worse_than_heuristic"] for r in records)
    n = len(records)
    return (
        f"below the heuristic on {below} of {n}; below ppopt's floor on {improved} of {n} "
        f"({proven} floors proven optimal); worse than the heuristic on {worse}"
    )


if __name__ == "__main__":
    main()
