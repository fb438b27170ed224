"""What the command line gives before and beside click's own parsing (docs/contract.md §3).

:func:`implicit_solve` keeps the seed's command lines without a sub-command working;
:func:`rewrite_list_args` lets the seed's space-separated lists after one flag work
(``-f 1 1.2 1 0.9`` becomes ``-f 1,1.2,1,0.9``) before click parses the arguments; the
``parse_*`` functions turn an option's text into the config value it overrides.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ppopt.config import CONFIG_SUFFIXES, is_known_schedule, known_schedules
from ppopt.errors import ConfigError

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
        "--recompute-times",
        "--checkpoint",
        "--offload-times",
        "--p2p-time",
        "--overlap-times",
    }
)
#: First arguments that belong to the top-level command itself, never to ``solve``.
TOP_LEVEL_OPTIONS = ("--help", "-h", "--version")


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
    if not argv or argv[0] in TOP_LEVEL_OPTIONS:
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


def parse_latencies(text: str) -> float | list[float] | list[list[float]]:
    """``--p2p-time``: one number, a list (one per stage boundary) or matrix rows separated
    by ``;`` (``"0 0.1; 0.1 0"``); the shape is checked with the problem."""
    if ";" not in text:
        return parse_numbers("p2p_time", text)
    rows = []
    for a, row in enumerate(text.strip().strip(";").split(";")):
        values = parse_numbers(f"p2p_time[{a}]", row)
        rows.append(values if isinstance(values, list) else [values])
    return rows


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


def parse_schedule_names(text: str) -> list[str]:
    """``--schedules``: comma- or space-separated schedule names, each one known."""
    names = [name for name in text.replace(",", " ").split() if name]
    if not names:
        raise ConfigError("--schedules: give at least one schedule name")
    for name in names:
        if not is_known_schedule(name):
            known = ", ".join(known_schedules())
            raise ConfigError(
                f"--schedules: unknown schedule {name!r} (known: {known}; a baseline may "
                f"take @longest-first or @shortest-first)"
            )
    return names


def config_path(positional: Path | None, option: Path | None) -> Path | None:
    """The config file given as CONFIG or ``--config`` (both: they must agree)."""
    if positional is not None and str(positional).lower() in FLAG_WORDS:
        raise ConfigError(
            f"{positional}: not a config file; flags such as --deterministic take no value "
            f"(write the flag alone, or leave it out)"
        )
    if positional is not None and option is not None and positional != option:
        raise ConfigError(f"config: given twice ({positional} and {option}); give one")
    return positional or option


#: Values people give a flag (``--deterministic true``), which then lands in CONFIG.
FLAG_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "1", "0"})
