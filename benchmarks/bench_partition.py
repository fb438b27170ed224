"""Partitions: ``partition: auto`` against the three baseline partitions, each with its best
schedule (issue 19).

For each profile, device count ``p`` and placement (one chunk, or two chunks in a V) the
benchmark solves

* the *even* split, torchtitan's *fewer-first-last* split at its best offset and the
  *balanced*-by-time min-max split (:func:`ppopt.solver.partition.baseline_partitions`), each
  with the optimizer (``ppopt.solve``: the best of every baseline schedule, then CP-SAT) for
  ``--time-limit`` seconds;
* ``partition: auto`` (:func:`ppopt.solver.partition.solve_partition`) with the same
  ``--time-limit`` for the whole search;
* auto's partition on the baselines' terms, one solve of ``--time-limit`` (the baseline's
  own solve when auto chose a baseline partition): the partition choice compared at equal
  solve time, since the search spends part of its limit searching;

and prints every makespan, auto's gain over the even split and over the best baseline
partition (its own result, and its partition at equal solve time), the search's lower bound
over every partition with its gap, and the search's wall time. ``m = 2p`` micro-batches, the
memory limit is ``1x`` (the even split's 1F1B peak, the same for every partition), split
backward (F, B, W), no latency. One line of JSON per case goes to ``--out`` (a rerun skips
the cases already there).

The profiles are written from public model shapes, in units of one transformer layer's
forward (times) and one layer's saved activations (memory), for sequence length 4096 and
micro-batch size 1:

* ``gpt-128k`` (Llama-3-8B: hidden 4096, 32 layers, GQA 8 KV heads, SwiGLU 14336, vocabulary
  128,256): a block is 2·4096·218M + 4·4096²·4096 ≈ 2.06 TFLOP forward; the LM head
  2·4096·4096·128256 ≈ 4.3 TFLOP plus the loss, ≈ 2.2 blocks; B ≈ 1.1 and W ≈ 0.9 of F for
  a block (attention's core has no W), B = W = F for the head; activations: a block ≈ 34·s·h
  bytes (flash attention, no recomputation) = 1, the head's fp32 + bf16 logits
  ≈ 6·s·V bytes ≈ 5.5 blocks, the embedding's output ≈ 0.06;
* ``gemma2-256k`` (Gemma-2-9B: hidden 3584, 42 layers, q/o 4096 and k/v 2048 wide, MLP
  14336, vocabulary 256,000): a block ≈ 2·4096·198M + 4·4096²·3584 ≈ 1.86 TFLOP, the head
  2·4096·917M ≈ 7.5 TFLOP plus the loss ≈ 4.2 blocks; the logits ≈ 6·s·V bytes ≈ 12.6
  blocks' activations: the large-vocabulary case;
* ``deepseek-v3`` (hidden 7168, 3 dense + 58 MoE layers, one MTP layer, vocabulary 129,280;
  37B activated parameters, ≈ 0.58B per layer): dense and MoE layers have about the same
  FLOPs, a MoE layer pays its expert-parallel all-to-all on top (1.5x F, more activation:
  routing buffers), the head ≈ 1.4 layers, the MTP module a MoE layer plus its own head
  pass. 64 layers in all: the "p = 16 over 64 layers" case.

    python benchmarks/bench_partition.py --workers 1                 # every case, 10 s each
    python benchmarks/bench_partition.py --profile gpt-128k --p 8 --time-limit 20
    python benchmarks/bench_partition.py --out run2.jsonl --table run1.jsonl   # medians
    python benchmarks/bench_partition.py --out run1.jsonl --print-only         # table only

The machine may be shared: say so with the figures (they are wall-clock-limited solves).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ppopt.layers import Layer, Profile  # noqa: E402
from ppopt.limits import MemoryLimit  # noqa: E402
from ppopt.partition import LayeredProblem  # noqa: E402
from ppopt.solver import SolverOptions, solve  # noqa: E402
from ppopt.solver.partition import baseline_partitions, solve_partition  # noqa: E402

BASELINES = ("even", "fewer-first-last", "balanced")


def gpt_128k() -> Profile:
    """Llama-3-8B's shape: embedding, 32 blocks, LM head + loss (module docstring)."""
    return Profile.expand(
        [
            Layer("tok_embeddings", 0.01, 0.01, 0.06, weight=0.03),
            Layer("layers", 1.0, 1.1, 1.0, weight=0.9, count=32),
            Layer("output", 2.2, 2.2, 5.5, weight=2.1),
        ]
    )


