"""``ppopt compare`` end to end: one table, one figure."""

from __future__ import annotations

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
