"""The commands that read a schedule file (docs/contract.md §4): ``validate``, ``plot`` and
``export``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

from ppopt.cli.errors import errors_to_exit_codes
from ppopt.cli.outputs import TRACE_SUFFIX, Outputs, check_distinct, checked, wrote
from ppopt.config import check_picture_suffix
from ppopt.errors import ConfigError
from ppopt.export.megatron import write_megatron_layout
from ppopt.export.schedule_json import read_schedule, read_schedule_file
from ppopt.export.torch_comms import write_torch_comms_csv
from ppopt.export.torch_csv import check_for_torch, checkpointed_stages, write_torch_csv
from ppopt.export.torchtitan import write_torchtitan_parts
from ppopt.report import summary_line
from ppopt.validate import validate_declared
from ppopt.view import View

#: ``ppopt export`` formats: the tables PyTorch's pipelining runtime loads, and the others.
EXPORT_FORMATS = ("torch", "torch-comms", "trace", "json", "megatron", "torchtitan")
#: Formats of the partition alone (a schedule whose stages were cut from layers).
PARTITION_WRITERS = {"megatron": write_megatron_layout, "torchtitan": write_torchtitan_parts}

ScheduleFileArg = Annotated[Path, typer.Argument(help="Schedule file written by --json.")]
QuietOption = Annotated[bool, typer.Option("--quiet", help="No 'wrote' line on stderr.")]


def validate(file: ScheduleFileArg) -> None:
    """Re-check a schedule file against every rule; exit 1 listing the violations."""
    with errors_to_exit_codes():
        content = read_schedule_file(file)
        schedule = content.schedule
        violations, overruns = validate_declared(
            schedule, schedule.problem.memory_caps, content.fits_memory_limit
        )
        if violations:
            typer.echo(f"invalid: {file}: {len(violations)} violations")
            for violation in violations:
                typer.echo(f"  {violation}")
            raise typer.Exit(1)
        declared = "; over the memory limit, as the file declares" if overruns else ""
        typer.echo(f"valid: {summary_line(schedule)}{declared}")
        for overrun in overruns:
            typer.echo(f"  {overrun}")


def plot(
    file: ScheduleFileArg,
    output: Annotated[
        str | None,
        typer.Option(
            "-o",
            "--output",
            help="Picture (.png, .svg, .pdf), interactive page (.html) or Chrome trace "
            "(.trace.json); "
            "default: FILE with .png.",
        ),
    ] = None,
    start: Annotated[
        float | None, typer.Option("--from", help="Picture: show the schedule from this time.")
    ] = None,
    end: Annotated[
        float | None, typer.Option("--to", help="Picture: show it up to this time.")
    ] = None,
    devices: Annotated[
        str | None,
        typer.Option("--devices", help="Picture: show these devices only, A-B (from 1) or one."),
    ] = None,
    no_memory: Annotated[
        bool, typer.Option("--no-memory", help="Picture: no memory panel.")
    ] = False,
    quiet: QuietOption = False,
) -> None:
    """Re-draw a schedule file; the output format follows the extension."""
    with errors_to_exit_codes():
        view = picture_view(start, end, devices)
        target = output or str(file.with_suffix(".png"))
        check_distinct([("schedule file", file)], [("--output", target)])
        checked("--output", target)
        is_trace = target.lower().endswith(TRACE_SUFFIX)
        if not is_trace:
            check_picture_suffix("--output", target)
        schedule, _ = read_schedule(file)
        if is_trace:
            outputs = Outputs(trace=target)
        else:
            outputs = Outputs(picture=target, view=view, memory=not no_memory)
        outputs.write(schedule, None, quiet)


def export(
    file: ScheduleFileArg,
    output: Annotated[
        str, typer.Option("-o", "--output", help="Where to write the export.", show_default=False)
    ],
    fmt: Annotated[
        str | None,
        typer.Option(
            "--format",
            help="torch (PyTorch pipelining compute-only CSV, one row per rank), "
            "torch-comms (the compute_comms CSV: the same with sends and receives placed "
            "from the plan), trace (Chrome/Perfetto trace), json (the schedule file, "
            "normalised), megatron (the partition as --pipeline-model-parallel-layout) or "
            "torchtitan (the partition as module_fqns_per_model_part, JSON). Default: from "
            "the output's extension (.csv torch, .trace.json "
            "trace, .json json).",
        ),
    ] = None,
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
        fmt = export_format(fmt, output)
        check_distinct([("schedule file", file)], [("--output", output)])
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
        elif fmt in PARTITION_WRITERS:
            PARTITION_WRITERS[fmt](output, schedule)
            wrote(output, quiet)
        elif fmt == "trace":
            Outputs(trace=output).write(schedule, solver, quiet)
        else:
            Outputs(json=output).write(schedule, solver, quiet)


#: The export format each output extension means (longest suffix first).
FORMAT_OF_SUFFIX = {".trace.json": "trace", ".json": "json", ".csv": "torch"}
#: (format an extension names, another format writing that kind of file too).
SAME_FILE_KIND = {("torch", "torch-comms"), ("json", "torchtitan")}


def export_format(fmt: str | None, output: str) -> str:
    """The export format: ``--format`` when given (checked against the output's extension
    when that names another format), else the one the extension names."""
    name = output.lower()
    implied = next((f for s, f in FORMAT_OF_SUFFIX.items() if name.endswith(s)), None)
    if fmt is None:
        if implied is None:
            raise ConfigError(
                f"--output: cannot tell the format from {output!r} (end it in .csv, "
                f".trace.json or .json, or give --format; pictures: ppopt plot)"
            )
        return implied
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"--format: expected one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    if implied is not None and implied != fmt and (implied, fmt) not in SAME_FILE_KIND:
        raise ConfigError(f"--output: {output!r} names a {implied} file, not --format {fmt}")
    return fmt


def picture_view(start: float | None, end: float | None, devices: str | None) -> View | None:
    """``plot``'s --from/--to/--devices as a :class:`ppopt.view.View` (None: all)."""
    if start is None and end is None and devices is None:
        return None
    first = last = None
    if devices is not None:
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", devices)
        if match is None or int(match[1]) < 1:
            raise ConfigError(f"--devices: expected A-B or one device, from 1, got {devices!r}")
        first, last = int(match[1]) - 1, int(match[2] or match[1]) - 1
    try:
        return View(start, end, first, last)
    except ValueError as error:
        raise ConfigError(f"--from/--to/--devices: {error}") from None