def gemma2_256k() -> Profile:
    """Gemma-2-9B's shape: embedding, 42 blocks, a 256k-vocabulary LM head + loss."""
    return Profile.expand(
        [
            Layer("embed_tokens", 0.01, 0.01, 0.05, weight=0.05),
            Layer("layers", 1.0, 1.1, 1.0, weight=0.9, count=42),
            Layer("lm_head", 4.2, 4.2, 12.6, weight=4.0),
        ]
    )


def deepseek_v3() -> Profile:
    """DeepSeek-V3's shape: embedding, 3 dense, 58 MoE, MTP, head (module docstring)."""
    return Profile.expand(
        [
            Layer("embed", 0.02, 0.02, 0.05, weight=0.05),
            Layer("layers", 1.0, 1.1, 1.0, weight=0.9, count=3),
            Layer("layers", 1.5, 1.6, 1.4, weight=1.0, count=58),
            Layer("mtp", 2.9, 3.0, 5.0, weight=2.3),
            Layer("output", 1.4, 1.4, 4.5, weight=1.4),
        ]
    )


PROFILES = {"gpt-128k": gpt_128k, "gemma2-256k": gemma2_256k, "deepseek-v3": deepseek_v3}
PLACEMENTS = {"1chunk": (1, "interleaved"), "vshape": (2, "vshape")}


def run_case(profile: str, p: int, placement: str, options: SolverOptions) -> dict[str, object]:
    """One case: the three baseline partitions solved, then the auto search."""
    chunks, name = PLACEMENTS[placement]
    layered = LayeredProblem(
        PROFILES[profile](), num_devices=p, num_microbatches=2 * p, num_chunks=chunks,
        placement=name, memory_limit=MemoryLimit(factor=1.0),
    )  # fmt: skip
    row: dict[str, object] = {
        "profile": profile,
        "p": p,
        "placement": placement,
        "layers": len(layered.profile),
        "time_limit": options.time_limit,
    }
    makespans = {}
    for label, sizes in baseline_partitions(layered).items():
        key = label.split("(")[0]
        result = solve(layered.problem(sizes), options)
        makespans[key] = result.objective_value
        row[key] = result.objective_value
        row[f"{key}_sizes"] = list(sizes)
        row[f"{key}_label"] = label
        row[f"{key}_status"] = str(result.status)
    started = time.perf_counter()
    search = solve_partition(layered, options)
    row.update(
        auto=search.result.objective_value,
        auto_sizes=list(search.sizes),
        auto_status=str(search.result.status),
        partition_bound=search.lower_bound,
        partition_gap=search.gap,
        search_time=time.perf_counter() - started,
        evaluated=search.evaluated,
    )
    auto = search.result.objective_value
    row["vs_even"] = 1 - auto / makespans["even"]
    row["vs_best_baseline"] = 1 - auto / min(makespans.values())
    # The partition alone, on the baselines' terms: auto's partition with one solve of the
    # same limit (the baseline's own solve when auto chose a baseline partition).
    same = [key for key in makespans if row[f"{key}_sizes"] == list(search.sizes)]
    if same:
        row["auto_partition"] = makespans[same[0]]
        row["auto_partition_source"] = f"same as {same[0]}"
    else:
        row["auto_partition"] = solve(layered.problem(search.sizes), options).objective_value
        row["auto_partition_source"] = "solved"
    row["partition_vs_best"] = 1 - row["auto_partition"] / min(makespans.values())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), action="append")
    parser.add_argument("--p", type=int, action="append", help="devices (default 4, 8, 16)")
    parser.add_argument("--placement", choices=sorted(PLACEMENTS), action="append")
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds per solve")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "partition.jsonl")
    parser.add_argument(
        "--table",
        type=Path,
        nargs="*",
        default=[],
        help="more result files (other runs): the table gives medians",
    )
    parser.add_argument(
        "--print-only",
        action="store_true",
        help="print the table of --out and --table, solve nothing",
    )
    args = parser.parse_args()
    if args.print_only:
        print_table([args.out, *args.table])
        return
    options = SolverOptions(time_limit=args.time_limit, workers=args.workers)
    done = set()
    if args.out.exists():
        for line in args.out.read_text().splitlines():
            r = json.loads(line)
            done.add((r["profile"], r["p"], r["placement"], r["time_limit"]))
    for profile in args.profile or list(PROFILES):
        for p in args.p or [4, 8, 16]:
            for placement in args.placement or list(PLACEMENTS):
                if (profile, p, placement, args.time_limit) in done:
                    continue
                row = run_case(profile, p, placement, options)
                with args.out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(format_row(row), flush=True)
    print_table([args.out, *args.table])


