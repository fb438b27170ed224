"""``ppopt solve`` and ``ppopt compare`` (docs/contract.md §3): options, then one call into
:mod:`ppopt.runs`, then the report and the output files.

An option given on the command line overrides the same config key; one not given never does
(:func:`config_overrides` builds that override dict for both commands).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ppopt.cli.args import (
    config_path,
    parse_latencies,
    parse_numbers,
    parse_placement,
    parse_schedule_names,
)
from ppopt.cli.errors import EXIT_INTERRUPTED, errors_to_exit_codes, fail
from ppopt.cli.outputs import (
    Outputs,
    check_distinct,
    checked,
    finish_progress,
    progress_printer,
    save_comparison,
    wrote,
)
from ppopt.config import MAX_TASKS, OPTIMAL, check_picture_suffix, known_schedules, load_config
from ppopt.export.comparison_json import write_comparison
from ppopt.report import compare_table, format_report, partition_search_lines
from ppopt.runs import compare_schedules, run_schedule

DEFAULT_COMPARE = "1f1b,gpipe,optimal"
#: ``compare``'s default on two model copies (``copies: 2``), where 1F1B runs one copy.
DEFAULT_COMPARE_TWO_COPIES = "dualpipe,gpipe,optimal"


# Options shared by `solve` and `compare`, declared once.
MemoryLimitOption = Annotated[
    str | None,
    typer.Option(
        "--memory-limit",
        help="none, Nx (N times the 1F1B peak), a number or one per device. "
        "Default 1x for optimal, none for baselines.",
    ),
]
TimeLimitOption = Annotated[
    float | None, typer.Option("--time-limit", help="Solver time limit in seconds (whole solve).")
]
WorkersOption = Annotated[
    int | None, typer.Option("--workers", help="Solver workers (0 = every core).")
]
SeedOption = Annotated[int | None, typer.Option("--seed", help="Solver random seed.")]
DeterministicOption = Annotated[
    bool | None,
    typer.Option("--deterministic", help="Same input, same schedule on every run and machine."),
]
AllowLargeOption = Annotated[
    bool,
    typer.Option(
        "--allow-large",
        help=f"Run a problem of more than {MAX_TASKS:,} tasks (refused by default, with the "
        "estimated time and memory).",
    ),
]
NumStagesOption = Annotated[
    int | None, typer.Option("-s", "--num-stages", help="Number of devices (pipeline stages).")
]
NumBatchesOption = Annotated[
    int | None, typer.Option("-b", "--num-batches", help="Number of micro-batches.")
]
ForwardTimesOption = Annotated[
    str | None,
    typer.Option(
        "-f",
        "--forward-times",
        help="Forward time per virtual stage, space- or comma-separated; one value = all.",
    ),
]
BackwardTimesOption = Annotated[
    str | None,
    typer.Option(
        "-bw",
        "--backward-times",
        help="Backward time per virtual stage (B only when --weight-times is given).",
    ),
]
WeightTimesOption = Annotated[
    str | None,
    typer.Option(
        "-w",
        "--weight-times",
        help="Weight-gradient (W) time per virtual stage; splits the backward into B and W.",
    ),
]
OverlapTimesOption = Annotated[
    str | None,
    typer.Option(
        "--overlap-times",
        help="Overlapped F+B pair time per virtual stage: lets a forward and a backward of "
        "another micro-batch on one device run as one pair task (DualPipe's overlap).",
    ),
]
P2pTimeOption = Annotated[
    str | None,
    typer.Option(
        "--p2p-time",
        help="Latency between two devices: one number for every link, one per stage boundary "
        "(S-1 values, space- or comma-separated), or a per-device-pair matrix with rows "
        "separated by ';' ('0 0.1; 0.1 0').",
    ),
]
CopiesOption = Annotated[
    int | None,
    typer.Option(
        "--copies",
        help="Model copies: 1 (default) or 2 (DualPipe: copy 1 runs the model from the last "
        "device back, half the micro-batches each way).",
    ),
]
ChunksOption = Annotated[
    int | None, typer.Option("--chunks", help="Model chunks per device (num_chunks).")
]
PlacementOption = Annotated[
    str | None,
    typer.Option("--placement", help="interleaved, vshape, or one device index per virtual stage."),
]
ConfigOption = Annotated[
    Path | None, typer.Option("-c", "--config", help="Config file (same as CONFIG).")
]
ConfigArg = Annotated[
    Path | None,
    typer.Argument(
        metavar="CONFIG", help="Config file (.yaml, .yml or .json).", show_default=False
    ),
]

METHOD_HELP = (
    "auto (default: direct up to 1,500 tasks), direct (full CP-SAT model, proves optimality "
    "on small problems) or large (heuristics, exact window re-solves swept over the best "
    "schedule, then LNS; for thousands of tasks)."
)


def solve(
    config_arg: ConfigArg = None,
    config: ConfigOption = None,
    num_stages: NumStagesOption = None,
    num_batches: NumBatchesOption = None,
    forward_times: ForwardTimesOption = None,
    backward_times: BackwardTimesOption = None,
    weight_times: WeightTimesOption = None,
    overlap_times: OverlapTimesOption = None,
    p2p_time: P2pTimeOption = None,
    chunks: ChunksOption = None,
    placement: PlacementOption = None,
    copies: CopiesOption = None,
    schedule: Annotated[
        str | None,
        typer.Option(
            "--schedule",
            help=f"optimal (default) or a baseline: {', '.join(known_schedules()[1:])}.",
        ),
    ] = None,
    memory_limit: MemoryLimitOption = None,
    recompute: Annotated[
        str | None,
        typer.Option(
            "--recompute",
            help="none (default), all (every micro-batch recomputes its forward before its "
            "backward) or auto (the optimizer chooses per stage and micro-batch).",
        ),
    ] = None,
    recompute_times: Annotated[
        str | None,
        typer.Option("--recompute-times", help="R time per virtual stage (default: forward)."),
    ] = None,
    recompute_per: Annotated[
        str | None,
        typer.Option(
            "--recompute-per",
            help="With --recompute auto: microbatch (default, any choice) or stage (all of a "
            "stage's micro-batches or none: what checkpointing a PyTorch stage module runs).",
        ),
    ] = None,
    checkpoint: Annotated[
        str | None,
        typer.Option(
            "--checkpoint",
            help="Memory a recomputed micro-batch keeps from F to R, per virtual stage "
            "(default 0).",
        ),
    ] = None,
    offload: Annotated[
        str | None,
        typer.Option(
            "--offload",
            help="none (default), all (every micro-batch's activations copied to host after its "
            "F and back before its B, on a copy lane beside compute) or auto (the optimizer "
            "chooses).",
        ),
    ] = None,
    offload_times: Annotated[
        str | None,
        typer.Option(
            "--offload-times", help="Copy time (O and L) per virtual stage (default: forward)."
        ),
    ] = None,
    runtime: Annotated[
        str | None,
        typer.Option(
            "--runtime",
            help="abstract (default: the papers' model) or torch (PyTorch's pipelining runtime "
            "as it runs: stage 0's I does nothing and its W runs the whole backward; a split "
            "backward holds its activations until W).",
        ),
    ] = None,
    order: Annotated[
        str | None,
        typer.Option("--order", help="free (solver picks every order) or fixed (1F1B order)."),
    ] = None,
    objective: Annotated[
        str | None, typer.Option("--objective", help="makespan or span (largest per-device span).")
    ] = None,
    time_limit: TimeLimitOption = None,
    workers: WorkersOption = None,
    seed: SeedOption = None,
    deterministic: DeterministicOption = None,
    method: Annotated[str | None, typer.Option("--method", help=METHOD_HELP)] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "-o",
            "--output",
            help="Picture path (.png, .svg, .pdf; .html: the interactive page); "
            "default pipeline_<schedule>.png.",
        ),
    ] = None,
    no_visualization: Annotated[
        bool, typer.Option("--no-visualization", help="Do not draw the picture.")
    ] = False,
    json_file: Annotated[
        str | None, typer.Option("--json", help="Write the schedule file (JSON) here.")
    ] = None,
    trace: Annotated[
        str | None, typer.Option("--trace", help="Write a Chrome/Perfetto trace here.")
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", help="No progress or 'wrote' lines on stderr (report stays).")
    ] = False,
    allow_large: AllowLargeOption = False,
) -> None:
    """Schedule one problem (the optimizer or a baseline) and report it beside 1F1B."""
    with errors_to_exit_codes():
        overrides = config_overrides(
            num_stages=num_stages,
            num_batches=num_batches,
            forward_times=forward_times,
            backward_times=backward_times,
            weight_times=weight_times,
            overlap_times=overlap_times,
            p2p_time=p2p_time,
            chunks=chunks,
            placement=placement,
            copies=copies,
            schedule=schedule,
            memory_limit=memory_limit,
            recompute=recompute,
            recompute_times=recompute_times,
            recompute_per=recompute_per,
            checkpoint=checkpoint,
            offload=offload,
            offload_times=offload_times,
            runtime=runtime,
            order=order,
            objective=objective,
            time_limit=time_limit,
            workers=workers,
            seed=seed,
            deterministic=deterministic,
            method=method,
            output=output,
            json_file=json_file,
            trace=trace,
        )
        path = config_path(config_arg, config)
        run = load_config(path, overrides, None if allow_large else MAX_TASKS)
        picture = None if no_visualization else run.output_file or f"pipeline_{run.schedule}.png"
        named = [
            ("--output" if output else "output_file", picture),
            ("--json" if json_file else "json_file", run.json_file),
            ("--trace" if trace else "trace_file", run.trace_file),
        ]
        check_distinct([("config file", path)], named)
        picture_path, json_path, trace_path = (checked(label, value) for label, value in named)
        outputs = Outputs(picture=picture_path, json=json_path, trace=trace_path)
        progress = progress_printer(quiet)
        outcome = run_schedule(run, progress=progress)
        finish_progress(progress, outcome.result)
        typer.echo(format_report(outcome.schedule, outcome.result, outcome.reference))
        if outcome.partition is not None:
            typer.echo("\n".join(partition_search_lines(outcome.partition)))
        solver = None if outcome.result is None else outcome.result.to_dict()
        outputs.write(outcome.schedule, solver, quiet)
        if outcome.schedule.interrupted:
            fail("interrupted; the best schedule found so far was written", EXIT_INTERRUPTED)


def compare(
    config_arg: ConfigArg = None,
    config: ConfigOption = None,
    num_stages: NumStagesOption = None,
    num_batches: NumBatchesOption = None,
    forward_times: ForwardTimesOption = None,
    backward_times: BackwardTimesOption = None,
    weight_times: WeightTimesOption = None,
    overlap_times: OverlapTimesOption = None,
    p2p_time: P2pTimeOption = None,
    chunks: ChunksOption = None,
    placement: PlacementOption = None,
    copies: CopiesOption = None,
    schedules: Annotated[
        str | None,
        typer.Option(
            "--schedules",
            help=f"Comma-separated schedule names; default {DEFAULT_COMPARE} "
            f"({DEFAULT_COMPARE_TWO_COPIES} with copies 2) "
            "(those that apply to the problem).",
        ),
    ] = None,
    output: Annotated[
        str,
        typer.Option(
            "-o",
            "--output",
            help="Figure path (.png, .svg, .pdf; .html: one page, a tab per schedule).",
        ),
    ] = "pipeline_compare.png",
    no_visualization: Annotated[
        bool, typer.Option("--no-visualization", help="Do not draw the figure.")
    ] = False,
    memory_limit: MemoryLimitOption = None,
    time_limit: TimeLimitOption = None,
    workers: WorkersOption = None,
    seed: SeedOption = None,
    deterministic: DeterministicOption = None,
    json_file: Annotated[
        str | None,
        typer.Option("--json", help="Write the comparison (each schedule's metrics) as JSON."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress on stderr.")] = False,
    allow_large: AllowLargeOption = False,
) -> None:
    """Several schedules of one problem: one table and one figure on a shared time axis."""
    with errors_to_exit_codes():
        names = parse_schedule_names(schedules or DEFAULT_COMPARE)
        overrides = config_overrides(
            num_stages=num_stages,
            num_batches=num_batches,
            forward_times=forward_times,
            backward_times=backward_times,
            weight_times=weight_times,
            overlap_times=overlap_times,
            p2p_time=p2p_time,
            chunks=chunks,
            placement=placement,
            copies=copies,
            schedule=OPTIMAL if OPTIMAL in names else names[0],
            memory_limit=memory_limit,
            time_limit=time_limit,
            workers=workers,
            seed=seed,
            deterministic=deterministic,
        )
        path = config_path(config_arg, config)
        run = load_config(path, overrides, None if allow_large else MAX_TASKS)
        if schedules is None and run.problem.copies == 2:
            names = parse_schedule_names(DEFAULT_COMPARE_TWO_COPIES)
        check_picture_suffix("--output", output)
        drawn = None if no_visualization else output
        check_distinct([("config file", path)], [("--output", drawn), ("--json", json_file)])
        figure = None if no_visualization else checked("--output", output)
        summary = checked("--json", json_file)
        progress = progress_printer(quiet)
        comparison = compare_schedules(run, names, progress, skip_inapplicable=schedules is None)
        finish_progress(progress, comparison.results[0] if comparison.results else None)
        for name in comparison.left_out:
            typer.echo(f"note: {name} does not apply to this problem; left out", err=True)
        for line in compare_table(comparison.schedules):
            typer.echo(line)
        if comparison.partition is not None:
            typer.echo("\n".join(partition_search_lines(comparison.partition)))
        for result in comparison.results:
            typer.echo(
                f"optimal: {result.status}, lower bound {result.lower_bound:.6g}, "
                f"gap {result.gap * 100:.2f}%, solve time {result.wall_time:.2f} s"
            )
        if summary is not None:
            write_comparison(summary, comparison)
            wrote(summary, quiet)
        if figure is not None:
            save_comparison(comparison.schedules, figure, comparison.problem.memory_caps)
            wrote(figure, quiet)
        if any(result.interrupted for result in comparison.results):
            fail("interrupted; the optimizer's best schedule so far is shown", EXIT_INTERRUPTED)


def config_overrides(
    *,
    num_stages: int | None = None,
    num_batches: int | None = None,
    forward_times: str | None = None,
    backward_times: str | None = None,
    weight_times: str | None = None,
    p2p_time: str | None = None,
    chunks: int | None = None,
    placement: str | None = None,
    copies: int | None = None,
    schedule: str | None = None,
    memory_limit: str | None = None,
    recompute: str | None = None,
    recompute_times: str | None = None,
    overlap_times: str | None = None,
    recompute_per: str | None = None,
    checkpoint: str | None = None,
    offload: str | None = None,
    offload_times: str | None = None,
    runtime: str | None = None,
    order: str | None = None,
    objective: str | None = None,
    time_limit: float | None = None,
    workers: int | None = None,
    seed: int | None = None,
    deterministic: bool | None = None,
    method: str | None = None,
    output: str | None = None,
    json_file: str | None = None,
    trace: str | None = None,
) -> dict[str, Any]:
    """The command-line options as config keys (docs/contract.md §2); ``None``: not given."""

    def numbers(key: str, text: str | None) -> float | list[float] | None:
        return None if text is None else parse_numbers(key, text)

    return {
        "num_stages": num_stages,
        "num_batches": num_batches,
        "forward_times": numbers("forward_times", forward_times),
        "backward_times": numbers("backward_times", backward_times),
        "weight_times": numbers("weight_times", weight_times),
        "p2p_time": None if p2p_time is None else parse_latencies(p2p_time),
        "num_chunks": chunks,
        "placement": None if placement is None else parse_placement(placement),
        "copies": copies,
        "schedule": schedule,
        "memory": {
            "limit": memory_limit,
            "recompute": recompute,
            "recompute_per": recompute_per,
            "checkpoint": numbers("memory.checkpoint", checkpoint),
            "offload": offload,
        },
        "recompute_times": numbers("recompute_times", recompute_times),
        "offload_times": numbers("offload_times", offload_times),
        "overlap_times": numbers("overlap_times", overlap_times),
        "runtime": runtime,
        "solver": {
            "time_limit": time_limit,
            "workers": workers,
            "seed": seed,
            "order": order,
            "objective": objective,
            "deterministic": deterministic,
            "method": method,
        },
        "output_file": output,
        "json_file": json_file,
        "trace_file": trace,
    }
