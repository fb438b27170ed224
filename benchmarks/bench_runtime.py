"""Runtime fidelity: ppopt's planned makespan against PyTorch's pipelining runtime.

For each case and schedule the benchmark

1. solves with the CLI (``ppopt solve ... --runtime torch|abstract --json out.json``) and
   exports the PyTorch table (``ppopt export out.json --format torch -o out.csv``); for a plan
   made under ``runtime: abstract`` the export's warning gives ppopt's forecast of how long
   PyTorch takes (the plan's orders re-timed under ``runtime: torch``);
2. runs the table with ``torch.distributed.pipelining.schedules._PipelineScheduleRuntime`` on
   CPU/gloo, one process per rank, stages emulated by sleeps (``tests/torch_runtime/
   emulated.py``: F sleeps ``F*unit``, the activation-gradient chain ``B*unit``, the
   weight-gradient nodes ``W*unit``; PyTorch itself decides which of them run in ``I``, ``W``
   and ``B``, so stage 0's ``I`` takes ~0 and its ``W`` ``B + W`` whatever the plan assumed),
   ``--steps`` steps of which the first ``--warmup`` are not counted (default: 10 counted after
   one warm-up);
3. prints the planned makespan (``metrics.makespan`` of the file), the measured step (median
   over the counted steps of the span from the first compute action's start to the last one's
   end over all ranks, in units), their ratio, the planned and measured gain over the case's
   1F1B and the measured gain over its zero-bubble baseline (ZB-H1, or ZB-V on the V case);
   also the plan's peak memory and the peak under PyTorch's rule (everything an F allocates
   is held until that micro-batch's W ends; ``benchmarks/probe_torch_stage.py``), and whether
   the issue's targets are met (``--runtime torch`` plans within 5 % of plan, the optimizer
   not slower than ZB-H1, its measured gain over 1F1B within 2 points of the planned gain).

The emulated stages always cost the case's *true* times (F, B, W as given); ``--runtime torch``
plans with what PyTorch runs (stage 0: B 0, W B+W; a split B frees nothing until W).

    python benchmarks/bench_runtime.py                                  # every case, 50 ms unit
    python benchmarks/bench_runtime.py --case split-1.5 --unit-ms 50
    python benchmarks/bench_runtime.py --json-out runtime.json --plot docs/planned_vs_measured.png
    python benchmarks/bench_runtime.py --from-json runtime.json --plot out.png \\
        --plot-run split-111/optimal-1x-abstract --plot-run split-111/optimal-1x
    python benchmarks/bench_runtime.py --check-emulation               # time F, I, W, B per stage
    PPOPT="ppopt" python benchmarks/bench_runtime.py ...                # another ppopt command

By default ppopt runs as ``python -m ppopt`` with this working tree first on ``PYTHONPATH``, so
the tree's ppopt is measured whatever is installed; ``PPOPT`` overrides the command.

Colours of ``--plot`` are ppopt's own (``ppopt.viz.gantt.KIND_COLORS``): F blue ``#3b75af``,
B orange ``#e1812c`` (ppopt's B: PyTorch's ``I`` of a split backward or its full ``B``),
W teal ``#44aa99``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass, field, fields
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.torch_runtime.emulated import (  # noqa: E402
    EmulatedSpec,
    RankResult,
    StageCost,
    run_emulated,
    run_emulated_many,
    step_spans,
)

KIND_COLORS = {"F": "#3b75af", "B": "#e1812c", "W": "#44aa99"}  # ppopt.viz.gantt's
P, M = 4, 8
#: the issue's targets
RATIO_TARGET = 0.05  # --runtime torch plans: |measured / planned - 1| <= 5 %
GAIN_TARGET = 0.02  # optimizer: |measured gain - planned gain| over 1F1B <= 2 points
#: the runtime's fixed cost of one action (sleep overshoot, autograd and runtime bookkeeping),
#: measured with --check-emulation on the 2-core machine: 1.25-1.35 ms per F, I, W, B
OVERHEAD_MS = 1.3
#: ppopt export's warning for a plan made under another runtime
RETIMED = re.compile(r"PyTorch runs this order in ([0-9.eE+-]+)")


@dataclass(frozen=True)
class Run:
    """One schedule of a case: its label, the ``--schedule`` name, extra solve options and the
    runtime it is planned for; ``true`` overrides the case's true times with a one-chunk
    problem of its own (the V case's one-chunk 1F1B reference)."""

    label: str
    schedule: str
    options: tuple[str, ...] = ()
    runtime: str = "torch"
    true: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...] | None] | None = None


