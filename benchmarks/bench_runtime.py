"""Runtime fidelity: ppopt's planned makespan against PyTorch's pipelining runtime.

For each case and schedule the benchmark

1. solves with the CLI (``ppopt solve ... --json out.json``) and exports the PyTorch table
   (``ppopt export out.json --format torch -o out.csv``) — the CLI and the schedule file are
   the only interface, nothing of ppopt is imported;
2. runs the table with ``torch.distributed.pipelining.schedules._PipelineScheduleRuntime`` on
   CPU/gloo, one process per rank, stages emulated by sleeps (``tests/torch_runtime/
   emulated.py``: F sleeps ``F*unit``, the activation-gradient chain ``B*unit``, the
   weight-gradient nodes ``W*unit``; PyTorch decides which of them run in ``I``, ``W`` and
   ``B``), ``--steps`` steps of which the first is a warm-up;
3. prints the planned makespan (``metrics.makespan`` of the file), the measured step (median
   over the steps after the warm-up of the span from the first compute action's start to the
   last one's end over all ranks, in units), their ratio, and the planned and measured gain
   over the case's 1F1B; also the planned peak memory (ppopt's model) and the peak under
   PyTorch's rule measured by ``benchmarks/probe_torch_stage.py`` (everything F allocates is
   held until that micro-batch's W ends; I frees nothing that matters).

The emulated stages always cost the case's *true* times; a case may solve with other times
(``plan``): the ``*-s0`` cases plan with stage 0's B = 0.001 and its W = B + W, which is what
PyTorch 2.13 runs on stage 0 (``I`` skips the first stage, ``W`` runs its whole backward).

    python benchmarks/bench_runtime.py                                  # every case, 50 ms unit
    python benchmarks/bench_runtime.py --case split-111 --case split-111-s0 --unit-ms 50
    python benchmarks/bench_runtime.py --json-out runtime.json \\
        --plot docs/planned_vs_measured.png --plot-run split-111/optimal-1x
    python benchmarks/bench_runtime.py --check-emulation               # time F, I, W, B per stage
    PPOPT="python -m ppopt" python benchmarks/bench_runtime.py ...      # another ppopt command

Colours of ``--plot`` are ppopt's own (``ppopt.viz.gantt.KIND_COLORS``): F blue ``#3b75af``,
B orange ``#e1812c`` (ppopt's B: PyTorch's ``I`` of a split backward or its full ``B``),
W green ``#3a923a``.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.torch_runtime.emulated import (  # noqa: E402
    EmulatedSpec,
    RankResult,
    StageCost,
    run_emulated,
)

KIND_COLORS = {"F": "#3b75af", "B": "#e1812c", "W": "#3a923a"}
P, M = 4, 8


@dataclass(frozen=True)
class Run:
    """One schedule of a case: its label, the ``--schedule`` name and extra solve options;
    ``problem`` overrides the case's problem options (the V case's 1F1B reference)."""

    label: str
    schedule: str
    options: tuple[str, ...] = ()
    problem: tuple[str, ...] | None = None
    true: tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...] | None] | None = None


@dataclass(frozen=True)
class Case:
    """A problem (true per-virtual-stage F, B, W; W None = full backward), the solve options
    of its plan (default: the true times) and its runs; ``reference`` is the 1F1B run."""

    name: str
    description: str
    forward: tuple[float, ...]
    backward: tuple[float, ...]
    weight: tuple[float, ...] | None
    runs: tuple[Run, ...]
    layout: tuple[str, ...] = ()
    plan: tuple[str, ...] | None = None
    reference: str = "1f1b"
    #: memory.retained of every virtual stage (a config file is written: the CLI has no
    #: option for it); None = ppopt's default 0 (a split B frees the whole activation)
    retained: float | None = None

    def problem_options(self) -> list[str]:
        if self.plan is not None:
            return [*self.layout, *self.plan]
        out = [*self.layout, "-f", _list(self.forward), "-bw", _list(self.backward)]
        if self.weight is not None:
            out += ["-w", _list(self.weight)]
        return out


def _list(values: tuple[float, ...]) -> str:
    return " ".join(f"{v:g}" for v in values)


def _split_runs() -> tuple[Run, ...]:
    return (
        Run("1f1b", "1f1b"),
        Run("zb-h1", "zb-h1"),
        Run("optimal-1x", "optimal", ("--memory-limit", "1x")),
        Run("optimal-2x", "optimal", ("--memory-limit", "2x")),
    )


def _stage0_plan(forward, backward, weight) -> tuple[str, ...]:
    """Solve options that give stage 0 (virtual stage 0) B = 0.001 and W = B + W."""
    b = list(backward)
    w = list(weight)
    b[0], w[0] = 0.001, backward[0] + weight[0]
    return ("-f", _list(forward), "-bw", _list(tuple(b)), "-w", _list(tuple(w)))


def cases() -> list[Case]:
    """The benchmark's cases (p=4, m=8)."""
    eq = (1.0,) * P
    v_layout = ("--placement", "vshape", "--chunks", "2")
    out = [
        Case(
            "full-eq",
            "full backward, F=1 B=2",
            eq,
            (2.0,) * P,
            None,
            (Run("1f1b", "1f1b"), Run("optimal-1x", "optimal", ("--memory-limit", "1x"))),
        ),
        Case(
            "full-uneq",
            "full backward, unequal stages F=1 1.4 0.8 1.2, B=2F",
            (1.0, 1.4, 0.8, 1.2),
            (2.0, 2.8, 1.6, 2.4),
            None,
            (Run("1f1b", "1f1b"), Run("optimal-1x", "optimal", ("--memory-limit", "1x"))),
        ),
    ]
    for name, b, w in (("split-111", 1.0, 1.0), ("split-1.5", 1.5, 0.5)):
        label = f"split F=1 B={b:g} W={w:g}"
        backward, weight = (b,) * P, (w,) * P
        out.append(Case(name, label, eq, backward, weight, _split_runs()))
        out.append(
            Case(
                f"{name}-s0",
                f"{label}, planned with stage 0 B=0.001 W={b + w:g}",
                eq,
                backward,
                weight,
                _split_runs(),
                plan=_stage0_plan(eq, backward, weight),
            )
        )
    for name, b, w in (("split-111", 1.0, 1.0), ("split-1.5", 1.5, 0.5)):
        label = f"split F=1 B={b:g} W={w:g}"
        backward, weight = (b,) * P, (w,) * P
        out.append(
            Case(
                f"{name}-s0r",
                f"{label}, planned with stage 0 B=0.001 W={b + w:g} and retained 1 "
                f"(all held until W)",
                eq,
                backward,
                weight,
                (Run("1f1b", "1f1b"), *_split_runs()[2:]),
                plan=_stage0_plan(eq, backward, weight),
                retained=1.0,
            )
        )
    v_eq = (1.0,) * (2 * P)
    v_runs = (
        Run(
            "1f1b",
            "1f1b",
            problem=("-f", "2", "-bw", "4"),
            true=((2.0,) * P, (4.0,) * P, None),
        ),
        Run("zb-v", "zb-v"),
        Run("optimal-1x", "optimal", ("--memory-limit", "1x")),
    )
    out.append(
        Case(
            "v-111",
            "V placement, 2 chunks, F=B=W=1 per chunk",
            v_eq,
            v_eq,
            v_eq,
            v_runs,
            layout=v_layout,
        )
    )
    out.append(
        Case(
            "v-111-s0",
            "V placement, F=B=W=1, planned with stage 0 B=0.001 W=2",
            v_eq,
            v_eq,
            v_eq,
            v_runs,
            layout=v_layout,
            plan=_stage0_plan(v_eq, v_eq, v_eq),
        )
    )
    out.append(
        Case(
            "v-111-s0r",
            "V placement, F=B=W=1, planned with stage 0 B=0.001 W=2 and retained 1",
            v_eq,
            v_eq,
            v_eq,
            (v_runs[0], v_runs[2]),
            layout=v_layout,
            plan=_stage0_plan(v_eq, v_eq, v_eq),
            retained=1.0,
        )
    )
    return out


