"""What the command-line tests share: running ``ppopt`` in-process or as a real process,
reading its report, and the files and markers the tests lay out."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from ppopt.cli import app

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SENTINEL = b"old output, must survive\n"
#: A small valid config for the bad-input tables (a baseline: no solve).
GOOD = "num_stages: 4\nnum_batches: 8\nschedule: 1f1b\n"


def run(*args: str):
    """Invoke the CLI in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(app, list(args))


def ppopt_command() -> list[str]:
    """The installed console script, next to this Python if possible."""
    beside = Path(sys.executable).with_name("ppopt")
    found = str(beside) if beside.exists() else shutil.which("ppopt")
    assert found, "the ppopt console script is not installed (pip install -e .)"
    return [found]


ENTRY_POINTS = {"ppopt": ppopt_command, "python -m ppopt": lambda: [sys.executable, "-m", "ppopt"]}


def run_process(entry: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run one entry point as a real process."""
    command = ENTRY_POINTS[entry]() + list(args)
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def report_values(stdout: str) -> dict[str, list[str]]:
    """The report's table rows by label (``makespan`` → its cells)."""
    rows = {}
    for line in stdout.splitlines():
        label, _, cells = line.partition("  ")
        if cells:
            rows[label.strip()] = cells.split()
    return rows


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
