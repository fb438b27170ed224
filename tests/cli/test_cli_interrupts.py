"""Ctrl-C and time limits end to end (issue 9): nothing done gets lost, nothing half-written.

Each test runs the real ``ppopt solve`` as a subprocess on a problem that CP-SAT cannot finish
for a long time (p=16 devices, m=64 micro-batches, split backward, 2x memory, span objective,
one worker: 3072 tasks), sends SIGINT as a user's Ctrl-C would, and checks the contract (§3):
exit 130 soon after the signal, the best schedule so far written to every requested output,
valid per ``ppopt validate`` and marked interrupted; no temporary file left beside them. A
time-limited run of the same problem exits 0 with the same guarantees, not marked interrupted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SENTINEL = b"an older run's output\n"
#: A problem CP-SAT works on for far longer than the test waits (measured: no proof in 60 s).
#: A search that runs to its time limit (no proof within a minute; the split 2x span case
#: used before is now proven optimal in a second: zb-auto's floor meets CP-SAT's bound).
LONG_PROBLEM = [
    "-s", "16", "-b", "64", "-f", "1", "-bw", "2", "-w", "1", "--p2p-time", "0.5",
    "--memory-limit", "1x", "--workers", "1",
]  # fmt: skip
OUTPUTS = ["--json", "out.json", "-o", "out.png"]
#: Seconds from SIGINT to exit that the tests accept. Measured on the shared 2-core machine:
#: the search stops within 0.1 s; writing the 3072-box picture takes ~3-4 s of the rest.
STOP_SECONDS = 12.0

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child is POSIX")


def start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    """Start ``python -m ppopt solve`` in ``tmp_path`` with pipes for stdout and stderr."""
    return subprocess.Popen(
        [sys.executable, "-m", "ppopt", "solve", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def first_progress_line(process: subprocess.Popen[str]) -> str:
    """Block until the solve prints its first progress line (``... s  best ...  bound ...``)."""
    assert process.stderr is not None
    line = process.stderr.readline()
    assert " best " in line and " bound " in line, line
    return line


def interrupt(process: subprocess.Popen[str]) -> tuple[str, str, float]:
    """Send SIGINT; return stdout, the rest of stderr and the seconds until the process ended."""
    sent = time.perf_counter()
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    return stdout, stderr, time.perf_counter() - sent


def check_outputs(tmp_path: Path, interrupted: bool) -> dict[str, object]:
    """The schedule file passes ``ppopt validate`` and carries the interrupted flag; the picture
    is a PNG; nothing else (no temporary file) is in the directory."""
    assert sorted(os.listdir(tmp_path)) == ["out.json", "out.png"]
    assert (tmp_path / "out.png").read_bytes()[:8] == PNG_MAGIC
    data = json.loads((tmp_path / "out.json").read_text())
    assert data["interrupted"] is interrupted
    assert data["solver"]["interrupted"] is interrupted
    assert len(data["ops"]) == 16 * 64 * 3
    checked = subprocess.run(
        [sys.executable, "-m", "ppopt", "validate", "out.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.startswith("valid: optimal schedule, 16 devices x 64 micro-batches")
    return data


def leave_old_outputs(tmp_path: Path) -> None:
    """Outputs of an earlier run, which the new run must replace whole."""
    for name in ("out.json", "out.png"):
        (tmp_path / name).write_bytes(SENTINEL)


def test_ctrl_c_during_the_search_writes_the_best_so_far_and_exits_130(tmp_path: Path) -> None:
    leave_old_outputs(tmp_path)
    process = start(tmp_path, *LONG_PROBLEM, "--time-limit", "60", *OUTPUTS)
    first_progress_line(process)
    time.sleep(3.0)  # well inside CP-SAT's search (it starts within a second)
    stdout, stderr, took = interrupt(process)
    assert process.returncode == 130, stderr
    assert took < STOP_SECONDS, f"took {took:.1f} s to stop"
    assert stderr.endswith("error: interrupted; the best schedule found so far was written\n")
    assert "Traceback" not in stderr
    assert "note: interrupted; this is the best schedule found before the stop" in stdout
    data = check_outputs(tmp_path, interrupted=True)
    assert data["solver"]["wall_time"] < 3.0 + 2.0 + STOP_SECONDS  # not the 60 s limit


def test_ctrl_c_right_after_the_first_schedule_still_writes_it(tmp_path: Path) -> None:
    """SIGINT at once after the first progress line, while the heuristics or the model build
    may still run: the schedule already found is written, exit 130."""
    process = start(tmp_path, *LONG_PROBLEM, "--time-limit", "60", *OUTPUTS)
    first_progress_line(process)
    stdout, stderr, took = interrupt(process)
    assert process.returncode == 130, stderr
    assert took < STOP_SECONDS, f"took {took:.1f} s to stop"
    assert "Traceback" not in stderr
    assert "best schedule found so far was written" in stderr
    check_outputs(tmp_path, interrupted=True)


def test_time_limit_writes_valid_outputs_and_exits_0(tmp_path: Path) -> None:
    leave_old_outputs(tmp_path)
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "ppopt", "solve", *LONG_PROBLEM, "--time-limit", "1", *OUTPUTS],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    took = time.perf_counter() - began
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "solver: FEASIBLE" in done.stdout  # stopped by the limit, not by a proof
    data = check_outputs(tmp_path, interrupted=False)
    assert data["solver"]["status"] == "FEASIBLE"
    assert data["solver"]["wall_time"] < 2.0  # the limit covers the whole solve
    assert took < 30.0  # start-up and the picture included
