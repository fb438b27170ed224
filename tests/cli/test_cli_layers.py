"""``ppopt solve`` with a layer profile (issue 19), end to end: the partition is in the report,
the schedule file (which ``ppopt validate`` accepts) and the picture's axis labels."""

from __future__ import annotations

import json
from pathlib import Path

from cli_helpers import run, write

LAYERS = """\
num_stages: 4
num_batches: 8
layers:
  - {name: embed, forward: 0.3, backward: 0.3, weight: 0.2, activation: 0.5}
  - {name: layers, count: 10, forward: 1.0, backward: 1.0, weight: 0.8, activation: 1.0}
  - {name: output, forward: 3.0, backward: 3.0, weight: 2.4, activation: 3.0}
solver: {time_limit: 4, workers: 1}
"""


def test_auto_partition_report_file_and_validate(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "c.yaml", LAYERS + "partition: auto\n")
    result = run("solve", "c.yaml", "--json", "s.json", "-o", "s.svg", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert "partition: layers per virtual stage [" in result.stdout
    assert "partition search: " in result.stdout and "lower bound over every partition" in (
        result.stdout
    )
    data = json.loads((tmp_path / "s.json").read_text())
    partition = data["problem"]["partition"]
    assert partition["layers"][:2] == ["embed", "layers.0"] and sum(partition["sizes"]) == 12
    assert run("validate", "s.json").exit_code == 0
    svg = (tmp_path / "s.svg").read_text()
    first = partition["sizes"][0]
    assert f"L0-{first - 1}" in svg  # device 1's layer range labels its row


def test_explicit_partition_gives_those_stages(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "c.yaml", LAYERS + "partition: [4, 4, 3, 1]\nschedule: 1f1b\n")
    result = run("solve", "c.yaml", "--no-visualization")
    assert result.exit_code == 0, result.stderr
    assert "partition: layers per virtual stage [4, 4, 3, 1]: L0-3 | L4-7 | L8-10 | L11" in (
        result.stdout
    )


def test_auto_with_a_baseline_is_one_line_exit_2(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "c.yaml", LAYERS + "partition: auto\nschedule: 1f1b\n")
    result = run("solve", "c.yaml", "--no-visualization")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: partition: auto chooses the partition")
    assert result.stderr.count("\n") == 1


def test_compare_with_auto_partition_runs_every_schedule_on_the_chosen_one(
    tmp_path: Path, monkeypatch
) -> None:
    """The optimizer chooses the partition once; each baseline of the comparison is then the
    baseline of that partition, as `ppopt solve` gives it with the partition written out."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "c.yaml", LAYERS + "partition: auto\n")
    result = run("compare", "c.yaml", "--json", "c.json", "--no-visualization", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert "partition search: " in result.stdout
    data = json.loads((tmp_path / "c.json").read_text())
    assert [s["name"] for s in data["schedules"]] == ["1f1b", "gpipe", "optimal"]
    sizes = data["problem"]["partition"]["sizes"]
    write(tmp_path / "fixed.yaml", LAYERS + f"partition: {sizes}\nschedule: 1f1b\n")
    alone = run("solve", "fixed.yaml", "--json", "f.json", "--no-visualization", "--quiet")
    assert alone.exit_code == 0, alone.stderr
    fixed = json.loads((tmp_path / "f.json").read_text())["metrics"]["makespan"]
    assert data["schedules"][0]["metrics"]["makespan"] == fixed
    optimal = data["schedules"][2]["metrics"]["makespan"]
    assert optimal <= fixed


def test_compare_with_auto_partition_needs_the_optimizer(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "c.yaml", LAYERS + "partition: auto\n")
    result = run("compare", "c.yaml", "--schedules", "1f1b,gpipe", "--no-visualization")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: partition: auto chooses the partition with the optim")
    assert result.stderr.count("\n") == 1
