"""Output paths that are not plain files (issue 21 item 7): a symbolic link is written through
(the link stays a link), a FIFO or a device node is written in place as a stream (never
replaced by a regular file), and an output that is the config itself is refused before any
work, leaving the config byte for byte."""

from __future__ import annotations

import json
import os
import stat
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
