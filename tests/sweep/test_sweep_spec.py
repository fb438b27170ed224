"""Sweep files (:mod:`ppopt.sweep.spec`): validation before any run, the grid's cross
product, stable run keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sweep_helpers import BASELINES_SWEEP, TINY_OPTIMAL, run_cli, with_, write_sweep

from ppopt.sweep import load_sweep

# ------------------------------------------------------------------------------ bad input

GOOD = BASELINES_SWEEP
BAD_SWEEPS = [
    # a misspelt grid key is named, with the list of keys a grid may vary
    (with_(GOOD, grid={"num_batchez": [2]}), "grid.num_batchez: unknown grid key"),
    # a misspelt nested key
    (with_(GOOD, grid={"memory.lmit": ["1x"]}), "grid.memory.lmit: unknown grid key"),
    # a per-run key is not a grid key: schedules come from schedules:
    (with_(GOOD, grid={"schedule": ["1f1b"]}), "grid.schedule: unknown grid key"),
    # an empty grid
    (with_(GOOD, grid={}), "grid: empty"),
    # no grid at all
    (with_(GOOD, grid=None), "grid: empty"),
    # a grid key without a list
    (with_(GOOD, grid={"num_batches": 4}), "grid.num_batches: expected a list"),
    # a grid key with an empty list
    (with_(GOOD, grid={"num_batches": []}), "grid.num_batches: empty list"),
    # an unknown schedule
    (with_(GOOD, schedules=["1f1b", "zb-h9"]), "schedules: unknown schedule 'zb-h9'"),
    # no schedules
    (with_(GOOD, schedules=[]), "schedules: give a list"),
    # a schedule twice
    (with_(GOOD, schedules=["1f1b", "1f1b"]), "schedules: a schedule is listed twice"),
    # an unknown base key
    (with_(GOOD, base={"num_stages": 4, "forward_time": 1}), "base.forward_time: unknown key"),
    # a bad base value (no grid key involved): named as a base key
    (
        with_(GOOD, base={"num_stages": 4, "forward_times": [1, 1, -1, 1]}),
        "base.forward_times[2]: must be > 0, got -1",
    ),
    # a base that is not a mapping
    (with_(GOOD, base=[1, 2]), "base: expected a mapping"),
    # a required key in neither base nor grid
    (with_(GOOD, grid={"p2p_time": [0]}), "base.num_batches: missing; give it in base: or as a"),
    # no base
    (with_(GOOD, base=None), "base: missing"),
    # a per-run key in the base
    (with_(GOOD, base={"num_stages": 4, "schedule": "1f1b"}), "base.schedule: not used"),
    # one bad grid point: the point is named
    (
        with_(GOOD, grid={"num_batches": [2, 0]}),
        "grid point (num_batches=0): num_batches: must be >= 1",
    ),
    # a grid point whose list has the wrong length
    (
        with_(GOOD, grid={"num_batches": [2], "forward_times": [[1, 1, 1, 1], [1, 1]]}),
        "grid point (num_batches=2, forward_times=[1, 1]): forward_times: expected 4 values",
    ),
    # issue 21 item 11: a grid key with a digit in its name is the culprit, not base.
    (
        with_(GOOD, grid={"num_batches": [2], "p2p_time": [0, -1]}),
        "grid point (num_batches=2, p2p_time=-1): p2p_time: must be >= 0, got -1",
    ),
    # a dotted grid key with an index in the message
    (
        with_(GOOD, grid={"num_batches": [2], "memory.activation": [1, [1, -1, 1, 1]]}),
        "grid point (num_batches=2, memory.activation=[1, -1, 1, 1]): memory.activation[1]: must",
    ),
    # issue 21 item 12: two grid points that are one run (it ran once, counted twice)
    (
        with_(GOOD, grid={"num_batches": [2], "p2p_time": [0, 0]}),
        "grid points (num_batches=2, p2p_time=0) and (num_batches=2, p2p_time=0) are the same "
        "1f1b run",
    ),
    # ... also when spelt differently
    (
        with_(GOOD, grid={"num_batches": [2], "forward_times": [1, [1, 1, 1, 1]]}),
        "grid points (num_batches=2, forward_times=1) and (num_batches=2, forward_times=[1, 1, 1, "
        "1]) are the same 1f1b run; list each value once",
    ),
    # a bad solver key and value
    (with_(GOOD, solver={"time_limt": 1}), "solver.time_limt: unknown key"),
    (with_(GOOD, solver={"time_limit": -1}), "solver.time_limit: must be > 0"),
    # an unknown top-level key
    (with_(GOOD, grids={"num_batches": [2]}), "grids: unknown sweep key"),
]


@pytest.mark.parametrize(("data", "expected"), BAD_SWEEPS, ids=[e for _, e in BAD_SWEEPS])
def test_bad_sweep_exits_2_naming_the_culprit_before_any_run(
    tmp_path: Path, data: dict[str, Any], expected: str
) -> None:
    path = write_sweep(tmp_path, data)
    result = run_cli("sweep", str(path), "--out", str(tmp_path / "out"), "--quiet")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: "), result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()  # nothing ran, nothing was written


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        ("base: [", "sweep.yaml", "syntax error"),  # YAML syntax
        ("- 1\n- 2\n", "sweep.yaml", "expected a mapping"),  # not a mapping
        ("{}", "sweep.toml", "must end in .yaml, .yml or .json"),  # unknown format
    ],
)
def test_unreadable_sweep_file_exits_2(tmp_path: Path, text: str, name: str, expected: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = run_cli("sweep", str(path), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and expected in result.stderr
    assert run_cli("sweep", str(tmp_path / "no.yaml"), "--out", "x").exit_code == 2


# ------------------------------------------------------------------------------ the grid


@settings(max_examples=15)
@given(
    batches=st.lists(st.integers(1, 6), min_size=1, max_size=3, unique=True),
    latencies=st.lists(st.sampled_from([0, 0.25, 0.5, 1.0]), min_size=1, max_size=3, unique=True),
    limits=st.lists(st.sampled_from(["none", "1x", "2x", 10]), min_size=1, max_size=2, unique=True),
    schedules=st.lists(st.sampled_from(["1f1b", "gpipe", "optimal"]), min_size=1, unique=True),
)
def test_runs_are_the_cross_product(tmp_path_factory, batches, latencies, limits, schedules):
    grid = {"num_batches": batches, "p2p_time": latencies, "memory.limit": limits}
    data = {"base": {"num_stages": 3}, "grid": grid, "schedules": schedules}
    sweep = load_sweep(write_sweep(tmp_path_factory.mktemp("grid"), data))
    assert len(sweep.runs) == len(batches) * len(latencies) * len(limits) * len(schedules)
    seen = {(tuple(run.params.values()), run.schedule) for run in sweep.runs}
    assert len(seen) == len(sweep.runs)  # every combination exactly once
    for run in sweep.runs:
        assert run.config["num_batches"] == run.params["num_batches"]
        assert run.config["p2p_time"] == run.params["p2p_time"]
        assert run.config["memory"] == {"limit": run.params["memory.limit"]}  # nested key
        assert run.config["schedule"] == run.schedule
        assert run.num_tasks == 2 * 3 * run.params["num_batches"]
    assert len({run.key for run in sweep.runs}) == len(sweep.runs)


def test_run_key_is_stable_and_ignores_spelling(tmp_path: Path) -> None:
    scalar = load_sweep(write_sweep(tmp_path, BASELINES_SWEEP, "a.yaml"))
    listed = with_(BASELINES_SWEEP, base={"num_stages": 4, "forward_times": [1, 1, 1, 1]})
    spelled = load_sweep(write_sweep(tmp_path, listed, "b.yaml"))
    again = load_sweep(write_sweep(tmp_path, BASELINES_SWEEP, "c.yaml"))
    assert [r.key for r in scalar.runs] == [r.key for r in spelled.runs]
    assert [r.key for r in scalar.runs] == [r.key for r in again.runs]
    longer = load_sweep(
        write_sweep(tmp_path, with_(TINY_OPTIMAL, solver={"time_limit": 2}), "d.yaml")
    )
    shorter = load_sweep(
        write_sweep(tmp_path, with_(TINY_OPTIMAL, solver={"time_limit": 1}), "e.yaml")
    )
    pairs = list(zip(longer.runs, shorter.runs, strict=True))
    # the solver's time limit changes the optimizer's runs, not the baselines'
    assert [a.key == b.key for a, b in pairs] == [r.schedule != "optimal" for r, _ in pairs]
