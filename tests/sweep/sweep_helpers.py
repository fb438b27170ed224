"""What the sweep tests share: two small sweeps, writing a sweep file, reading the results.

Solver runs are tiny (2 devices) with a 1 s limit and one CP-SAT worker.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from ppopt.cli import app

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: A baselines-only sweep: 4 devices, 2 x 2 grid, two schedules = 8 runs.
BASELINES_SWEEP: dict[str, Any] = {
    "base": {"num_stages": 4, "forward_times": 1.0, "backward_times": 2.0},
    "grid": {"num_batches": [2, 5], "p2p_time": [0, 0.25]},
    "schedules": ["1f1b", "gpipe"],
}
#: A tiny optimizer sweep: 2 devices, m = 2 and 3, 1F1B and optimal (p2p 0.5 lets it win).
TINY_OPTIMAL: dict[str, Any] = {
    "base": {"num_stages": 2, "p2p_time": 0.5},
    "grid": {"num_batches": [2, 3]},
    "schedules": ["1f1b", "optimal"],
    "solver": {"time_limit": 1, "workers": 1},
}


def write_sweep(folder: Path, data: dict[str, Any], name: str = "sweep.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run_cli(*args: str):
    return CliRunner().invoke(app, list(args))


def comparable(rows: list[dict[str, str]]) -> list[tuple[str, ...]]:
    """The deterministic part of each row (not times)."""
    keep = ("schedule", "makespan", "bubble_rate", "peak_memory", "status", "key")
    return [tuple(row[k] for k in keep) for row in rows]


def with_(data: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of a sweep with top-level sections replaced (``None`` removes one)."""
    out = json.loads(json.dumps(data))
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out
