"""The commands that read a schedule file (docs/contract.md §4): ``validate``, ``plot`` and
``export``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ppopt.cli.errors import errors_to_exit_codes
from ppopt.cli.outputs import TRACE_SUFFIX, Outputs, checked, wrote
from ppopt.config import check_picture_suffix
from ppopt.errors import ConfigError
from ppopt.export.schedule_json import read_schedule
from ppopt.export.torch_comms import write_torch_comms_csv
from ppopt.export.torch_csv import check_for_torch, checkpointed_stages, write_torch_csv
from ppopt.report import summary_line
from ppopt.validate import validate as check

#: ``ppopt export`` formats: the tables PyTorch's pipelining runtime loads, and the others.
EXPORT_FORMATS = ("torch", "torch-comms", "trace", "json")

ScheduleFileArg = Annotated[Path, typer.Argument(help="Schedule file written by --json.")]
QuietOption = Annotated[bool, typer.Option("--quiet", help="No 'wrote' line on stderr.")]


def validate(file: ScheduleFileArg) -> None:
    """Re-check a schedule file against every rule; exit 1 listing the violations."""
    with errors_to_exit_codes():
        schedule, _ = read_schedule(file)
        violations = check(schedule, schedule.problem.memory_caps)
        if violations:
            typer.echo(f"invalid: {file}: {len(violations)} violations")
            for violation in violations:
                typer.echo(f"  {violation}")
            raise typer.Exit(1)
        typer.echo(f"valid: {summary_line(schedule)}")


def plot(
    file: ScheduleFileArg,
    output: Annotated[
        str | None,
        typer.Option(
            "-o",
            "--output",
            help="Picture (.png, .svg, .pdf) or Chrome trace (.trace.json); "
            "default: FILE with .png.",
        ),
    ] = None,
    quiet: QuietOption = False,
) -> None:
    """Re-draw a schedule file; the output format follows the extension."""
    with errors_to_exit_codes():
        target = output or str(file.with_suffix(".png"))
        checked("--output", target)
        is_trace = target.lower().endswith(TRACE_SUFFIX)
        if not is_trace:
            check_picture_suffix("--output", target)
        schedule, _ = read_schedule(file)
        outputs = Outputs(trace=target) if is_trace else Outputs(picture=target)
        outputs.write(schedule, None, quiet)


def export(
    file: ScheduleFileArg,
    output: Annotated[
        str, typer.Option("-o", "--output", help="Where to write the export.", show_default=False)
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="torch (PyTorch pipelining compute-only CSV, one row per rank), "
            "torch-comms (the compute_comms CSV: the same with sends and receives placed "
            "from the plan), trace (Chrome/Perfetto trace) or json (the schedule file, "
            "normalised).",
        ),
    ] = "torch",
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="With --format torch or torch-comms: refuse a schedule not planned with "
            "runtime: torch (default: write it and warn how long PyTorch will really take).",
        ),
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Write a schedule file in a format other tools read (PyTorch, Perfetto)."""
    with errors_to_exit_codes():
        if fmt not in EXPORT_FORMATS:
            raise ConfigError(f"--format: expected one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
        checked("--output", output)
        schedule, solver = read_schedule(file)
        if fmt in ("torch", "torch-comms"):
            warning = check_for_torch(schedule).warning()
            if warning is not None and strict:
                raise ConfigError(f"--strict: {file}: {warning}")
            (write_torch_csv if fmt == "torch" else write_torch_comms_csv)(output, schedule)
            if stages := checkpointed_stages(schedule):
                listed = ", ".join(map(str, stages))
                typer.echo(
                    f"note: wrap virtual stages {listed} in activation checkpointing "
                    "(torch.utils.checkpoint); the table has no R actions, each R runs "
                    "inside its B",
                    err=True,
                )
            if warning is not None:
                typer.echo(f"warning: {warning}", err=True)
            wrote(output, quiet)
        elif fmt == "trace":
            Outputs(trace=output).write(schedule, solver, quiet)
        else:
            Outputs(json=output).write(schedule, solver, quiet)
