"""Output paths that are not plain files (issue 21 item 7): a symbolic link is written through
(the link stays a link), a FIFO or a device node is written in place as a stream (never
replaced by a regular file), and an output that is the config itself is refused before any
work, leaving the config byte for byte."""

from __future__ import annotations

import json
import os
import stat
import sys
import threading
from pathlib import Path

import pytest
from cli_helpers import GOOD, run, write

SOLVE = ["solve", "c.yaml", "--no-visualization", "--quiet"]


def test_a_symlinked_output_is_written_through_and_stays_a_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "c.yaml", GOOD)
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "s.json").write_text("old")
    (tmp_path / "link.json").symlink_to("real/s.json")
    result = run(*SOLVE, "--json", "link.json")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "link.json").is_symlink()
    assert json.loads((tmp_path / "real" / "s.json").read_text())["schedule"] == "1f1b"
    assert sorted(os.listdir(tmp_path / "real")) == ["s.json"]  # no temporary file left


def test_a_fifo_output_is_written_as_a_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "c.yaml", GOOD)
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    received: list[str] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    result = run(*SOLVE, "--json", "out.json")
    reader.join(timeout=30)
    assert result.exit_code == 0, result.stderr
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still a FIFO, not a regular file
    assert json.loads(received[0])["schedule"] == "1f1b"


def test_dev_null_stays_a_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "c.yaml", GOOD)
    result = run(*SOLVE, "--json", "/dev/null", "--trace", "/dev/null")
    assert result.exit_code == 0, result.stderr
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_json_onto_the_config_is_refused_and_the_config_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = '{"num_stages": 4, "num_batches": 8, "schedule": "1f1b"}'
    write(tmp_path / "c.json", config)
    result = run("solve", "c.json", "--json", "c.json", "--no-visualization")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: --json: c.json is also the config file; give each output its own path\n"
    )
    assert (tmp_path / "c.json").read_text() == config


def test_allow_large_lifts_the_size_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard (200,000 tasks) lowered to 10 here: 64 tasks are refused with the estimate,
    and run with --allow-large."""
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "c.yaml", GOOD)
    monkeypatch.setattr(sys.modules["ppopt.cli.solve"], "MAX_TASKS", 10)
    refused = run(*SOLVE)
    assert refused.exit_code == 2
    assert refused.stderr.startswith("error: c.yaml: num_batches: too large: 4 devices x 1 ")
    assert "64 tasks, above the size guard of 10 (estimated 0.00192 s and 7.68e-05 GB" in (
        refused.stderr
    )
    assert run(*SOLVE, "--allow-large").exit_code == 0


def test_running_out_of_memory_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the guard (--allow-large) a MemoryError is one line, exit 2, not a traceback."""

    def exhausted(*args: object, **kwargs: object) -> None:
        raise MemoryError

    monkeypatch.chdir(tmp_path)
    write(tmp_path / "c.yaml", GOOD)
    monkeypatch.setattr(sys.modules["ppopt.cli.solve"], "run_schedule", exhausted)
    result = run(*SOLVE, "--allow-large")
    assert result.exit_code == 2
    assert result.stderr == "error: out of memory: the problem is too large for this machine\n"
