"""``microbatch_scale`` end to end: solve writes a valid schedule file and a report line,
compare shows every baseline order side by side and the optimizer at or below them."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import report_values, run, write

CONFIG = (
    "num_stages: 4\nnum_batches: 6\nforward_times: 1\nbackward_times: 1\nweight_times: 1\n"
    "microbatch_scale: [1, 3, 1, 0.5, 2, 1]\nsolver: {workers: 1, time_limit: 3}\n"
)


def test_solve_reports_the_scale_and_writes_a_valid_file(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", CONFIG)
    out = tmp_path / "s.json"
    result = run("solve", str(path), "--json", str(out), "--no-visualization", "--quiet")
    assert result.exit_code == 0, result.output
    assert "micro-batch scale: 0.5 to 3, 4 distinct of 6" in result.stdout
    assert json.loads(out.read_text())["problem"]["microbatch_scale"] == [1, 3, 1, 0.5, 2, 1]
    checked = run("validate", str(out))
    assert checked.exit_code == 0, checked.output


def test_compare_shows_each_order_and_the_optimizer_is_at_most_each(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", CONFIG)
    names = "1f1b,1f1b@longest-first,1f1b@shortest-first,zb-h1@shortest-first,optimal"
    result = run("compare", str(path), "--schedules", names, "--no-visualization", "--quiet")
    assert result.exit_code == 0, result.output
    makespans = [float(x) for x in report_values(result.stdout)["makespan"]]
    assert len(makespans) == 5
    assert makespans[-1] <= min(makespans)


def test_unknown_order_is_one_line_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", CONFIG)
    result = run("compare", str(path), "--schedules", "1f1b@random", "--no-visualization")
    assert result.exit_code == 2
    assert "--schedules: unknown schedule '1f1b@random'" in result.output


def test_bad_factor_is_one_line_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path / "c.yaml", CONFIG.replace("0.5, 2", "0.5, -2"))
    result = run("solve", str(path), "--no-visualization")
    assert result.exit_code == 2
    assert "microbatch_scale[4]: must be > 0, got -2" in result.output
