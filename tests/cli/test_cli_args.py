"""The command line's own parsing (docs/contract.md §3): the seed's list spelling, no
sub-command, option values, help on every option, ``--version``."""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version

import pytest
from cli_helpers import ENTRY_POINTS, REPO, run, run_process
from typer.main import get_command

import ppopt.cli
from ppopt.cli import app
from ppopt.cli.args import implicit_solve, parse_numbers, parse_placement, rewrite_list_args
from ppopt.errors import ConfigError


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # the seed's spelling: values separated by spaces after one flag
        (["-f", "1", "2", "3", "4"], ["-f", "1,2,3,4"]),
        (["-bw", "2", "2.5", "-s", "2"], ["-bw", "2,2.5", "-s", "2"]),
        # long spellings and -w too; commas pass through and join with spaces
        (["--forward-times", "1,2", "3"], ["--forward-times", "1,2,3"]),
        (["-w", "0.5", "0.5"], ["-w", "0.5,0.5"]),
        # negative numbers and nan are values (the config check names them), options are not
        (["-f", "1", "-1", "nan", "-b", "8"], ["-f", "1,-1,nan", "-b", "8"]),
        # a config path after the list ends it
        (["-f", "1", "2", "cfg.yaml"], ["-f", "1,2", "cfg.yaml"]),
        # the first token is always the option's value, as click would take it
        (["--placement", "vshape", "-s", "2"], ["--placement", "vshape", "-s", "2"]),
        (["--memory-limit", "4", "4", "6"], ["--memory-limit", "4,4,6"]),
        # scalar options are left alone, and so is everything after --
        (["-s", "4", "5"], ["-s", "4", "5"]),
        (["--", "-f", "1", "2"], ["--", "-f", "1", "2"]),
        # a list option at the very end is left for click to complain about
        (["-f"], ["-f"]),
    ],
)
def test_rewrite_list_args(argv: list[str], expected: list[str]) -> None:
    assert rewrite_list_args(argv) == expected


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-c", "x.json"], ["solve", "-c", "x.json"]),  # the seed: no sub-command
        (["x.yaml", "-s", "2"], ["solve", "x.yaml", "-s", "2"]),
        (["compare", "x.yaml"], ["compare", "x.yaml"]),
        (["--help"], ["--help"]),
        (["--version"], ["--version"]),  # the top-level command's own option
        ([], []),
    ],
)
def test_implicit_solve(argv: list[str], expected: list[str]) -> None:
    assert implicit_solve(argv) == expected


def test_parse_numbers_and_placement() -> None:
    assert parse_numbers("forward_times", "1") == 1.0
    assert parse_numbers("forward_times", "1,2 3") == [1.0, 2.0, 3.0]
    with pytest.raises(ConfigError, match=r"^forward_times: expected a number, got 'x'$"):
        parse_numbers("forward_times", "1,x")
    assert parse_placement("vshape") == "vshape"
    assert parse_placement("0,1,1,0") == [0, 1, 1, 0]
    with pytest.raises(ConfigError, match="^placement: "):
        parse_placement("0,1.5")


def test_every_option_has_help() -> None:
    group = get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert command.help, name
        for param in command.params:
            assert getattr(param, "help", None) or param.param_type_name == "argument", (
                f"{name} {param.name} has no help"
            )


# ------------------------------------------------------------------------------ version


def pyproject_version() -> str:
    with (REPO / "pyproject.toml").open("rb") as handle:
        return str(tomllib.load(handle)["project"]["version"])


def test_version_in_process() -> None:
    result = run("--version")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"ppopt {version('ppopt')}\n"
    assert version("ppopt") == pyproject_version()  # the installed one is this tree's


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_version_as_subprocess(entry: str, tmp_path) -> None:
    done = run_process(entry, "--version", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"ppopt {pyproject_version()}\n" and done.stderr == ""


def test_version_without_installed_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    """From a source tree that is not installed, the version is pyproject's."""

    def not_installed(name: str) -> str:
        raise PackageNotFoundError(name)

    monkeypatch.setattr(ppopt, "version", not_installed)
    assert ppopt.package_version() == pyproject_version()
    assert run("--version").stdout == f"ppopt {pyproject_version()}\n"