@dataclass(frozen=True)
class Case:
    """A problem (true per-virtual-stage F, B, W; W None = full backward) and its runs;
    ``reference`` is the 1F1B run, ``zero_bubble`` the zero-bubble baseline's (or None)."""

    name: str
    description: str
    forward: tuple[float, ...]
    backward: tuple[float, ...]
    weight: tuple[float, ...] | None
    runs: tuple[Run, ...]
    layout: tuple[str, ...] = ()
    reference: str = "1f1b"
    zero_bubble: str | None = None


def planned_options(case: Case, run: Run, overhead: float) -> list[str]:
    """The problem options ``run`` is solved with: its true times, each plus the runtime's
    fixed cost per action (``--overhead-ms`` in units), so the plan times every action as it
    really runs (docs/runtime_torch.md §3)."""
    forward, backward, weight = run.true or (case.forward, case.backward, case.weight)
    layout = () if run.true else case.layout
    out = [*layout, "-f", _list(forward, overhead), "-bw", _list(backward, overhead)]
    if weight is not None:
        out += ["-w", _list(weight, overhead)]
    return out


def _list(values: tuple[float, ...], overhead: float = 0.0) -> str:
    return " ".join(f"{v + overhead:.10g}" for v in values)


def _optimal(limit: str, runtime: str = "torch") -> Run:
    suffix = "" if runtime == "torch" else f"-{runtime}"
    return Run(f"optimal-{limit}{suffix}", "optimal", ("--memory-limit", limit), runtime)


def cases() -> list[Case]:
    """The benchmark's cases (p=4, m=8)."""
    eq = (1.0,) * P
    full_runs = (Run("1f1b", "1f1b"), _optimal("1x"))
    out = [
        Case("full-eq", "full backward, F=1 B=2", eq, (2.0,) * P, None, full_runs),
        Case(
            "full-uneq",
            "full backward, unequal stages F=1 1.4 0.8 1.2, B=2F",
            (1.0, 1.4, 0.8, 1.2),
            (2.0, 2.8, 1.6, 2.4),
            None,
            full_runs,
        ),
    ]
    split_runs = (
        Run("1f1b", "1f1b"),
        Run("zb-h1", "zb-h1"),
        _optimal("1x"),
        _optimal("2x"),
        _optimal("1x", "abstract"),
        _optimal("2x", "abstract"),
    )
    for name, b, w in (("split-111", 1.0, 1.0), ("split-1.5", 1.5, 0.5)):
        out.append(
            Case(
                name,
                f"split F=1 B={b:g} W={w:g}",
                eq,
                (b,) * P,
                (w,) * P,
                split_runs,
                zero_bubble="zb-h1",
            )
        )
    v_eq = (1.0,) * (2 * P)
    v_runs = (
        Run(
            "1f1b",
            "1f1b",
            true=((2.0,) * P, (4.0,) * P, None),
        ),
        Run("zb-v", "zb-v"),
        _optimal("1x"),
        _optimal("1x", "abstract"),
    )
    out.append(
        Case(
            "v-111",
            "V placement, 2 chunks, F=B=W=1 per chunk",
            v_eq,
            v_eq,
            v_eq,
            v_runs,
            layout=("--placement", "vshape", "--chunks", "2"),
            zero_bubble="zb-v",
        )
    )
    return out


