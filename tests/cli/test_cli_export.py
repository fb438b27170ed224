"""``ppopt export`` and the trace outputs of ``solve``/``plot``, end to end: the formats,
the defaults, bad options, and what PyTorch will really run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ppopt.baselines import baseline
from ppopt.cli import app
from ppopt.export.schedule_json import read_schedule, write_schedule
from ppopt.problem import Problem


@pytest.fixture
def schedule_file(tmp_path: Path) -> Path:
    """A schedule file of split 1F1B, p=2, m=2."""
    path = tmp_path / "s.json"
    write_schedule(path, baseline("1f1b", Problem.create(2, 2, weight=1.0)))
    return path


def test_cli_export_torch_as_subprocess(schedule_file: Path) -> None:
    out = schedule_file.with_name("schedule.csv")
    command = [sys.executable, "-m", "ppopt", "export", str(schedule_file), "--format", "torch"]
    done = subprocess.run([*command, "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert out.read_text() == "0F0,0F1,0I0,0W0,0I1,0W1\n1F0,1I0,1W0,1F1,1I1,1W1\n"
    assert f"wrote {out}" in done.stderr


def test_cli_export_torch_is_the_default_format(schedule_file: Path) -> None:
    out = schedule_file.with_name("t.csv")
    result = CliRunner().invoke(app, ["export", str(schedule_file), "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith("0F0,0F1,0I0")


def test_cli_export_torch_comms_writes_the_compute_comms_table(schedule_file: Path) -> None:
    out = schedule_file.with_name("comms.csv")
    args = ["export", str(schedule_file), "--format", "torch-comms", "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert out.read_text().splitlines() == [
        "0F0,0SEND_F0,0F1,0SEND_F1,0RECV_B0,0I0,0W0,0RECV_B1,0I1,0W1,0REDUCE_GRAD",
        "1RECV_F0,1RECV_F1,1F0,1I0,1SEND_B0,1W0,1F1,1I1,1SEND_B1,1W1,1REDUCE_GRAD",
    ]
    assert f"wrote {out}" in result.stderr


def test_cli_export_routes_trace_and_json(schedule_file: Path) -> None:
    trace, copy = schedule_file.with_name("s.trace.json"), schedule_file.with_name("c.json")
    for fmt, out in (("trace", trace), ("json", copy)):
        args = ["export", str(schedule_file), "--format", fmt, "-o", str(out)]
        assert CliRunner().invoke(app, args).exit_code == 0
    assert '"traceEvents"' in trace.read_text()
    assert copy.read_text() == schedule_file.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # unknown format
        (["--format", "onnx", "-o", "{dir}/x.csv"], "--format: expected one of torch"),
        # no output path
        ([], "missing option '-o'"),
        # output directory does not exist
        (["-o", "{dir}/nowhere/x.csv"], "does not exist"),
    ],
)
def test_cli_export_bad_options(schedule_file: Path, args: list[str], message: str) -> None:
    args = [arg.replace("{dir}", str(schedule_file.parent)) for arg in args]
    result = CliRunner().invoke(app, ["export", str(schedule_file), *args])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1


def test_cli_export_refuses_a_file_that_is_not_a_schedule(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something-else"}')
    out = tmp_path / "x.csv"
    result = CliRunner().invoke(app, ["export", str(bad), "-o", str(out)])
    assert result.exit_code == 2
    assert "not a ppopt schedule file" in result.stderr
    assert not out.exists()


@pytest.mark.parametrize("fmt", ["torch", "torch-comms"])
def test_cli_export_warns_or_refuses_with_strict(tmp_path: Path, fmt: str) -> None:
    source = tmp_path / "abstract.json"
    problem = Problem.create(4, 8, forward=1, backward=1.5, weight=0.5, memory_limit="none")
    write_schedule(source, baseline("zb-h2", problem))
    out = tmp_path / "t.csv"
    run = CliRunner().invoke(app, ["export", str(source), "--format", fmt, "-o", str(out)])
    assert run.exit_code == 0 and out.exists()
    assert "warning: planned with runtime: abstract; PyTorch runs this order in" in run.output
    strict = tmp_path / "strict.csv"
    args = ["export", str(source), "--format", fmt, "-o", str(strict), "--strict"]
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 2 and not strict.exists()
    assert refused.output.count("error: --strict:") == 1


@pytest.mark.parametrize(
    ("name", "first"), [("t.trace.json", '{"traceEvents"'), ("s.json", "{"), ("s.csv", "0F0")]
)
def test_export_format_follows_the_extension(tmp_path: Path, name: str, first: str) -> None:
    source = tmp_path / "in.json"
    write_schedule(source, baseline("1f1b", Problem.create(2, 2)))
    out = tmp_path / name
    result = CliRunner().invoke(app, ["export", str(source), "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert out.read_text().startswith(first)
    if name == "s.json":
        assert read_schedule(out)[0].device_ops == read_schedule(source)[0].device_ops
