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


def test_a_baseline_over_the_limit_is_written_so_validate_understands_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 21 item 9: 1F1B (peak 4) under --memory-limit 2 is reported over the limit, its
    file declares it (fits_memory_limit false), and ppopt validate accepts that file and says
    so; a file that hides the overrun, or declares one that is not there, is invalid."""
    monkeypatch.chdir(tmp_path)
    solved = run("solve", "-s", "4", "-b", "8", "--schedule", "1f1b", "--memory-limit", "2",
                 "--json", "nos.json", "--no-visualization")  # fmt: skip
    assert solved.exit_code == 0, solved.stderr
    assert "(exceeds the memory limit)" in solved.stdout
    data = json.loads((tmp_path / "nos.json").read_text())
    assert data["metrics"]["fits_memory_limit"] is False
    ok = run("validate", "nos.json")
    assert ok.exit_code == 0, ok.stdout + ok.stderr
    first, *overruns = ok.stdout.splitlines()
    assert first.startswith("valid: 1f1b schedule") and first.endswith(
        "; over the memory limit, as the file declares"
    )
    assert (
        overruns[0]
        == "  device 1: memory 3 at time 2.0 (when F3@s1 starts) is above the limit 2; peak 4"
    )

    data["metrics"]["fits_memory_limit"] = True  # hides the overrun
    write(tmp_path / "hidden.json", json.dumps(data))
    hidden = run("validate", "hidden.json")
    assert hidden.exit_code == 1
    assert (
        "device 1: memory 3 at time 2.0 (when F3@s1 starts) is above the limit 2" in hidden.stdout
    )

    fits = run("solve", "-s", "4", "-b", "8", "--schedule", "1f1b", "--memory-limit", "4",
               "--json", "fits.json", "--no-visualization")  # fmt: skip
    assert fits.exit_code == 0
    data = json.loads((tmp_path / "fits.json").read_text())
    assert data["metrics"]["fits_memory_limit"] is True
    data["metrics"]["fits_memory_limit"] = False  # declares an overrun that is not there
    write(tmp_path / "false.json", json.dumps(data))
    false = run("validate", "false.json")
    assert false.exit_code == 1
    assert "metrics.fits_memory_limit: the file says false, but every device is within" in (
        false.stdout
    )


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
