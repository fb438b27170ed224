"""``ppopt sweep``: a grid of problems x schedules (docs/contract.md §3), run by
:mod:`ppopt.sweep`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ppopt.cli.errors import errors_to_exit_codes
from ppopt.cli.outputs import wrote
from ppopt.sweep import load_sweep, run_sweep


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
    with errors_to_exit_codes():
        outcome = run_sweep(load_sweep(sweep_file), out, jobs, cluster, workers_per_solve, quiet)
        typer.echo(outcome.summary())
        for path in outcome.files:
            wrote(str(path), quiet)
