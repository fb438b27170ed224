"""``ppopt profile``: time each layer of a PyTorch model into a profile CSV
(:mod:`ppopt.torch_profile`; the CSV columns are docs/contract.md §2's)."""

from __future__ import annotations

from typing import Annotated

import typer

from ppopt.cli.errors import errors_to_exit_codes
from ppopt.cli.outputs import checked, wrote
from ppopt.errors import ConfigError
from ppopt.layers import write_profile_csv


def profile(
    model: Annotated[
        str,
        typer.Argument(
            help="module:function returning (model, example_input); the model's children, "
            "in order, are the layers (an nn.Sequential)."
        ),
    ],
    output: Annotated[
        str, typer.Option("-o", "--output", help="Profile CSV to write.", show_default=False)
    ],
    repeats: Annotated[int, typer.Option("--repeats", help="Timed runs per layer (median).")] = 5,
    warmup: Annotated[int, typer.Option("--warmup", help="Untimed runs first.")] = 1,
    device: Annotated[str, typer.Option("--device", help="torch device: cpu, cuda, …")] = "cpu",
    quiet: Annotated[bool, typer.Option("--quiet", help="No 'wrote' line on stderr.")] = False,
) -> None:
    """Measure F, B (input gradient), W (weight gradient), activation and parameter memory of
    each layer on this machine, and write them as a profile CSV for `layers:`."""
    with errors_to_exit_codes():
        if repeats < 1 or warmup < 0:
            raise ConfigError("--repeats: must be >= 1 and --warmup >= 0")
        if not output.lower().endswith(".csv"):
            raise ConfigError(f"--output: a profile is a .csv file, got {output!r}")
        checked("--output", output)
        try:
            from ppopt.torch_profile import load_model, profile_model
        except ImportError as error:  # torch is optional
            raise ConfigError(f"ppopt profile needs PyTorch: {error}") from None
        net, example = load_model(model)
        layers = profile_model(net.to(device), example.to(device), repeats, warmup)
        write_profile_csv(output, layers)
        wrote(output, quiet)
