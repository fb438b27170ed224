"""The ``ppopt`` command line (docs/contract.md §3): ``solve``, ``compare``, ``validate``, ``plot``,
``export``.

Two things click does not do natively are done here, each in one small tested place:

* :func:`rewrite_list_args` lets the seed's space-separated lists after one flag work
  (``-f 1 1.2 1 0.9`` becomes ``-f 1,1.2,1,0.9``) before click parses the arguments;
* :class:`PpoptGroup` turns every error into one ``error: ...`` line on stderr with the contract's
  exit code (2 bad input, 1 no schedule, 130 Ctrl-C) instead of click's multi-line usage box.

Outputs are written through :mod:`ppopt.atomic`: all of a run's files are first written to
temporary names and renamed together at the end, so a failed or interrupted run leaves every
existing output file untouched.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from ppopt.atomic import atomic_path
from ppopt.baselines import applicable_baselines, baseline
from ppopt.config import (
    CONFIG_SUFFIXES,
    OPTIMAL,
    ConfigError,
    RunConfig,
    check_picture_suffix,
    known_schedules,
    load_config,
)
from ppopt.errors import NoScheduleError, PpoptError
from ppopt.export.schedule_json import (
    dumps_schedule,
    read_schedule,
    write_schedule,
)
from ppopt.export.torch_csv import write_torch_csv
from ppopt.report import compare_table, format_report, reference_schedule, summary_line
from ppopt.schedule import Schedule
from ppopt.solver import Progress, SolveResult, SolverOptions

#: Options that take a list: every number-like token after them joins the list.
LIST_OPTIONS = frozenset(
    {
        "-f",
        "--forward-times",
        "-bw",
        "--backward-times",
        "-w",
        "--weight-times",
        "--memory-limit",
        "--placement",
    }
)
EXIT_BAD_INPUT = 2
EXIT_NO_SCHEDULE = 1
EXIT_INTERRUPTED = 130
TRACE_SUFFIX = ".trace.json"
DEFAULT_COMPARE = "1f1b,gpipe,optimal"


# ----------------------------------------------------------------------- argument rewrite


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


def rewrite_list_args(argv: Sequence[str]) -> list[str]:
    """Join the space-separated values after a list option into one comma-separated token.

    ``-f 1 2 3 4`` → ``-f 1,2,3,4``. The first token after the option is always its value (as
    click would take it); further tokens join while they are numbers or comma lists of numbers
    (negative numbers and ``nan`` included, so the config check can name them). ``--`` ends
    the rewriting.
    """
    out: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        out.append(token)
        i += 1
        if token == "--":
            out.extend(argv[i:])
            break
        if token in LIST_OPTIONS and i < len(argv):
            values = [argv[i]]
            i += 1
            while i < len(argv) and _is_number_list(argv[i]):
                values.append(argv[i])
                i += 1
            out.append(",".join(values))
    return out


def implicit_solve(argv: Sequence[str]) -> list[str]:
    """The seed had no sub-commands: ``ppopt -c cfg.json`` and ``ppopt cfg.yaml`` mean solve."""
    argv = list(argv)
    if not argv or argv[0] in ("--help", "-h"):
        return argv
    first = argv[0]
    if first.startswith("-") or Path(first).suffix.lower() in CONFIG_SUFFIXES:
        return ["solve", *argv]
    return argv


def _is_number_list(token: str) -> bool:
    parts = [part for part in token.split(",") if part]
    if not parts:
        return False
    try:
        for part in parts:
            float(part)
    except ValueError:
        return False
    return True


def parse_numbers(key: str, text: str) -> float | list[float]:
    """``"1,2 3"`` → ``[1.0, 2.0, 3.0]``; one value stays a scalar (every stage alike)."""
    parts = text.replace(",", " ").split()
    if not parts:
        raise ConfigError(f"{key}: expected one number or a list of numbers, got {text!r}")
    values = []
    for part in parts:
        try:
            values.append(float(part))
        except ValueError:
            raise ConfigError(f"{key}: expected a number, got {part!r}") from None
    return values[0] if len(values) == 1 else values


def parse_placement(text: str) -> str | list[int]:
    """A placement name (``interleaved``, ``vshape``) or a list of device indices."""
    parts = text.replace(",", " ").split()
    if len(parts) == 1 and not parts[0].lstrip("-").isdigit():
        return parts[0]
    try:
        return [int(part) for part in parts]
    except ValueError:
        raise ConfigError(
            f"placement: expected interleaved, vshape or device indices, got {text!r}"
        ) from None


# ------------------------------------------------------------------------ error handling


class PpoptGroup(TyperGroup):
    """The top-level command: argument rewrite, one-line errors, contract exit codes."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; exit (or return, when not standalone) with the exit code."""
        argv = rewrite_list_args(implicit_solve(sys.argv[1:] if args is None else list(args)))
        try:
            code = super().main(
                args=argv,
                prog_name=prog_name or "ppopt",
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except typer.TyperException as error:  # click's usage errors (bad option, bad value)
            if type(error).__name__ != "NoArgsIsHelpError":  # that one has printed the help
                _say_error(error.format_message())
            code = EXIT_BAD_INPUT
        except typer.Abort:
            code = EXIT_INTERRUPTED
        code = code if isinstance(code, int) else 0
        if standalone_mode:
            sys.exit(code)
        return code


def _say_error(message: str) -> None:
    """Print ``error: <message>`` as one line on stderr."""
    text = " ".join(str(message).split())
    if text[:1].isupper() and not text[1:2].isupper():
        text = text[0].lower() + text[1:]
    typer.echo(f"error: {text}", err=True)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Stop the command with one error line and an exit code."""
    _say_error(message)
    raise typer.Exit(code)


@contextlib.contextmanager
def errors_to_exit_codes() -> Iterator[None]:
    """Map ppopt's exceptions to one error line and the contract's exit codes."""
    try:
        yield
    except NoScheduleError as error:
        text = str(error)
        fail(text if text.startswith("no schedule") else f"no schedule: {text}", EXIT_NO_SCHEDULE)
    except PpoptError as error:
        fail(str(error))
    except KeyboardInterrupt:
        fail("interrupted", EXIT_INTERRUPTED)
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        fail(f"{where}{error.strerror or error}")


# --------------------------------------------------------------------------------- app

app = typer.Typer(
    cls=PpoptGroup,
    name="ppopt",
    help="Pipeline-parallelism schedule optimizer: optimal F/B/W orders, baselines, pictures.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

ConfigArg = Annotated[
    Path | None,
    typer.Argument(
        metavar="CONFIG", help="Config file (.yaml, .yml or .json).", show_default=False
    ),
]


@app.command()
def solve(
    config_arg: ConfigArg = None,
    config: Annotated[
        Path | None, typer.Option("-c", "--config", help="Config file (same as CONFIG).")
    ] = None,
    num_stages: Annotated[
        int | None, typer.Option("-s", "--num-stages", help="Number of devices (pipeline stages).")
    ] = None,
    num_batches: Annotated[
        int | None, typer.Option("-b", "--num-batches", help="Number of micro-batches.")
    ] = None,
    forward_times: Annotated[
        str | None,
        typer.Option(
            "-f",
            "--forward-times",
            help="Forward time per virtual stage, space- or comma-separated; one value = all.",
        ),
    ] = None,
    backward_times: Annotated[
        str | None,
        typer.Option(
            "-bw",
            "--backward-times",
            help="Backward time per virtual stage (B only when --weight-times is given).",
        ),
    ] = None,
    weight_times: Annotated[
        str | None,
        typer.Option(
            "-w",
            "--weight-times",
            help="Weight-gradient (W) time per virtual stage; splits the backward into B and W.",
        ),
    ] = None,
    p2p_time: Annotated[
        float | None,
        typer.Option("--p2p-time", help="Latency of every edge between two devices."),
    ] = None,
    chunks: Annotated[
        int | None, typer.Option("--chunks", help="Model chunks per device (num_chunks).")
    ] = None,
    placement: Annotated[
        str | None,
        typer.Option(
            "--placement", help="interleaved, vshape, or one device index per virtual stage."
        ),
    ] = None,
    schedule: Annotated[
        str | None,
        typer.Option(
            "--schedule",
            help=f"optimal (default) or a baseline: {', '.join(known_schedules()[1:])}.",
        ),
    ] = None,
    memory_limit: MemoryLimitOption = None,
    order: Annotated[
        str | None,
        typer.Option("--order", help="free (solver picks every order) or fixed (1F1B order)."),
    ] = None,
    objective: Annotated[
        str | None,
        typer.Option("--objective", help="makespan or span (largest per-device span)."),
    ] = None,
    time_limit: TimeLimitOption = None,
    workers: WorkersOption = None,
    seed: SeedOption = None,
    deterministic: DeterministicOption = None,
    method: Annotated[
        str | None,
        typer.Option(
            "--method",
            help="auto (default: direct up to 1,500 tasks), direct (full CP-SAT model, "
            "proves optimality on small problems) or large (heuristics, exact window "
            "re-solves swept over the best schedule, then LNS; for thousands of tasks).",
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option(
            "-o",
            "--output",
            help="Picture path (.png, .svg, .pdf); default pipeline_<schedule>.png.",
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
        bool,
        typer.Option("--quiet", help="No progress or 'wrote' lines on stderr (report stays)."),
    ] = False,
) -> None:
    """Schedule one problem (the optimizer or a baseline) and report it beside 1F1B."""
    with errors_to_exit_codes():
        overrides = {
            "num_stages": num_stages,
            "num_batches": num_batches,
            "forward_times": _numbers("forward_times", forward_times),
            "backward_times": _numbers("backward_times", backward_times),
            "weight_times": _numbers("weight_times", weight_times),
            "p2p_time": p2p_time,
            "num_chunks": chunks,
            "placement": None if placement is None else parse_placement(placement),
            "schedule": schedule,
            "memory": {"limit": memory_limit},
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
        run = load_config(_config_path(config_arg, config), overrides)
        picture = None if no_visualization else run.output_file or f"pipeline_{run.schedule}.png"
        outputs = _Outputs(
            picture=_checked("--output" if output else "output_file", picture),
            json=_checked("--json" if json_file else "json_file", run.json_file),
            trace=_checked("--trace" if trace else "trace_file", run.trace_file),
        )
        result = _run_optimizer(run, quiet) if run.schedule == OPTIMAL else None
        chosen = result.schedule if result is not None else _baseline(run)
        if result is not None and result.interrupted and not chosen.interrupted:
            chosen = Schedule(chosen.problem, chosen.name, chosen.device_ops, interrupted=True)
        typer.echo(format_report(chosen, result, reference_schedule(run.problem)))
        outputs.write(chosen, result, quiet)
        if chosen.interrupted:
            fail("interrupted; the best schedule found so far was written", EXIT_INTERRUPTED)


@app.command()
def compare(
    config: Annotated[Path, typer.Argument(help="Config file (.yaml, .yml or .json).")],
    schedules: Annotated[
        str | None,
        typer.Option(
            "--schedules",
            help=f"Comma-separated schedule names; default {DEFAULT_COMPARE} "
            "(those that apply to the problem).",
        ),
    ] = None,
    output: Annotated[
        str, typer.Option("-o", "--output", help="Figure path (.png, .svg, .pdf).")
    ] = "pipeline_compare.png",
    no_visualization: Annotated[
        bool, typer.Option("--no-visualization", help="Do not draw the figure.")
    ] = False,
    memory_limit: MemoryLimitOption = None,
    time_limit: TimeLimitOption = None,
    workers: WorkersOption = None,
    seed: SeedOption = None,
    deterministic: DeterministicOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress on stderr.")] = False,
) -> None:
    """Several schedules of one problem: one table and one figure on a shared time axis."""
    with errors_to_exit_codes():
        names = _schedule_names(schedules or DEFAULT_COMPARE)
        overrides = {
            "schedule": OPTIMAL if OPTIMAL in names else names[0],
            "memory": {"limit": memory_limit},
            "solver": {
                "time_limit": time_limit,
                "workers": workers,
                "seed": seed,
                "deterministic": deterministic,
            },
        }
        run = load_config(config, overrides)
        check_picture_suffix("--output", output)
        figure = None if no_visualization else _checked("--output", output)
        results: list[SolveResult] = []
        chosen: list[Schedule] = []
        for name in names:
            if name == OPTIMAL:
                results.append(_run_optimizer(run, quiet))
                chosen.append(results[-1].schedule)
            elif schedules is None and name not in applicable_baselines(run.problem):
                typer.echo(f"note: {name} does not apply to this problem; left out", err=True)
            else:
                chosen.append(_baseline(run, name))
        for line in compare_table(chosen):
            typer.echo(line)
        for result in results:
            typer.echo(
                f"optimal: {result.status}, lower bound {result.lower_bound:.6g}, "
                f"gap {result.gap * 100:.2f}%, solve time {result.wall_time:.2f} s"
            )
        if figure is not None:
            _save_comparison(chosen, figure, run.problem.memory_caps)
            _wrote(figure, quiet)
        if any(result.interrupted for result in results):
            fail("interrupted; the optimizer's best schedule so far is shown", EXIT_INTERRUPTED)


@app.command()
def validate(
    file: Annotated[Path, typer.Argument(help="Schedule file written by --json.")],
) -> None:
    """Re-check a schedule file against every rule; exit 1 listing the violations."""
    from ppopt.validate import validate as check

    with errors_to_exit_codes():
        schedule, _ = read_schedule(file)
        violations = check(schedule, schedule.problem.memory_caps)
        if violations:
            typer.echo(f"invalid: {file}: {len(violations)} violations")
            for violation in violations:
                typer.echo(f"  {violation}")
            raise typer.Exit(1)
        typer.echo(f"valid: {summary_line(schedule)}")


@app.command()
def plot(
    file: Annotated[Path, typer.Argument(help="Schedule file written by --json.")],
    output: Annotated[
        str | None,
        typer.Option(
            "-o",
            "--output",
            help="Picture (.png, .svg, .pdf) or Chrome trace (.trace.json); "
            "default: FILE with .png.",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No 'wrote' line on stderr.")] = False,
) -> None:
    """Re-draw a schedule file; the output format follows the extension."""
    with errors_to_exit_codes():
        target = output or str(file.with_suffix(".png"))
        _checked("--output", target)
        is_trace = target.lower().endswith(TRACE_SUFFIX)
        if not is_trace:
            check_picture_suffix("--output", target)
        schedule, _ = read_schedule(file)
        with atomic_path(target) as tmp:
            if is_trace:
                _write_trace(schedule, tmp)
            else:
                _render(schedule, tmp)
        _wrote(target, quiet)


#: ``ppopt export`` formats: the table PyTorch's pipelining runtime loads, and the others.
EXPORT_FORMATS = ("torch", "trace", "json")


@app.command()
def export(
    file: Annotated[Path, typer.Argument(help="Schedule file written by --json.")],
    output: Annotated[
        str, typer.Option("-o", "--output", help="Where to write the export.", show_default=False)
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="torch (PyTorch pipelining compute-only CSV, one row per rank), "
            "trace (Chrome/Perfetto trace) or json (the schedule file, normalised).",
        ),
    ] = "torch",
    quiet: Annotated[bool, typer.Option("--quiet", help="No 'wrote' line on stderr.")] = False,
) -> None:
    """Write a schedule file in a format other tools read (PyTorch, Perfetto)."""
    with errors_to_exit_codes():
        if fmt not in EXPORT_FORMATS:
            raise ConfigError(f"--format: expected one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
        _checked("--output", output)
        schedule, solver = read_schedule(file)
        if fmt == "torch":
            write_torch_csv(output, schedule)
        elif fmt == "trace":
            _write_trace(schedule, Path(output))
        else:
            write_schedule(output, schedule, solver)
        _wrote(output, quiet)


@app.command()
def sweep(
    sweep_file: Annotated[
        Path, typer.Argument(metavar="SWEEP", help="Sweep file (.yaml, .yml or .json).")
    ],
    out: Annotated[
        Path,
        typer.Option("--out", help="Output directory: results.csv, runs.jsonl, plots."),
    ],
    jobs: Annotated[
        int, typer.Option("--jobs", min=1, help="Runs at once in a local process pool.")
    ] = 1,
    cluster: Annotated[
        str | None,
        typer.Option(
            "--cluster", help="Dask scheduler address (needs the dask extra of ppopt installed)."
        ),
    ] = None,
    workers_per_solve: Annotated[
        int | None,
        typer.Option(
            "--workers-per-solve", min=1, help="CP-SAT workers per solve; default cores / jobs."
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar on stderr.")] = False,
) -> None:
    """Run a grid of problems x schedules; a rerun resumes where the last one stopped."""
    from ppopt.sweep import load_sweep, run_sweep

    with errors_to_exit_codes():
        outcome = run_sweep(load_sweep(sweep_file), out, jobs, cluster, workers_per_solve, quiet)
        typer.echo(outcome.summary())
        for path in outcome.files:
            _wrote(str(path), quiet)


def main() -> None:
    """Console-script entry point (``ppopt``)."""
    app()


# ------------------------------------------------------------------------------ helpers


class _Outputs:
    """The files one ``solve`` writes; all are written to temporary names, then renamed."""

    def __init__(self, picture: str | None, json: str | None, trace: str | None) -> None:
        self.picture, self.json, self.trace = picture, json, trace
        if trace is not None and _trace_writer() is None:
            raise ConfigError("--trace: the Chrome trace writer is not available yet")
        if picture is not None and _renderer() is None:
            raise ConfigError(
                "picture: the drawing module (ppopt.viz.save) is not available yet; "
                "use --no-visualization"
            )

    def write(self, schedule: Schedule, result: SolveResult | None, quiet: bool) -> None:
        """Write every requested output; on any failure none of them is replaced."""
        with contextlib.ExitStack() as stack:
            if self.json is not None:
                tmp = stack.enter_context(atomic_path(self.json))
                solver = None if result is None else result.to_dict()
                tmp.write_text(dumps_schedule(schedule, solver), encoding="utf-8")
            if self.trace is not None:
                _write_trace(schedule, stack.enter_context(atomic_path(self.trace)))
            if self.picture is not None:
                _render(schedule, stack.enter_context(atomic_path(self.picture)))
        for path in (self.json, self.trace, self.picture):
            if path is not None:
                _wrote(path, quiet)


def _config_path(positional: Path | None, option: Path | None) -> Path | None:
    if positional is not None and option is not None and positional != option:
        raise ConfigError(f"config: given twice ({positional} and {option}); give one")
    return positional or option


def _numbers(key: str, text: str | None) -> float | list[float] | None:
    return None if text is None else parse_numbers(key, text)


def _checked(label: str, path: str | None) -> str | None:
    """``path`` if it can be written (its directory exists); else a :class:`ConfigError`."""
    if path is None:
        return None
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{label}: {path} is a directory")
    parent = target.parent
    if not parent.is_dir():
        raise ConfigError(f"{label}: cannot write {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"{label}: cannot write {path}: directory {parent} is not writable")
    if target.exists() and not os.access(target, os.W_OK):
        raise ConfigError(f"{label}: cannot write {path}: file is read-only")
    try:  # os.access says yes to root on a read-only file system or /proc: really try
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError(f"{label}: cannot write {path}: {reason}") from None
    return path


def _schedule_names(text: str) -> list[str]:
    names = [name for name in text.replace(",", " ").split() if name]
    if not names:
        raise ConfigError("--schedules: give at least one schedule name")
    for name in names:
        if name not in known_schedules():
            known = ", ".join(known_schedules())
            raise ConfigError(f"--schedules: unknown schedule {name!r} (known: {known})")
    return names


def _baseline(run: RunConfig, name: str | None = None) -> Schedule:
    """The named baseline (default: the run's schedule) of the run's problem; a memory limit
    below one micro-batch means no schedule at all (exit 1), whatever the schedule."""
    run.problem.check_one_microbatch_fits()
    return baseline(name or run.schedule, run.problem)


def _run_optimizer(run: RunConfig, quiet: bool) -> SolveResult:
    """Solve with progress lines on stderr (elapsed, best, bound) unless ``quiet``."""
    try:
        from ppopt.solver import solve as solve_problem
    except ImportError as error:  # pragma: no cover - only before the solver lands
        raise ConfigError(f"schedule: the optimizer is not available ({error})") from None
    options: SolverOptions = run.solver
    progress: Callable[[Progress], None] | None = None if quiet else _show_progress
    try:
        return solve_problem(run.problem, options, progress=progress)
    except ImportError as error:  # pragma: no cover - only before the solver lands
        raise ConfigError(f"schedule: the optimizer is not available ({error})") from None


def _show_progress(progress: Progress) -> None:
    best = "-" if progress.best is None else f"{progress.best:.6g}"
    typer.echo(f"  {progress.elapsed:7.2f} s  best {best}  bound {progress.bound:.6g}", err=True)


def _renderer() -> Callable[..., object] | None:
    """The Gantt picture writer of the viz package, or ``None`` before it exists."""
    try:
        from ppopt.viz.save import render_schedule
    except ImportError:
        return None
    writer: Callable[..., object] = render_schedule
    return writer


def _render(schedule: Schedule, path: Path) -> None:
    """Draw the Gantt picture (format from the extension), with the memory panel under it
    when memory matters: a memory limit is set or the backward is split."""
    render = _renderer()
    if render is None:
        raise ConfigError(
            "picture: the drawing module (ppopt.viz.save) is not available yet; "
            "use --no-visualization"
        )
    limit = schedule.problem.memory_caps
    show_memory = limit is not None or schedule.problem.is_split
    render(schedule, path, limit=limit, show_memory=show_memory)


def _save_comparison(
    schedules: Sequence[Schedule], path: str, limit: Sequence[float] | None
) -> None:
    """One figure of several schedules on a shared time axis (written atomically)."""
    try:
        from ppopt.viz.compare import plot_comparison
        from ppopt.viz.save import save_figure
    except ImportError:
        raise ConfigError(
            "--output: the comparison figure (ppopt.viz.compare) is not available yet; "
            "use --no-visualization"
        ) from None
    figure = plot_comparison(list(schedules), limit=limit)
    with atomic_path(path) as tmp:
        save_figure(figure, tmp)


def _trace_writer() -> Callable[[Schedule, Path], None] | None:
    """The Chrome trace writer when it exists in this version of ppopt."""
    try:
        from ppopt.export.trace import write_trace
    except ImportError:
        return None
    writer: Callable[[Schedule, Path], None] = write_trace
    return writer


def _write_trace(schedule: Schedule, path: Path) -> None:
    writer = _trace_writer()
    if writer is None:
        raise ConfigError("--trace: the Chrome trace writer is not available yet")
    writer(schedule, path)


def _wrote(path: str, quiet: bool) -> None:
    if not quiet:
        typer.echo(f"wrote {path}", err=True)
