"""The atomic writer every output goes through (ppopt/atomic.py): the target is replaced whole
with normal permissions, and a failed write leaves the old file and no temporary behind."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ppopt.atomic import atomic_path, atomic_write_text


def test_atomic_write_replaces_and_keeps_normal_permissions(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old")
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask  # not mkstemp's 0600
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_path_failure_leaves_target_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "pic.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".png"  # same dir, same extension
        tmp.write_bytes(b"half")
        raise RuntimeError("renderer crashed")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["pic.png"]
