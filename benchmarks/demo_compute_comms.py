"""PyTorch's ``compute_comms`` table as ppopt exports it (``ppopt export --format torch-comms``):
the worked 2-rank example, and the export timed against the compute-only export.

The format and the placement rule are documented in ``ppopt/export/torch_comms.py`` (SEND right
after its producer, each RECV posted by its planned arrival and then made per-peer FIFO,
``REDUCE_GRAD`` after each stage's last W/B); ``_PipelineScheduleRuntime._load_csv(path,
format="compute_comms")`` runs such a table exactly as written. This script uses only the CLI
and the schedule files (no ppopt import):

1. the worked example of docs/runtime_torch.md: split 1F1B, p=2, m=2, exported with
   ``--format torch-comms`` (must equal :data:`WORKED_EXAMPLE`), run both ways, gradients
   compared; PyTorch's own lowering of the compute-only table is printed beside it;
2. p=4, m=8, F=B=W=1 (unit ``--unit-ms``), planned with ``--runtime torch``: 1F1B, ZB-H1, the
   optimum at 1x memory and ZB-V (2 chunks, V placement), each exported as ``torch``
   (compute-only: PyTorch inserts the comms) and ``torch-comms``, run on sleep-emulated stages
   (``tests/torch_runtime/emulated.py``, gloo, one process per rank) ``--repeats`` times
   alternately, ``--steps`` steps each (the first is a warm-up). Reported: the median step
   span of each run (first compute start to last compute end, in units), the largest
   gradient difference between the two exports, and whether every executed table posts the
   RECVs from each peer in that peer's send order. ``--defer`` adds the compute-only table
   run with the runtime's ``defer_pp_recv=True``.

    python benchmarks/demo_compute_comms.py                       # everything, ~6 min
    python benchmarks/demo_compute_comms.py --case zb-v --repeats 3
    PPOPT="python -m ppopt" python benchmarks/demo_compute_comms.py --unit-ms 50
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.torch_runtime.emulated import (  # noqa: E402
    EmulatedSpec,
    RankResult,
    StageCost,
    run_emulated,
    step_spans,
)

#: The worked example of docs/runtime_torch.md: p=2, m=2, split backward, 1F1B order.
WORKED_EXAMPLE = [
    "0F0,0SEND_F0,0F1,0SEND_F1,0RECV_B0,0I0,0W0,0RECV_B1,0I1,0W1,0REDUCE_GRAD",
    "1RECV_F0,1RECV_F1,1F0,1I0,1SEND_B0,1W0,1F1,1I1,1SEND_B1,1W1,1REDUCE_GRAD",
]
P, M = 4, 8
SPLIT_111 = ("-f", "1", "-bw", "1", "-w", "1")
#: name -> (solve options, virtual stages); every stage costs F=B=W=1.
CASES: dict[str, tuple[tuple[str, ...], int]] = {
    "1f1b": ((*SPLIT_111, "--schedule", "1f1b"), P),
    "zb-h1": ((*SPLIT_111, "--schedule", "zb-h1"), P),
    "optimal-1x": ((*SPLIT_111, "--memory-limit", "1x"), P),
    "zb-v": ((*SPLIT_111, "--schedule", "zb-v", "--placement", "vshape", "--chunks", "2"), 2 * P),
}
FORMATS = {"compute-only": "torch", "torch-comms": "torch-comms"}


def ppopt_command() -> list[str]:
    return shlex.split(os.environ.get("PPOPT", "ppopt"))


def solve(out: Path, name: str, options: list[str], stages: int, batches: int) -> dict:
    """Solve (``--runtime torch``) and export in both formats; the schedule file's content."""
    json_path = out / f"{name}.json"
    command = [*ppopt_command(), "solve", "-s", str(stages), "-b", str(batches), *options,
               "--runtime", "torch", "--json", str(json_path), "--no-visualization", "--quiet",
               "--workers", "2", "--time-limit", "20"]  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    for label, fmt in FORMATS.items():
        subprocess.run(
            [*ppopt_command(), "export", str(json_path), "--format", fmt, "--strict",
             "-o", str(out / f"{name}_{label}.csv"), "--quiet"],
            check=True,
        )  # fmt: skip
    return json.loads(json_path.read_text())


