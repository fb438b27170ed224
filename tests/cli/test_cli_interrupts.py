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
#: Seconds past a time limit that a time-limited solve may report under load (measured on the
#: shared 2-core machine: up to ~1 s late).
LATE_SECONDS = 2.5

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
    # the limit covers the whole solve; LATE_SECONDS absorbs a loaded machine, while a real
    # overrun (issue 21: 10-65 s for 2 s limits) still fails
    assert data["solver"]["wall_time"] < 1.0 + LATE_SECONDS
    assert took < 30.0  # start-up and the picture included


def test_sigterm_is_treated_like_ctrl_c(tmp_path: Path) -> None:
    """Issue 21 item 10: SIGTERM (kill, a job scheduler) ended the solve with 143, no best
    schedule and temporary files left; it is now a Ctrl-C: exit 130, outputs written."""
    leave_old_outputs(tmp_path)
    process = start(tmp_path, *LONG_PROBLEM, "--time-limit", "60", *OUTPUTS)
    first_progress_line(process)
    time.sleep(2.0)
    sent = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert time.perf_counter() - sent < STOP_SECONDS
    assert "Traceback" not in stderr
    assert stderr.endswith("error: interrupted; the best schedule found so far was written\n")
    check_outputs(tmp_path, interrupted=True)


#: A sweep whose optimizer runs take far longer than the tests wait (the long problem above).
LONG_SWEEP = """base: {num_stages: 16, forward_times: 1, backward_times: 2, weight_times: 1,
  p2p_time: 0.5, memory: {limit: 1x}}
grid: {num_batches: [64, 63]}
schedules: [optimal]
solver: {time_limit: 60, workers: 1}
"""  # LONG_PROBLEM's kind of case: its search still runs when the signal comes


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_ctrl_c_stops_a_sweep_of_optimizer_runs(tmp_path: Path, jobs: str) -> None:
    """Issue 21 item 10: Ctrl-C during an inline sweep's solve was taken as the solve's end
    (rc 0, the run recorded FEASIBLE); with --jobs 2 a worker printed a traceback. The sweep
    now stops with 130, records no interrupted run and prints one line."""
    (tmp_path / "s.yaml").write_text(LONG_SWEEP)
    process = subprocess.Popen(
        [sys.executable, "-m", "ppopt", "sweep", "s.yaml", "--out", "out", "--quiet",
         "--jobs", jobs],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    time.sleep(6.0)  # the runs are solving by now (spawned workers start within ~2 s)
    sent = time.perf_counter()
    os.killpg(process.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole group
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, (stdout, stderr)
    assert time.perf_counter() - sent < STOP_SECONDS
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == "error: interrupted"
    runs = tmp_path / "out" / "runs.jsonl"
    assert not runs.exists() or runs.read_text() == ""  # no interrupted run recorded