def format_row(row: dict) -> str:
    """One case on one line, as it finishes."""
    cells = " ".join(f"{k} {row.get(k, float('nan')):.4g}" for k in (*BASELINES, "auto"))
    return (
        f"{row['profile']:<12} p={row['p']:<2} {row['placement']:<7} {cells}  "
        f"vs even {row['vs_even']:+.1%}  vs best {row['vs_best_baseline']:+.1%}  "
        f"partition {row['auto_partition']:.4g} ({row['auto_partition_source']}) "
        f"vs best {row['partition_vs_best']:+.1%}  "
        f"gap {row['partition_gap']:.1%}  search {row['search_time']:.1f} s"
    )


NUMBERS = (
    *BASELINES,
    "auto",
    "vs_even",
    "vs_best_baseline",
    "auto_partition",
    "partition_vs_best",
    "partition_bound",
    "partition_gap",
    "search_time",
)


def median_rows(paths: list[Path]) -> list[dict]:
    """One row per case over the result files (each a run of the benchmark): every number is
    the median over the runs that have the case, ``runs`` how many."""
    cases: dict[tuple, list[dict]] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            r = json.loads(line)
            cases.setdefault((r["profile"], r["p"], r["placement"]), []).append(r)
    out = []
    for rows in cases.values():
        row = dict(rows[0], runs=len(rows))
        for key in NUMBERS:
            values = [r[key] for r in rows if key in r]
            if values:
                row[key] = statistics.median(values)
        row["auto_at_or_below_best"] = sum(r["vs_best_baseline"] >= -1e-9 for r in rows)
        row["partition_at_or_below_best"] = sum(
            r.get("partition_vs_best", math.nan) >= -1e-9 for r in rows
        )
        out.append(row)
    return out


def print_table(paths: list[Path]) -> None:
    """The markdown table of every case, medians over ``paths``."""
    print(
        "\n| profile | p | placement | even | fewer-first-last | balanced | auto | auto vs even "
        "| auto vs best baseline | runs with auto <= best | auto's partition, one solve "
        "| its vs best baseline | runs with it <= best | bound over all partitions (gap) "
        "| search s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in median_rows(paths):
        print(
            f"| {r['profile']} | {r['p']} | {r['placement']} | {r['even']:.4g} | "
            f"{r.get('fewer-first-last', float('nan')):.4g} | {r['balanced']:.4g} | "
            f"{r['auto']:.4g} | {r['vs_even']:+.1%} | {r['vs_best_baseline']:+.1%} | "
            f"{r['auto_at_or_below_best']}/{r['runs']} | "
            f"{r.get('auto_partition', math.nan):.4g} ({r.get('auto_partition_source', '-')}) | "
            f"{r.get('partition_vs_best', math.nan):+.1%} | "
            f"{r['partition_at_or_below_best']}/{r['runs']} | "
            f"{r['partition_bound']:.4g} ({r['partition_gap']:.1%}) | {r['search_time']:.1f} |"
        )


if __name__ == "__main__":
    main()
