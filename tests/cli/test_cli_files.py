"""The commands that read a schedule file end to end: ``validate``, ``plot`` (and the
``--json`` they start from)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import PNG_MAGIC, run, write


def test_json_then_validate_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    solved = run("solve", "-s", "3", "-b", "5", "-f", "1", "1.5", "1", "--p2p-time", "0.25",
                 "--schedule", "1f1b", "--json", "s.json", "--no-visualization")  # fmt: skip
    assert solved.exit_code == 0, solved.stderr
    ok = run("validate", "s.json")
    assert ok.exit_code == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("valid: 1f1b schedule, 3 devices x 5 micro-batches, 30 tasks")
    assert ok.stdout.count("\n") == 1

    data = json.loads((tmp_path / "s.json").read_text())
    first_b = next(op for op in data["ops"] if op["kind"] == "B" and op["stage"] == 0)
    first_b["start"] -= 1.0  # runs before its dependency: a rule violation, metrics unchanged
    first_b["end"] -= 1.0
    write(tmp_path / "bad.json", json.dumps(data))
    bad = run("validate", "bad.json")
    assert bad.exit_code == 1
    assert bad.stdout.startswith("invalid: bad.json:")
    assert "before its dependency" in bad.stdout


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("num_stages: 4\n", "not a schedule file"),  # a config file, not JSON
        ('{"format": "ppopt-schedule/2"}', "format 'ppopt-schedule/2' is not supported"),
        ('{"format": "other"}', "not a ppopt schedule file"),
        ("[1, 2]", "not a schedule file (expected a JSON object)"),
    ],
)
def test_validate_rejects_non_schedules_with_exit_2(
    content: str, fragment: str, tmp_path: Path
) -> None:
    path = write(tmp_path / "x.json", content)
    result = run("validate", str(path))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert fragment in result.stderr


def test_validate_rejects_inconsistent_metrics_with_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    assert run("solve", "-s", "2", "-b", "2", "--schedule", "1f1b", "--no-visualization",
               "--json", str(out)).exit_code == 0  # fmt: skip
    data = json.loads(out.read_text())
    data["metrics"]["makespan"] = 1.0
    write(out, json.dumps(data))
    result = run("validate", str(out))
    assert result.exit_code == 2
    assert "metrics.makespan: the file says 1.0, its ops give" in result.stderr


def test_plot_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("solve", "-s", "3", "-b", "4", "-w", "1", "--schedule", "1f1b",
               "--json", "s.json", "--no-visualization").exit_code == 0  # fmt: skip
    svg = run("plot", "s.json", "-o", "again.svg")
    assert svg.exit_code == 0, svg.stderr
    text = (tmp_path / "again.svg").read_text()
    assert text.lstrip().startswith("<?xml") and "1f1b" in text
    default = run("plot", "s.json")
    assert default.exit_code == 0
    assert (tmp_path / "s.png").read_bytes()[:8] == PNG_MAGIC
    wrong = run("plot", "s.json", "-o", "x.gif")
    assert wrong.exit_code == 2 and "picture must end in .png" in wrong.stderr