@dataclass
class Result:
    case: str
    run: str
    runtime: str
    planned: float
    forecast: float  # ppopt's forecast of PyTorch's time (the plan re-timed under torch)
    measured: float
    wall: float
    step_spans: list[float]
    planned_peak: float
    torch_peak: float
    is_optimizer: bool = False
    split: bool = False
    zero_bubble: str | None = None  # the case's zero-bubble baseline (zb-h1, zb-v)
    gain_planned: float | None = None
    gain_measured: float | None = None
    gain_zero_bubble: float | None = None
    #: the plan is the zero-bubble baseline's very order: any measured gain is run-to-run noise
    same_as_zero_bubble: bool = False
    plan_ops: list[dict] = field(default_factory=list)
    measured_ops: list[dict] = field(default_factory=list)
    per_kind: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.measured / self.planned


def ppopt_command() -> tuple[list[str], dict[str, str]]:
    """The ppopt command and its environment: ``PPOPT`` if set, else ``python -m ppopt`` with
    this working tree first on ``PYTHONPATH``."""
    env = dict(os.environ)
    if "PPOPT" in os.environ:
        return shlex.split(os.environ["PPOPT"]), env
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(REPO), env.get("PYTHONPATH"))))
    return [sys.executable, "-m", "ppopt"], env


def solve(case: Case, run: Run, out: Path, args: argparse.Namespace) -> tuple[Path, dict, float]:
    """Solve and export one run with the CLI: the CSV path, the schedule file's content and
    ppopt's forecast of PyTorch's time (the export's warning; the plan for a torch plan)."""
    json_path, csv_path = (
        out / f"{case.name}_{run.label}.json",
        out / f"{case.name}_{run.label}.csv",
    )
    problem = planned_options(case, run, args.overhead_ms / args.unit_ms)
    ppopt, env = ppopt_command()
    command = [
        *ppopt, "solve", "-s", str(P), "-b", str(M), *problem, "--runtime", run.runtime,
        "--schedule", run.schedule, *run.options, "--json", str(json_path),
        "--no-visualization", "--quiet", "--workers", str(args.workers),
        "--time-limit", str(args.time_limit),
    ]  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=env)
    export = [*ppopt, "export", str(json_path), "--format", "torch", "-o", str(csv_path),
              "--quiet"]  # fmt: skip
    done = subprocess.run(
        export, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )
    data = json.loads(json_path.read_text())
    match = RETIMED.search(done.stderr)
    forecast = float(match[1]) if match else float(data["metrics"]["makespan"])
    return csv_path, data, forecast


def true_costs(case: Case, run: Run, unit: float) -> tuple[StageCost, ...]:
    forward, backward, weight = run.true or (case.forward, case.backward, case.weight)
    weight = weight or (0.0,) * len(forward)
    return tuple(
        StageCost(f * unit, b * unit, w * unit)
        for f, b, w in zip(forward, backward, weight, strict=True)
    )


def peak(ops: list[dict], hold_until_w: bool) -> float:
    """Peak activation units per device of a schedule file's ops (activation 1 per F).

    ``hold_until_w=False``: ppopt's abstract model with nothing retained (F allocates at its
    start, the micro-batch's B frees at its end). ``True``: PyTorch's measured rule (held until
    W ends; B frees for a full backward)."""
    events: dict[int, list[tuple[float, int, int]]] = defaultdict(list)
    kinds = {op["kind"] for op in ops}
    free_kind = "W" if hold_until_w and "W" in kinds else "B"
    for op in ops:
        if op["kind"] == "F":
            events[op["device"]].append((op["start"], 1, 1))
        elif op["kind"] == free_kind:
            events[op["device"]].append((op["end"], 0, -1))
    best = 0.0
    for evs in events.values():
        held = 0
        for _, _, delta in sorted(evs):
            held += delta
            best = max(best, held)
    return best


