"""``ppopt compare`` end to end: one table, one figure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import PNG_MAGIC, report_values, run, write


def test_compare_table_and_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = write(tmp_path / "c.yaml", "num_stages: 3\nnum_batches: 4\n")
    result = run("compare", str(cfg), "--schedules", "1f1b,gpipe", "-o", "cmp.png")
    assert result.exit_code == 0, result.stderr
    rows = report_values(result.stdout)
    assert rows["makespan"] == ["18", "18"]  # (m+p-1)(f+b) for both
    assert rows["peak memory (max device)"] == ["3", "4"]  # min(p, m) vs m
    assert (tmp_path / "cmp.png").read_bytes()[:8] == PNG_MAGIC
    unknown = run("compare", str(cfg), "--schedules", "1f1b,nope")
    assert unknown.exit_code == 2 and "unknown schedule 'nope'" in unknown.stderr


def test_compare_from_the_command_line_with_json(tmp_path: Path) -> None:
    """No config file: -s/-b/-bw/-w as in solve; --json carries the table's numbers, which
    match the closed forms at p=4 m=8, F=B=W=1 (split 1F1B: (p-1)(F+B) + m(F+B+W) = 30;
    ZB-H1: m(F+B+W) + (p-1)(F+B-W) = 27) and the optimizer's own result."""
    out = tmp_path / "cmp.json"
    result = run("compare", "-s", "4", "-b", "8", "-bw", "1", "-w", "1", "--schedules",
                 "1f1b,zb-h1,optimal", "--workers", "1", "--json", str(out),
                 "--no-visualization")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["format"] == "ppopt-comparison-1"
    assert data["problem"]["num_stages"] == 4 and data["memory_limit"] == [4.0] * 4
    by_name = {entry["name"]: entry for entry in data["schedules"]}
    assert list(by_name) == ["1f1b", "zb-h1", "optimal"]
    assert by_name["1f1b"]["metrics"]["makespan"] == 30
    assert by_name["zb-h1"]["metrics"]["makespan"] == 27
    assert all(entry["fits_memory_limit"] for entry in data["schedules"])
    solver = by_name["optimal"]["solver"]
    assert by_name["1f1b"]["solver"] is None and solver["status"] == "OPTIMAL"
    assert solver["lower_bound"] == by_name["optimal"]["metrics"]["makespan"] == 27
    printed = report_values(result.stdout)["makespan"]
    assert printed == [f"{e['metrics']['makespan']:g}" for e in data["schedules"]]