def table(out: Path, name: str, label: str) -> list[str]:
    return (out / f"{name}_{label}.csv").read_text().splitlines()


def p2p_order_mismatches(rows: list[list[str]]) -> list[str]:
    """Pairs of ranks whose RECVs are not posted in the order the peer SENDs (the first
    differing message of each), for a table with comms (cells as strings)."""
    from torch.distributed.pipelining.schedules import _Action
    from torch.distributed.pipelining.schedules import _ComputationType as T

    actions = {r: [a for a in map(_Action.from_str, row) if a is not None] for r, row in
               enumerate(rows)}  # fmt: skip
    rank_of = {a.stage_index: r for r, row in actions.items() for a in row}
    out = []
    for src in actions:
        for dst in actions:
            if src == dst:
                continue
            sends = [
                (a.stage_index + 1, "F", a.microbatch_index)
                if a.computation_type == T.SEND_F
                else (a.stage_index - 1, "B", a.microbatch_index)
                for a in actions[src]
                if (a.computation_type == T.SEND_F and rank_of[a.stage_index + 1] == dst)
                or (a.computation_type == T.SEND_B and rank_of[a.stage_index - 1] == dst)
            ]
            recvs = [
                (a.stage_index, "F" if a.computation_type == T.RECV_F else "B",
                 a.microbatch_index)
                for a in actions[dst]
                if (a.computation_type == T.RECV_F and rank_of[a.stage_index - 1] == src)
                or (a.computation_type == T.RECV_B and rank_of[a.stage_index + 1] == src)
            ]  # fmt: skip
            for i, (sent, received) in enumerate(zip(sends, recvs, strict=True)):
                if sent != received:
                    out.append(
                        f"rank {src}->{dst} message {i}: sent for {sent}, received as {received}"
                    )
                    break
    return out


def spans(results: list[RankResult], unit: float) -> list[float]:
    """Per step after the warm-up: first compute start to last compute end, in units."""
    return [span / unit for span in step_spans(results)]


