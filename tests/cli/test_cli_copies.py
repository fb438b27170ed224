"""Two model copies end to end (``copies: 2``): ``ppopt solve cfg.yaml`` with the optimizer
and ``--schedule dualpipe``, every output of a two-copy schedule (report, picture, the
interactive page, schedule file, trace, validate, plot, compare), and the refusals: bad
``copies`` values and the PyTorch table, each one line and exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import PNG_MAGIC, REPO, run, write

from ppopt.export.schedule_json import read_schedule
from ppopt.validate import validate

CONFIG = """\
num_stages: 4
num_batches: 8
copies: 2
forward_times: [1.0, 1.2, 1.0, 0.9]
backward_times: 1.0
weight_times: 1.0
overlap_times: [1.6, 1.8, 1.6, 1.5]
memory: {limit: none}
solver: {time_limit: 3, workers: 1}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write(tmp_path / "cfg.yaml", CONFIG)


def test_solve_dualpipe_writes_every_output(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "dp.json"
    png, trace, page = tmp_path / "dp.png", tmp_path / "dp.trace.json", tmp_path / "dp.html"
    result = run(
        "solve", str(config), "--schedule", "dualpipe", "--json", str(out),
        "--trace", str(trace), "-o", str(png),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2 model copies of 4 stages" in result.stdout
    assert "one model copy, all micro-batches" in result.stdout  # the 1F1B reference
    assert png.read_bytes().startswith(PNG_MAGIC)
    data = json.loads(out.read_text())
    assert data["problem"]["copies"] == 2 and data["schedule"] == "dualpipe"
    assert data["problem"]["forward_times"] == [1.0, 1.2, 1.0, 0.9] * 2
    assert len(data["ops"]) == 3 * 4 * 8 and data["pairs"]
    assert max(data["metrics"]["peak_memory"]) == 5  # the README's PP + 1
    schedule, _ = read_schedule(out)
    assert validate(schedule) == []
    names = {e["name"] for e in json.loads(trace.read_text())["traceEvents"] if e.get("ph") == "X"}
    assert "F1 copy1" in names and "F5 copy2" in names
    assert run("validate", str(out)).exit_code == 0
    assert run("plot", str(out), "-o", str(page)).exit_code == 0 and page.stat().st_size > 0


def test_solve_optimal_on_two_copies_as_a_process(config: Path, tmp_path: Path) -> None:
    """``python -m ppopt solve cfg.yaml`` as a real process (from the repository, where the
    package is importable), then the optimizer's answer against DualPipe's."""
    out = tmp_path / "opt.json"
    command = [sys.executable, "-m", "ppopt", "solve", str(config), "--json", str(out)]
    done = subprocess.run(
        [*command, "--no-visualization", "--quiet"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert data["schedule"] == "optimal" and data["problem"]["copies"] == 2
    dualpipe = run("solve", str(config), "--schedule", "dualpipe", "--no-visualization")
    makespan = float(dualpipe.stdout.split("makespan")[1].split()[0])
    assert data["metrics"]["makespan"] <= makespan + 1e-9
    assert run("validate", str(out)).exit_code == 0


def test_compare_two_copies(config: Path, tmp_path: Path) -> None:
    result = run(
        "compare", str(config), "--schedules", "dualpipe,gpipe,greedy,optimal",
        "--time-limit", "2", "--workers", "1", "-o", str(tmp_path / "cmp.png"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    for name in ("dualpipe", "gpipe", "greedy", "optimal"):
        assert name in result.stdout
    default = run("compare", str(config), "--time-limit", "1", "--workers", "1",
                  "--no-visualization")  # fmt: skip
    assert default.exit_code == 0, default.output
    header = next(line for line in default.stdout.splitlines() if "optimal" in line.split())
    assert header.split() == ["dualpipe", "gpipe", "optimal"]  # 1F1B runs one copy


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--copies", "3"], "error: copies: must be 1 or 2"),
        (["--copies", "2", "-s", "3"], "error: num_stages: copies 2 needs an even num_stages"),
        (["--copies", "2", "-b", "7"], "error: num_batches: copies 2 needs an even num_batches"),
        (["--copies", "2", "--recompute", "all"], "error: copies: 2 cannot be combined with"),
        (["--copies", "2", "--schedule", "1f1b"], "error: schedule: 1f1b runs one model copy"),
        (["--schedule", "dualpipe"], "error: schedule: dualpipe needs copies: 2"),
    ],
)
def test_bad_input_is_one_line_exit_2(args: list[str], words: str) -> None:
    result = run("solve", "-s", "4", "-b", "8", "--no-visualization", *args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(words), lines


def test_torch_export_refuses_two_copies_in_one_line(config: Path, tmp_path: Path) -> None:
    out = tmp_path / "dp.json"
    assert run("solve", str(config), "--schedule", "dualpipe", "--json", str(out),
               "--no-visualization").exit_code == 0  # fmt: skip
    for fmt in ("torch", "torch-comms"):
        result = run("export", str(out), "-o", str(tmp_path / "t.csv"), "--format", fmt)
        assert result.exit_code == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "runs one model copy" in lines[0], lines
        assert not (tmp_path / "t.csv").exists()
