"""The ``ppopt`` command line (docs/contract.md §3): ``solve``, ``compare``, ``sweep``,
``validate``, ``plot``, ``export``, ``profile`` and ``--version``.

A thin layer over the library: :mod:`~ppopt.cli.args` reads what click does not (the seed's
space-separated lists, no sub-command), :mod:`~ppopt.cli.errors` turns every error into one
line and the contract's exit code, :mod:`~ppopt.cli.solve` runs a config through
:mod:`ppopt.runs`, :mod:`~ppopt.cli.files` reads schedule files, :mod:`~ppopt.cli.outputs`
writes every output file atomically.
"""

from __future__ import annotations

from typing import Annotated

import typer

import ppopt
from ppopt.cli.errors import PpoptGroup
from ppopt.cli.files import export, plot, validate
from ppopt.cli.profile import profile
from ppopt.cli.solve import compare, solve
from ppopt.cli.sweep import sweep

app = typer.Typer(
    cls=PpoptGroup,
    name="ppopt",
    help="Pipeline-parallelism schedule optimizer: optimal F/B/W orders, baselines, pictures.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
for command in (solve, compare, validate, plot, export, sweep, profile):
    app.command()(command)


def _print_version(given: bool) -> None:
    if given:
        typer.echo(f"ppopt {ppopt.package_version()}")
        raise typer.Exit(0)


@app.callback()
def _top_level(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Options of ``ppopt`` itself, before any command."""


def main() -> None:
    """Console-script entry point (``ppopt``)."""
    app()


__all__ = ["app", "main"]