def grads(results: list[RankResult]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for res in results:
        out.update(res.grads)
    return out


def max_diff(a: dict[str, list[float]], b: dict[str, list[float]]) -> float:
    assert a.keys() == b.keys(), (sorted(a), sorted(b))
    return max(abs(x - y) for k in a for x, y in zip(a[k], b[k], strict=True))


def worked_example(out: Path, unit: float) -> None:
    """Export the 2-rank example, check it, run it both ways; print PyTorch's lowering."""
    from torch.distributed.pipelining.schedules import _Action, _add_send_recv

    data = solve(out, "worked", ["-f", "1", "-bw", "2", "-w", "1", "--schedule", "1f1b"], 2, 2)
    comms, compute = table(out, "worked", "torch-comms"), table(out, "worked", "compute-only")
    assert comms == WORKED_EXAMPLE, comms
    actions = {r: [_Action.from_str(c) for c in row.split(",")] for r, row in
               enumerate(compute)}  # fmt: skip
    lowered = _add_send_recv(actions, stage_to_rank=lambda s: s, num_stages=2)
    print("ppopt export --format torch-comms (the worked example):")
    for rank, row in enumerate(comms):
        print(f"  rank {rank}: {row}")
    print("PyTorch's lowering of the compute-only table (_add_send_recv; the runtime also adds")
    print("UNSHARD/RESHARD no-ops and REDUCE_GRAD):")
    for rank, lowered_row in lowered.items():
        print(f"  rank {rank}: {','.join(str(a) for a in lowered_row)}")
    costs = (StageCost(unit, 2 * unit, unit),) * 2
    paths = {label: str(out / f"worked_{label}.csv") for label in FORMATS}
    a = run_emulated(EmulatedSpec(paths["torch-comms"], costs, 2, 7, "compute_comms"))
    b = run_emulated(EmulatedSpec(paths["compute-only"], costs, 2, 7))
    print(
        f"ran: span {statistics.median(spans(a, unit)):.2f} units vs compute-only "
        f"{statistics.median(spans(b, unit)):.2f} (planned {data['metrics']['makespan']:g}); "
        f"max |grad difference| "
        f"{max_diff(grads(a), grads(b)):.2e}"
    )


def measure(out: Path, name: str, args: argparse.Namespace) -> dict:
    """Both exports of one case, run alternately; medians, gradients, per-peer order."""
    unit = args.unit_ms / 1000.0
    options, stages = CASES[name]
    data = solve(out, name, list(options), P, M)
    costs = (StageCost(unit, unit, unit),) * stages
    variants = {
        "compute-only": EmulatedSpec(str(out / f"{name}_compute-only.csv"), costs, M, args.steps),
        "torch-comms": EmulatedSpec(
            str(out / f"{name}_torch-comms.csv"), costs, M, args.steps, "compute_comms"
        ),
    }
    if args.defer:
        variants["defer"] = EmulatedSpec(
            str(out / f"{name}_compute-only.csv"), costs, M, args.steps, defer_pp_recv=True
        )
    report: dict = {"planned": float(data["metrics"]["makespan"]), "runs": {}}
    reference: dict[str, list[float]] | None = None
    for _ in range(args.repeats):
        for label, spec in variants.items():
            results = run_emulated(spec)
            entry = report["runs"].setdefault(label, {"medians": [], "steps": [], "grad": 0.0})
            step_spans = spans(results, unit)
            entry["medians"].append(statistics.median(step_spans))
            entry["steps"].append(step_spans)
            reference = reference or grads(results)
            entry["grad"] = max(entry["grad"], max_diff(grads(results), reference))
            entry["order"] = p2p_order_mismatches([r.executed for r in results])
    return report


def markdown(reports: dict[str, dict]) -> str:
    labels = list(next(iter(reports.values()))["runs"])
    head = ["schedule", "planned", *labels, "torch-comms vs compute-only", "step range"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, report in reports.items():
        runs = report["runs"]
        cells = [name, f"{report['planned']:.2f}"]
        for label in labels:
            medians = " / ".join(f"{m:.2f}" for m in runs[label]["medians"])
            notes = [] if runs[label]["grad"] < 1e-6 else [f"grad diff {runs[label]['grad']:.2g}"]
            notes += ["RECV order broken"] if runs[label]["order"] else []
            cells.append(medians + (f" ({', '.join(notes)})" if notes else ""))
        comms = statistics.median(runs["torch-comms"]["medians"])
        only = statistics.median(runs["compute-only"]["medians"])
        every = [s for label in labels for steps in runs[label]["steps"] for s in steps]
        cells += [f"{(comms - only) / only:+.1%}", f"{min(every):.2f}–{max(every):.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--unit-ms", type=float, default=50.0)
    parser.add_argument("--steps", type=int, default=6, help="per run; the first is a warm-up")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each export, alternated")
    parser.add_argument("--case", action="append", choices=list(CASES))
    parser.add_argument("--defer", action="store_true", help="also defer_pp_recv=True")
    parser.add_argument("--no-worked-example", action="store_true")
    parser.add_argument("--workdir")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    reports: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.workdir or tmp)
        out.mkdir(parents=True, exist_ok=True)
        if not args.no_worked_example:
            worked_example(out, args.unit_ms / 1000.0)
        for name in args.case or list(CASES):
            reports[name] = measure(out, name, args)
            medians = {label: run["medians"] for label, run in reports[name]["runs"].items()}
            print(f"{name}: {json.dumps(medians)}")
    print(f"\np={P}, m={M}, F=B=W=1, unit {args.unit_ms:g} ms, --runtime torch plans; median step")
    print(f"span in units of each run ({args.steps - 1} steps after 1 warm-up), runs alternated:\n")
    print(markdown(reports))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(reports, indent=1))


if __name__ == "__main__":
    main()
