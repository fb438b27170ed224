"""PyTorch's ``compute_comms`` table: a worked 2-rank example, and ppopt plans lowered with
their communication placed from the planned times.

``_PipelineScheduleRuntime._load_csv(path, format="compute_comms")`` runs each row exactly as
written (no lowering pass: no send/receive insertion, no ``REDUCE_GRAD``, no
``UNSHARD``/``RESHARD``). Cells, as ``_Action.from_str`` parses them:

* compute ``{stage}F{mb}``, ``{stage}I{mb}``, ``{stage}W{mb}``, ``{stage}B{mb}``;
* ``{stage}SEND_F{mb}`` on the sender, stage = the sending stage: ``dist.isend`` of the
  stage's output of that micro-batch (non-blocking; every send is waited at the end of
  ``step``);
* ``{stage}RECV_F{mb}`` on the receiver, stage = the *receiving* stage: posts ``dist.irecv``
  into that micro-batch's preallocated buffer and returns; the wait is done by the consuming
  ``F`` (``_wait_batch_p2p`` just before ``forward_one_chunk``);
* ``{stage}SEND_B{mb}`` (sending stage, after its ``I`` or ``B``) and ``{stage}RECV_B{mb}``
  (receiving stage; waited by its ``I`` or ``B``);
* ``{stage}REDUCE_GRAD`` once per stage after its last ``W``/``B``: divides the gradients by
  the number of micro-batches (``scale_grads``); without it the gradients are m times too big;
* two adjacent stages on one rank (V placement) pass tensors in memory: no SEND/RECV for them.

The runtime checks that an ``F`` (``I``/``B``) of a stage fed from another rank finds its
posted receive (``"Computing ... before receiving input"`` otherwise), but nothing else: the
messages between two ranks carry no tag (tag 0), so **the receives a rank posts from one peer
must be in the order that peer sends** or tensors of equal shape are silently swapped.

    python benchmarks/demo_compute_comms.py                       # worked example + variants
    PPOPT="python -m ppopt" python benchmarks/demo_compute_comms.py --unit-ms 50

Variants timed on ppopt plans (emulated stages, ``tests/torch_runtime/emulated.py``):
``lowering`` (compute-only table, PyTorch inserts the comms), ``defer`` (the same with the
runtime's ``defer_pp_recv=True``), and compute_comms tables written here: ``cc-plan`` (SEND
right after the producing action, each RECV posted at the planned arrival time: before the
first action of the receiving rank planned to start at or after the producer's end),
``cc-late`` (each RECV just before its consumer), ``cc-early`` (every RECV at the start of
the row), all three then made per-peer FIFO (a RECV moved earlier when a later message from
the same peer is received before it), and ``cc-late-nofifo`` (just before the consumer, not
FIFO: what the runtime's ``defer_pp_recv`` does). Gradients are compared with the
``lowering`` run and every executed table is checked for per-peer SEND/RECV order.
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
from collections import defaultdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.torch_runtime.emulated import (  # noqa: E402
    EmulatedSpec,
    RankResult,
    StageCost,
    run_emulated,
)

#: The worked example of docs/runtime_torch.md: p=2, m=2, split backward, 1F1B order.
WORKED_EXAMPLE = [
    "0F0,0SEND_F0,0F1,0SEND_F1,0RECV_B0,0I0,0W0,0RECV_B1,0I1,0W1,0REDUCE_GRAD",
    "1RECV_F0,1RECV_F1,1F0,1I0,1SEND_B0,1W0,1F1,1I1,1SEND_B1,1W1,1REDUCE_GRAD",
]
#: The same order as a compute-only table (PyTorch lowers it itself).
WORKED_COMPUTE_ONLY = ["0F0,0F1,0I0,0W0,0I1,0W1", "1F0,1I0,1W0,1F1,1I1,1W1"]


def compute_comms_rows(data: dict, placement: str, fifo: bool = True) -> list[list[str]]:
    """A compute_comms table of a ppopt schedule file.

    SEND right after the producing action; RECV by ``placement``: ``plan`` (at the planned
    arrival: before the first action of the receiving rank planned to start at or after the
    producer's planned end), ``late`` (just before the consumer) or ``early`` (row start).
    ``fifo``: then move RECVs earlier where needed so that the RECVs a rank posts from one
    peer are in that peer's send order (messages carry no tag; ``fifo=False`` with ``late``
    reproduces what ``defer_pp_recv=True`` does to a V schedule: swapped tensors).
    ``REDUCE_GRAD`` after each stage's last W/B.
    """
    problem = data["problem"]
    rank_of = problem["placement"]  # device of each virtual stage
    last = len(rank_of) - 1
    split = problem.get("weight_times") is not None
    p2p = float(problem.get("p2p_time") or 0.0)
    rows: dict[int, list[dict]] = defaultdict(list)
    for op in sorted(data["ops"], key=lambda o: (o["device"], o["start"], o["end"])):
        rows[op["device"]].append(op)

    def cell(op: dict) -> str:
        kind = op["kind"]
        if kind == "B":
            kind = "I" if split else "B"
        return f"{op['stage']}{kind}{op['microbatch']}"

    # per receiving rank: (arrival, sender rank, sender position, RECV cell, consumer cell)
    sends: dict[tuple[int, int], list[str]] = defaultdict(list)
    recvs: dict[int, list[tuple[float, int, int, str, str]]] = defaultdict(list)
    for device, ops in rows.items():
        for pos, op in enumerate(ops):
            s, mb = op["stage"], op["microbatch"]
            if op["kind"] == "F" and s < last and rank_of[s + 1] != device:
                sends[(device, pos)].append(f"{s}SEND_F{mb}")
                recvs[rank_of[s + 1]].append(
                    (op["end"] + p2p, device, pos, f"{s + 1}RECV_F{mb}", f"{s + 1}F{mb}")
                )
            elif op["kind"] == "B" and s > 0 and rank_of[s - 1] != device:
                sends[(device, pos)].append(f"{s}SEND_B{mb}")
                consumer = f"{s - 1}{'I' if split else 'B'}{mb}"
                recvs[rank_of[s - 1]].append(
                    (op["end"] + p2p, device, pos, f"{s - 1}RECV_B{mb}", consumer)
                )
    out: list[list[str]] = []
    for device in sorted(rows):
        ops = rows[device]
        cells = [cell(op) for op in ops]
        placed: list[list[Any]] = []  # [position (before that action), sender, its pos, RECV]
        for arrival, sender, sender_pos, recv, consumer in recvs[device]:
            consumer_pos = cells.index(consumer)
            if placement == "early":
                pos = 0
            elif placement == "late":
                pos = consumer_pos
            else:
                pos = next(
                    (i for i, op in enumerate(ops) if op["start"] >= arrival - 1e-9),
                    consumer_pos,
                )
                pos = min(pos, consumer_pos)
            placed.append([pos, sender, sender_pos, recv])
        if fifo:  # per peer, latest first: never after the next message's RECV
            by_peer: dict[int, list[list]] = defaultdict(list)
            for item in placed:
                by_peer[item[1]].append(item)
            for items in by_peer.values():
                items.sort(key=lambda item: item[2])
                for earlier, later in zip(items[-2::-1], items[:0:-1], strict=True):
                    earlier[0] = min(earlier[0], later[0])
        before: dict[int, list[str]] = defaultdict(list)  # RECVs placed before position i
        for pos, _, _, recv in sorted(placed, key=lambda item: (item[0], item[1], item[2])):
            before[pos].append(recv)
        row: list[str] = []
        done_bw: dict[int, int] = defaultdict(int)
        for i, op in enumerate(ops):
            row += before.get(i, [])
            row.append(cells[i])
            row += sends.get((device, i), [])
            if op["kind"] == ("W" if split else "B"):
                done_bw[op["stage"]] += 1
                if done_bw[op["stage"]] == problem["num_batches"]:
                    row.append(f"{op['stage']}REDUCE_GRAD")
        out.append(row)
    return out


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


def ppopt_command() -> list[str]:
    return shlex.split(os.environ.get("PPOPT", "ppopt"))


def solve(out: Path, name: str, options: list[str]) -> tuple[Path, dict]:
    json_path, csv_path = out / f"{name}.json", out / f"{name}.csv"
    command = [*ppopt_command(), "solve", "-s", "4", "-b", "8", *options, "--json",
               str(json_path), "--no-visualization", "--quiet", "--workers", "2",
               "--time-limit", "20"]  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(
        [*ppopt_command(), "export", str(json_path), "-o", str(csv_path), "--quiet"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return csv_path, json.loads(json_path.read_text())


def span(results: list[RankResult], unit: float, warmup: int = 1) -> float:
    steps = sorted({r.step for res in results for r in res.records if r.step >= warmup})
    spans = []
    for step in steps:
        recs = [r for res in results for r in res.records if r.step == step]
        spans.append((max(r.end for r in recs) - min(r.start for r in recs)) / unit)
    return statistics.median(spans)


def grads(results: list[RankResult]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for res in results:
        out.update(res.grads)
    return out


def max_diff(a: dict[str, list[float]], b: dict[str, list[float]]) -> float:
    assert a.keys() == b.keys(), (sorted(a), sorted(b))
    return max(abs(x - y) for k in a for x, y in zip(a[k], b[k], strict=True))


def worked_example(out: Path, unit: float) -> None:
    """Load and run the 2-rank example both ways; print PyTorch's own lowering of it."""
    from torch.distributed.pipelining.schedules import _Action, _add_send_recv

    comms, compute = out / "worked_comms.csv", out / "worked_compute.csv"
    comms.write_text("\n".join(WORKED_EXAMPLE) + "\n")
    compute.write_text("\n".join(WORKED_COMPUTE_ONLY) + "\n")
    actions = {r: [_Action.from_str(c) for c in row.split(",")] for r, row in
               enumerate(WORKED_COMPUTE_ONLY)}  # fmt: skip
    lowered = _add_send_recv(actions, stage_to_rank=lambda s: s, num_stages=2)
    print("PyTorch's lowering of the compute-only table (_add_send_recv; the runtime also adds")
    print("UNSHARD/RESHARD no-ops and REDUCE_GRAD):")
    for rank, row in lowered.items():
        print(f"  rank {rank}: {','.join(str(a) for a in row)}")
    costs = (StageCost(unit, unit, unit),) * 2
    a = run_emulated(EmulatedSpec(str(comms), costs, 2, steps=7, csv_format="compute_comms"))
    b = run_emulated(EmulatedSpec(str(compute), costs, 2, steps=7))
    diff = max_diff(grads(a), grads(b))
    print(
        f"worked compute_comms example: ran; span {span(a, unit):.2f} units vs compute-only "
        f"{span(b, unit):.2f}; max |grad difference| {diff:.2e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--unit-ms", type=float, default=50.0)
    parser.add_argument("--workdir")
    parser.add_argument("--json-out")
    args = parser.parse_args()
    unit = args.unit_ms / 1000.0
    report: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.workdir or tmp)
        out.mkdir(parents=True, exist_ok=True)
        worked_example(out, unit)
        plans = {
            "split-111 optimal-1x": ["-f", "1", "-bw", "1", "-w", "1", "--memory-limit", "1x"],
            "full-eq 1f1b": ["-f", "1", "-bw", "2", "--schedule", "1f1b"],
            "v-111 zb-v": ["-f", "1", "-bw", "1", "-w", "1", "--schedule", "zb-v",
                           "--placement", "vshape", "--chunks", "2"],
        }  # fmt: skip
        for name, options in plans.items():
            csv_path, data = solve(out, name.replace(" ", "_"), options)
            pr = data["problem"]
            weight = pr.get("weight_times") or [0.0] * len(pr["forward_times"])
            costs = tuple(
                StageCost(f * unit, b * unit, w * unit)
                for f, b, w in zip(pr["forward_times"], pr["backward_times"], weight, strict=True)
            )
            m = pr["num_batches"]
            runs = {
                "lowering": run_emulated(EmulatedSpec(str(csv_path), costs, m)),
                "defer": run_emulated(EmulatedSpec(str(csv_path), costs, m, defer_pp_recv=True)),
            }
            for placement, fifo in (("plan", True), ("late", True), ("early", True),
                                    ("late", False)):  # fmt: skip
                label = f"cc-{placement}{'' if fifo else '-nofifo'}"
                path = out / f"{name.replace(' ', '_')}_{label}.csv"
                rows = compute_comms_rows(data, placement, fifo)
                path.write_text("\n".join(",".join(r) for r in rows) + "\n")
                runs[label] = run_emulated(
                    EmulatedSpec(str(path), costs, m, csv_format="compute_comms")
                )
            reference = grads(runs["lowering"])
            planned = float(data["metrics"]["makespan"])
            print(f"\n{name}: planned {planned:.2f}")
            report[name] = {"planned": planned}
            for label, res in runs.items():
                measured = span(res, unit)
                diff = max_diff(grads(res), reference)
                order = p2p_order_mismatches([r.executed for r in res])
                report[name][label] = {"measured": measured, "max_grad_diff": diff,
                                       "order_mismatches": order,
                                       "rows": [r.executed for r in res]}  # fmt: skip
                print(f"  {label:15s} measured {measured:6.2f} (x{measured / planned:.3f}), "
                      f"max |grad - lowering's| {diff:.1e}; per-peer order "
                      f"{'OK' if not order else 'BROKEN: ' + '; '.join(order)}")  # fmt: skip
            print(f"  cc-plan rank 1 row: {','.join(runs['cc-plan'][1].executed)}")
            print(f"  lowering rank 1 row: {','.join(runs['lowering'][1].executed)}")
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