@dataclass
class Result:
    case: str
    run: str
    planned: float
    measured: float
    wall: float
    step_spans: list[float]
    planned_peak: float
    torch_peak: float
    gain_planned: float | None = None
    gain_measured: float | None = None
    plan_ops: list[dict] = field(default_factory=list)
    measured_ops: list[dict] = field(default_factory=list)
    per_kind: dict[str, float] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.measured / self.planned


def ppopt_command() -> list[str]:
    return shlex.split(os.environ.get("PPOPT", "ppopt"))


def solve(case: Case, run: Run, out: Path, args: argparse.Namespace) -> tuple[Path, dict]:
    """Solve and export one run with the CLI; the schedule file's content and the CSV path."""
    json_path, csv_path = (
        out / f"{case.name}_{run.label}.json",
        out / f"{case.name}_{run.label}.csv",
    )
    problem = list(run.problem) if run.problem is not None else case.problem_options()
    if case.retained is not None and run.problem is None:
        config = out / f"{case.name}_{run.label}_config.json"
        config.write_text(json.dumps(config_of(problem, case.retained)))
        problem = [str(config)]
    command = [
        *ppopt_command(), "solve", "-s", str(P), "-b", str(M), *problem,
        "--schedule", run.schedule, *run.options, "--json", str(json_path),
        "--no-visualization", "--quiet", "--workers", str(args.workers),
        "--time-limit", str(args.time_limit),
    ]  # fmt: skip
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    export = [*ppopt_command(), "export", str(json_path), "--format", "torch", "-o",
              str(csv_path), "--quiet"]  # fmt: skip
    subprocess.run(export, check=True, stdout=subprocess.DEVNULL)
    return csv_path, json.loads(json_path.read_text())


