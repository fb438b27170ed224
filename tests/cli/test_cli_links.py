"""The command line end to end with a per-device-pair latency matrix (issue 20)."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import run

MATRIX = "0 0.05 0.05 0.05; 0.05 0 0.5 0.05; 0.05 0.5 0 0.05; 0.05 0.05 0.05 0"


def test_solve_validate_trace_and_report_with_a_matrix(tmp_path: Path) -> None:
    out, trace = tmp_path / "s.json", tmp_path / "t.trace.json"
    result = run(
        "solve",
        "-s",
        "4",
        "-b",
        "4",
        "-w",
        "1",
        "--p2p-time",
        MATRIX,
        "--time-limit",
        "2",
        "--workers",
        "1",
        "--json",
        str(out),
        "--trace",
        str(trace),
        "--no-visualization",
    )
    assert result.exit_code == 0, result.output
    assert "p2p 0.05 (device 2↔3: 0.5)" in result.output
    saved = json.loads(out.read_text())
    assert saved["problem"]["p2p_time"][1] == [0.05, 0.0, 0.5, 0.05]
    assert run("validate", str(out)).exit_code == 0
    data = json.loads(trace.read_text())
    assert data["otherData"]["p2p_time"][2][1] == 0.5
    sends = [e for e in data["traceEvents"] if e.get("cat") == "p2p" and e.get("ph") == "X"]
    slow = [e for e in sends if {e["pid"], e["args"]["to_device"]} == {1, 2}]
    assert slow and all(e["args"]["latency"] == 0.5 for e in slow)
    assert all(e["args"]["latency"] == 0.05 for e in sends if e not in slow)
    assert all(e["dur"] == e["args"]["latency"] * 1000 for e in slow)


def test_every_baseline_and_compare_run_with_a_list(tmp_path: Path) -> None:
    result = run(
        "compare",
        "--schedules",
        "optimal,1f1b,gpipe,zb-h1,zb-h2,zb-auto",
        "-s",
        "4",
        "-b",
        "8",
        "-w",
        "1",
        "--p2p-time",
        "0.05",
        "0.5",
        "0.05",
        "--time-limit",
        "2",
        "--workers",
        "1",
        "--no-visualization",
    )
    assert result.exit_code == 0, result.output
    for name in ("1f1b", "gpipe", "zb-h1", "zb-h2", "zb-auto"):
        assert name in result.output


def test_a_bad_matrix_is_one_line_exit_2() -> None:
    result = run("solve", "-s", "3", "-b", "2", "--p2p-time", "0 1; 1 0", "--no-visualization")
    assert result.exit_code == 2
    assert "p2p_time: a matrix must be 3x3" in result.output