def measure(results: list[RankResult], warmup: int, unit: float):
    """Median compute span and step wall (units) over the steps after the warm-up, each step's
    span, one measured step's ops (units from its first start), per-kind median durations."""
    spans = [s / unit for s in step_spans(results, warmup)]
    steps = sorted({r.step for res in results for r in res.records if r.step >= warmup})
    walls = [
        (max(res.step_walls[step][1] for res in results)
         - min(res.step_walls[step][0] for res in results)) / unit
        for step in steps
    ]  # fmt: skip
    # the step whose span is the median (upper median for an even count)
    median_step = sorted(zip(spans, steps, strict=True))[len(steps) // 2][1]
    rank_of = {s: res.rank for res in results for s in res.stages}
    recs = [r for res in results for r in res.records if r.step == median_step]
    t0 = min(r.start for r in recs)
    ops = [
        {"device": rank_of[r.stage], "stage": r.stage, "microbatch": r.microbatch,
         "kind": r.kind, "start": (r.start - t0) / unit, "end": (r.end - t0) / unit}
        for r in recs
    ]  # fmt: skip
    durations: dict[str, list[float]] = defaultdict(list)
    for res in results:
        for r in res.records:
            if r.step >= warmup:
                durations[f"{r.stage}{r.kind}"].append((r.end - r.start) / unit)
    per_kind = {k: statistics.median(v) for k, v in sorted(durations.items())}
    return statistics.median(spans), statistics.median(walls), spans, ops, per_kind


def run_case(case: Case, args: argparse.Namespace, out: Path) -> list[Result]:
    unit = args.unit_ms / 1000.0
    results: list[Result] = []
    solved = [solve(case, run, out, args) for run in case.runs]
    specs = [
        EmulatedSpec(
            str(csv_path), true_costs(case, run, unit), M, steps=args.steps, layers=args.layers
        )
        for run, (csv_path, _, _) in zip(case.runs, solved, strict=True)
    ]
    # one set of rank processes runs the case's tables one after the other
    every = run_emulated_many(specs)
    for run, (_, data, forecast), ranks in zip(case.runs, solved, every, strict=True):
        measured, wall, spans, ops, per_kind = measure(ranks, args.warmup, unit)
        result = Result(
            case.name,
            run.label,
            run.runtime,
            float(data["metrics"]["makespan"]),
            forecast,
            measured,
            wall,
            spans,
            max(data["metrics"]["peak_memory"]),
            peak(data["ops"], hold_until_w=True),
            is_optimizer=run.schedule == "optimal",
            split=case.weight is not None,
            zero_bubble=case.zero_bubble,
            plan_ops=data["ops"],
            measured_ops=ops,
            per_kind=per_kind,
        )
        results.append(result)
        print(
            f"  {case.name:10s} {run.label:20s} planned {result.planned:6.2f}  forecast "
            f"{forecast:6.2f}  measured {measured:6.2f}  ratio {result.ratio:.3f}  "
            f"steps {' '.join(f'{s:.2f}' for s in spans)}",
            flush=True,
        )
    by_label = {r.run: r for r in results}
    reference = by_label.get(case.reference)
    zero_bubble = by_label.get(case.zero_bubble) if case.zero_bubble else None
    for r in results:
        if reference is not None and r is not reference:
            r.gain_planned = 1 - r.planned / reference.planned
            r.gain_measured = 1 - r.measured / reference.measured
        if zero_bubble is not None and r is not zero_bubble and r is not reference:
            r.gain_zero_bubble = 1 - r.measured / zero_bubble.measured
    mark_zero_bubble_orders(results)
    return results


def mark_zero_bubble_orders(results: list[Result]) -> None:
    """Set ``same_as_zero_bubble`` on each run whose plan is its case's zero-bubble run's."""
    plans = {(r.case, r.run): r.plan_ops for r in results}
    for r in results:
        theirs = plans.get((r.case, r.zero_bubble or ""))
        if r.zero_bubble != r.run and theirs is not None:
            r.same_as_zero_bubble = _orders(r.plan_ops) == _orders(theirs)


def _orders(plan: list[dict]) -> list[tuple]:
    """A plan's per-device task orders (sorted by device, then start)."""
    timed = sorted(plan, key=lambda o: (o["device"], o["start"]))
    return [(o["device"], o["kind"], o["stage"], o["microbatch"]) for o in timed]


def _pct(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f} %".replace("-", "−")


def table(results: list[Result], unit_ms: float, overhead_ms: float) -> str:
    lines = [
        "| case | schedule | planned for | planned | ppopt's forecast | measured | "
        "measured/planned | planned gain vs 1F1B | measured gain vs 1F1B | "
        "measured gain vs ZB | peak (plan) | peak (PyTorch rule) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        forecast = "" if r.runtime == "torch" else f"{r.forecast:.2f}"
        lines.append(
            f"| {r.case} | {r.run} | {r.runtime} | {r.planned:.2f} | {forecast} | "
            f"{r.measured:.2f} | {r.ratio:.3f} | {_pct(r.gain_planned)} | "
            f"{_pct(r.gain_measured)} | {_zb_cell(r)} | {r.planned_peak:g} | "
            f"{r.torch_peak:g} |"
        )
    lines.append(
        f"\n(times in units of {unit_ms:g} ms; planned with {overhead_ms:g} ms per action "
        "added to the true times; ppopt's forecast = the export's warning, the "
        "plan re-timed under runtime: torch, shown for abstract plans; ZB = ZB-H1, ZB-V on the "
        "V case; peaks in activations per device)"
    )
    return "\n".join(lines)


def _zb_cell(r: Result) -> str:
    """The measured gain over the zero-bubble baseline; for its very order, said so."""
    if r.same_as_zero_bubble:
        return f"ZB's order ({_pct(r.gain_zero_bubble)}: noise)"
    return _pct(r.gain_zero_bubble)


def targets(results: list[Result]) -> list[str]:
    """The issue's three targets, each with its numbers and met / not met."""
    torch_runs = [r for r in results if r.runtime == "torch"]
    worst = max(torch_runs, key=lambda r: abs(r.ratio - 1), default=None)
    optimizers = [r for r in torch_runs if r.is_optimizer]
    split_opt = [
        r for r in optimizers if r.zero_bubble == "zb-h1" and r.gain_zero_bubble is not None
    ]
    v_opt = [r for r in optimizers if r.zero_bubble == "zb-v" and r.gain_zero_bubble is not None]
    gained = [r for r in optimizers if r.gain_planned is not None]
    lines = []
    if worst is not None:
        ok = all(abs(r.ratio - 1) <= RATIO_TARGET for r in torch_runs)
        lines.append(
            f"runtime torch, every schedule within {RATIO_TARGET:.0%} of its plan: "
            f"{'met' if ok else 'NOT met'} (ratios {min(r.ratio for r in torch_runs):.3f}–"
            f"{max(r.ratio for r in torch_runs):.3f}; worst {worst.case}/{worst.run})"
        )
    if split_opt:
        # the optimizer's answer is ZB-H1's own order where no better one exists (a tie keeps
        # the published schedule): the same schedule, so its gain is 0 whatever the noise
        ok = all(r.same_as_zero_bubble or r.gain_zero_bubble >= 0 for r in split_opt)
        cells = ", ".join(f"{r.case}/{r.run} {_zb_cell(r)}" for r in split_opt)
        lines.append(f"optimizer's measured gain over ZB-H1 >= 0: {'met' if ok else 'NOT met'} "
                     f"({cells})")  # fmt: skip
    if v_opt:
        cells = ", ".join(f"{r.case}/{r.run} {_zb_cell(r)}" for r in v_opt)
        lines.append(f"(not a target) optimizer's measured gain over ZB-V: {cells}")
    if gained:
        ok = all(abs(r.gain_measured - r.gain_planned) <= GAIN_TARGET for r in gained)
        cells = ", ".join(
            f"{r.case}/{r.run} {100 * (r.gain_measured - r.gain_planned):+.1f}" for r in gained
        )
        lines.append(
            f"optimizer's measured gain over 1F1B within {100 * GAIN_TARGET:g} points of plan: "
            f"{'met' if ok else 'NOT met'} (measured − planned, points: {cells})"
        )
    return lines


def plot(chosen: list[Result], path: str, unit_ms: float) -> None:
    """Planned above measured for each chosen run, all panels on one time axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    devices = 1 + max(op["device"] for r in chosen for op in r.plan_ops)
    end = max(op["end"] for r in chosen for ops in (r.plan_ops, r.measured_ops) for op in ops)
    panels = []
    for r in chosen:
        who = f"{r.run} (planned with runtime: {r.runtime})"
        panels.append((r.plan_ops, f"{who}: planned by ppopt, makespan {r.planned:.2f}", r))
        panels.append(
            (
                r.measured_ops,
                f"{who}: measured in PyTorch 2.13 (median step {r.measured:.2f}, "
                f"{r.ratio:.3f}x the plan)",
                r,
            )
        )
    fig, axes = plt.subplots(
        len(panels), 1, figsize=(15, 0.9 + 0.62 * devices * len(panels)), sharex=True
    )
    for ax, (ops, title, r) in zip(axes, panels, strict=True):
        for op in ops:
            kind = "B" if op["kind"] in ("I", "B") else op["kind"]
            width = op["end"] - op["start"]
            ax.barh(
                op["device"], max(width, 0.04), left=op["start"], height=0.8,
                color=KIND_COLORS[kind], edgecolor="white", linewidth=0.5,
            )  # fmt: skip
            if width > 0.45:
                ax.text(
                    op["start"] + width / 2, op["device"], str(op["microbatch"] + 1),
                    ha="center", va="center", fontsize=8,
                    color="white" if kind != "B" else "black",
                )  # fmt: skip
        ax.axvline(r.planned, color="0.25", linestyle="--", linewidth=1)
        names = [f"device {d + 1} (rank {d})" for d in range(devices)]
        ax.set_yticks(range(devices), names, fontsize=9)
        ax.invert_yaxis()
        ax.set_title(title, fontsize=11, loc="left")
        ax.grid(axis="x", color="0.85", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[-1].set_xlabel(f"time (units of {unit_ms:g} ms); dashed: the planned makespan")
    axes[-1].set_xlim(0, end * 1.01)
    handles = [
        Patch(color=KIND_COLORS["F"], label="F"),
        Patch(color=KIND_COLORS["B"], label="B (PyTorch I, or full B)"),
        Patch(color=KIND_COLORS["W"], label="W"),
    ]
    fig.legend(handles=handles, loc="upper right", fontsize=10, ncol=3, frameon=False)
    cases_shown = sorted({r.case for r in chosen})
    fig.suptitle(
        f"{', '.join(cases_shown)} (p={P}, m={M}): planned above measured, per schedule",
        x=0.01,
        ha="left",
    )
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def check_emulation(args: argparse.Namespace, out: Path) -> None:
    """Time every action kind on stage 0, the middle stages and the last stage for one split
    and one unsplit 1F1B table (p=4, m=8, F=1 B=1.5 W=0.5 units) and print the medians."""
    unit = args.unit_ms / 1000.0
    for label, case in (
        ("split F=1 B=1.5 W=0.5", Case("chk-split", "", (1.0,) * P, (1.5,) * P, (0.5,) * P, ())),
        ("full F=1 B=2", Case("chk-full", "", (1.0,) * P, (2.0,) * P, None, ())),
    ):
        run = Run("1f1b", "1f1b")
        csv_path, _, _ = solve(case, run, out, args)
        spec = EmulatedSpec(str(csv_path), true_costs(case, run, unit), M, steps=args.steps,
                            layers=args.layers)  # fmt: skip
        ranks = run_emulated(spec)
        *_, per_kind = measure(ranks, args.warmup, unit)
        print(f"{label}: median duration per stage and action (units of {args.unit_ms:g} ms)")
        by_stage: dict[int, list[str]] = defaultdict(list)
        for key, value in per_kind.items():
            match = re.fullmatch(r"(\d+)([FIWB])", key)
            assert match, key
            stage, kind = match.groups()
            by_stage[int(stage)].append(f"{kind} {value:.3f}")
        for stage, cells in sorted(by_stage.items()):
            print(f"  stage {stage}: {'  '.join(cells)}")


DEFAULT_PLOT = ("split-1.5/optimal-1x-abstract", "split-1.5/optimal-1x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", action="append", help="run only these cases (repeatable)")
    parser.add_argument("--unit-ms", type=float, default=50.0, help="ms per time unit")
    parser.add_argument("--steps", type=int, default=11, help="steps per run, warm-up included")
    parser.add_argument("--warmup", type=int, default=1, help="steps not counted")
    parser.add_argument("--layers", type=int, default=2, help="emulated layers per stage")
    parser.add_argument("--time-limit", type=float, default=20.0)
    parser.add_argument("--overhead-ms", type=float, default=OVERHEAD_MS,
                        help="plan each action with this fixed cost added (ms; the emulated "
                             "stages sleep the true times; 0: plan the bare times)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=2, choices=(1, 2))
    parser.add_argument("--json-out", help="save every run's numbers and timelines here")
    parser.add_argument("--plot", help="draw planned above measured for --plot-run (.png)")
    parser.add_argument("--plot-run", action="append",
                        help=f"CASE/SCHEDULE to plot (repeatable; {DEFAULT_PLOT})")  # fmt: skip
    parser.add_argument("--workdir", help="keep the schedule files here (default: temporary)")
    parser.add_argument("--check-emulation", action="store_true",
                        help="only time I, W and B per stage position")  # fmt: skip
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--from-json", help="no runs: table and --plot from a --json-out file")
    args = parser.parse_args()
    if args.steps - args.warmup < 3:
        parser.error("need at least 3 measured steps (--steps - --warmup >= 3)")
    all_cases = cases()
    if args.list:
        for case in all_cases:
            print(f"{case.name:10s} {case.description}: {', '.join(r.label for r in case.runs)}")
        return
    chosen = [c for c in all_cases if not args.case or c.name in args.case]
    unknown = set(args.case or ()) - {c.name for c in all_cases}
    if unknown:
        parser.error(f"unknown case(s) {sorted(unknown)}; --list shows them")
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        names = {f.name for f in fields(Result)}
        loaded = [Result(**{k: v for k, v in r.items() if k in names}) for r in saved["results"]]
        mark_zero_bubble_orders(loaded)
        args.unit_ms = saved["unit_ms"]
        args.overhead_ms = saved.get("overhead_ms", 0.0)
        report([r for r in loaded if not args.case or r.case in args.case], args)
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.workdir or tmp)
        out.mkdir(parents=True, exist_ok=True)
        if args.check_emulation:
            check_emulation(args, out)
            return
        results: list[Result] = []
        for case in chosen:
            print(f"{case.name}: {case.description}", flush=True)
            results += run_case(case, args, out)
    report(results, args)


def report(results: list[Result], args: argparse.Namespace) -> None:
    """Print the table and the targets; write --json-out and --plot."""
    print()
    print(table(results, args.unit_ms, args.overhead_ms))
    print()
    for line in targets(results):
        print(line)
    if args.json_out and not args.from_json:
        Path(args.json_out).write_text(
            json.dumps(
                {"unit_ms": args.unit_ms, "overhead_ms": args.overhead_ms,
                 "steps": args.steps, "warmup": args.warmup,
                 "results": [r.__dict__ | {"ratio": r.ratio} for r in results]},
                indent=1,
            )
        )  # fmt: skip
    if args.plot:
        chosen = []
        for spec in args.plot_run or DEFAULT_PLOT:
            case_name, _, run_label = spec.partition("/")
            match = [r for r in results if (r.case, r.run) == (case_name, run_label)]
            if not match:
                raise SystemExit(f"--plot-run {spec}: not among the runs")
            chosen.append(match[0])
        plot(chosen, args.plot, args.unit_ms)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