def config_of(options: list[str], retained: float) -> dict:
    """A config file with the problem given by CLI options and ``memory.retained``."""
    keys = {"-f": "forward_times", "-bw": "backward_times", "-w": "weight_times",
            "--placement": "placement", "--chunks": "num_chunks"}  # fmt: skip
    config: dict = {"num_stages": P, "num_batches": M}
    for flag, value in zip(options[::2], options[1::2], strict=True):
        key = keys[flag]
        if key.endswith("_times"):
            config[key] = [float(v) for v in value.split()]
        else:
            config[key] = int(value) if key == "num_chunks" else value
    stages = len(config["forward_times"])
    config["memory"] = {"activation": 1.0, "retained": [retained] * stages}
    return config


def true_costs(case: Case, run: Run, unit: float) -> tuple[StageCost, ...]:
    forward, backward, weight = run.true or (case.forward, case.backward, case.weight)
    weight = weight or (0.0,) * len(forward)
    return tuple(
        StageCost(f * unit, b * unit, w * unit)
        for f, b, w in zip(forward, backward, weight, strict=True)
    )


def peak(ops: list[dict], hold_until_w: bool) -> float:
    """Peak activation units per device of a schedule file's ops (activation 1 per F).

    ``hold_until_w=False``: ppopt's model with nothing retained (F allocates at its start, the
    micro-batch's B frees at its end). ``True``: PyTorch's measured rule (held until W ends;
    B frees for a full backward)."""
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
    steps = sorted({r.step for res in results for r in res.records if r.step >= warmup})
    spans, walls = [], []
    for step in steps:
        recs = [r for res in results for r in res.records if r.step == step]
        spans.append((max(r.end for r in recs) - min(r.start for r in recs)) / unit)
        walls.append(
            (max(res.step_walls[step][1] for res in results)
             - min(res.step_walls[step][0] for res in results)) / unit
        )  # fmt: skip
    median_step = steps[len(steps) // 2]
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
    for run in case.runs:
        csv_path, data = solve(case, run, out, args)
        spec = EmulatedSpec(
            str(csv_path), true_costs(case, run, unit), M, steps=args.steps, layers=args.layers
        )
        ranks = run_emulated(spec)
        measured, wall, spans, ops, per_kind = measure(ranks, args.warmup, unit)
        result = Result(
            case.name,
            run.label,
            float(data["metrics"]["makespan"]),
            measured,
            wall,
            spans,
            max(data["metrics"]["peak_memory"]),
            peak(data["ops"], hold_until_w=True),
            plan_ops=data["ops"],
            measured_ops=ops,
            per_kind=per_kind,
        )
        results.append(result)
        print(
            f"  {case.name:13s} {run.label:11s} planned {result.planned:7.2f}  measured "
            f"{measured:7.2f}  ratio {result.ratio:.3f}",
            flush=True,
        )
    reference = next((r for r in results if r.run == case.reference), None)
    if reference is not None:
        for r in results:
            r.gain_planned = 1 - r.planned / reference.planned
            r.gain_measured = 1 - r.measured / reference.measured
    return results


def table(results: list[Result], unit_ms: float) -> str:
    lines = [
        "| case | schedule | planned | measured | measured/planned | step wall | "
        "planned gain | measured gain | peak (ppopt) | peak (PyTorch rule) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        gp = "" if r.gain_planned is None else f"{100 * r.gain_planned:.1f} %"
        gm = "" if r.gain_measured is None else f"{100 * r.gain_measured:.1f} %"
        lines.append(
            f"| {r.case} | {r.run} | {r.planned:.2f} | {r.measured:.2f} | {r.ratio:.3f} | "
            f"{r.wall:.2f} | {gp} | {gm} | {r.planned_peak:g} | {r.torch_peak:g} |"
        )
    lines.append(f"\n(times in units of {unit_ms:g} ms; peaks in activations per device)")
    return "\n".join(lines)


def plot(result: Result, path: str, unit_ms: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    devices = 1 + max(op["device"] for op in result.plan_ops)
    end = max(max(o["end"] for o in result.plan_ops), max(o["end"] for o in result.measured_ops))
    fig, axes = plt.subplots(2, 1, figsize=(14, 1.0 + 0.9 * devices * 2), sharex=True)
    titles = (
        f"planned (ppopt, makespan {result.planned:.2f})",
        f"measured in PyTorch 2.13 _PipelineScheduleRuntime, emulated stages "
        f"(median step, span {result.measured:.2f}; unit {unit_ms:g} ms)",
    )
    for ax, ops, title in zip(axes, (result.plan_ops, result.measured_ops), titles, strict=True):
        for op in ops:
            kind = "B" if op["kind"] in ("I", "B") else op["kind"]
            width = op["end"] - op["start"]
            ax.barh(
                op["device"], max(width, 0.02), left=op["start"], height=0.8,
                color=KIND_COLORS[kind], edgecolor="white", linewidth=0.5,
            )  # fmt: skip
            if width > 0.45:
                ax.text(
                    op["start"] + width / 2, op["device"], str(op["microbatch"]),
                    ha="center", va="center", fontsize=7,
                    color="white" if kind != "B" else "black",
                )  # fmt: skip
        ax.set_yticks(range(devices), [f"rank {d}" for d in range(devices)])
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10, loc="left")
        ax.grid(axis="x", color="0.85", linewidth=0.6)
        ax.set_axisbelow(True)
    axes[1].set_xlabel("time (units)")
    axes[1].set_xlim(0, end * 1.01)
    handles = [
        Patch(color=KIND_COLORS["F"], label="F"),
        Patch(color=KIND_COLORS["B"], label="B (PyTorch I, or full B)"),
        Patch(color=KIND_COLORS["W"], label="W"),
    ]
    fig.legend(handles=handles, loc="upper right", fontsize=8, ncol=3, frameon=False)
    fig.suptitle(f"{result.case} / {result.run}: measured/planned = {result.ratio:.3f}")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
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
        csv_path, _ = solve(case, run, out, args)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", action="append", help="run only these cases (repeatable)")
    parser.add_argument("--unit-ms", type=float, default=50.0, help="ms per time unit")
    parser.add_argument("--steps", type=int, default=4, help="steps per run, warm-up included")
    parser.add_argument("--warmup", type=int, default=1, help="steps not counted")
    parser.add_argument("--layers", type=int, default=2, help="emulated layers per stage")
    parser.add_argument("--time-limit", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2, choices=(1, 2))
    parser.add_argument("--json-out", help="save every run's numbers and timelines here")
    parser.add_argument("--plot", help="draw planned above measured for --plot-run (.png)")
    parser.add_argument("--plot-run", default="split-111/optimal-1x", help="CASE/SCHEDULE")
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
            print(f"{case.name:13s} {case.description}: {', '.join(r.label for r in case.runs)}")
        return
    chosen = [c for c in all_cases if not args.case or c.name in args.case]
    unknown = set(args.case or ()) - {c.name for c in all_cases}
    if unknown:
        parser.error(f"unknown case(s) {sorted(unknown)}; --list shows them")
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        names = {f.name for f in fields(Result)}
        loaded = [Result(**{k: v for k, v in r.items() if k in names}) for r in saved["results"]]
        args.unit_ms = saved["unit_ms"]
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
    """Print the table; write --json-out and --plot."""
    print()
    print(table(results, args.unit_ms))
    if args.json_out and not args.from_json:
        Path(args.json_out).write_text(
            json.dumps(
                {"unit_ms": args.unit_ms, "steps": args.steps, "warmup": args.warmup,
                 "results": [r.__dict__ | {"ratio": r.ratio} for r in results]},
                indent=1,
            )
        )  # fmt: skip
    if args.plot:
        case_name, run_label = args.plot_run.split("/")
        match = [r for r in results if (r.case, r.run) == (case_name, run_label)]
        if not match:
            raise SystemExit(f"--plot-run {args.plot_run}: not among the runs")
        plot(match[0], args.plot, args.unit_ms)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
