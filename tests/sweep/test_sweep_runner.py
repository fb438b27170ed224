"""Running a sweep (:mod:`ppopt.sweep.runner`): options, CP-SAT workers per solve, the
local process pool and a Dask LocalCluster."""

from __future__ import annotations

import fcntl
import importlib.util
import os
import sys
from pathlib import Path

import pytest
from sweep_helpers import (
    BASELINES_SWEEP,
    TINY_OPTIMAL,
    comparable,
    read_csv,
    read_jsonl,
    run_cli,
    with_,
    write_sweep,
)

import ppopt.sweep.runner as runner
from ppopt.sweep import load_sweep, run_sweep
from ppopt.sweep.runner import assign_workers, plan_workers


def test_bad_options_exit_2(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, BASELINES_SWEEP)
    file_in_the_way = tmp_path / "taken"
    file_in_the_way.write_text("x")
    assert run_cli("sweep", str(path), "--out", str(tmp_path / "o"), "--jobs", "0").exit_code == 2
    result = run_cli("sweep", str(path), "--out", str(file_in_the_way), "--quiet")
    assert result.exit_code == 2 and "--out:" in result.stderr and "is a file" in result.stderr


def test_cluster_without_dask_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed fails
    path = write_sweep(tmp_path, BASELINES_SWEEP)
    result = run_cli("sweep", str(path), "--out", str(tmp_path / "o"), "--cluster", "x:1")
    assert result.exit_code == 2
    assert "--cluster: Dask is not installed" in result.stderr and "[dask]" in result.stderr


# ------------------------------------------------------------------------------ executors


def test_workers_per_solve_share_the_cores(monkeypatch) -> None:
    monkeypatch.setattr(runner, "available_cores", lambda: 8)
    warnings: list[str] = []
    assert plan_workers(1, None, False, warnings.append) == 8
    assert plan_workers(3, None, False, warnings.append) == 2
    assert plan_workers(16, None, False, warnings.append) == 1
    assert plan_workers(4, 2, False, warnings.append) == 2 and not warnings
    assert plan_workers(4, 3, False, warnings.append) == 3
    assert warnings == [
        "warning: 4 jobs x 3 CP-SAT workers per solve = 12 workers on 8 cores; "
        "solves will compete for the cores"
    ]
    assert plan_workers(4, None, True, warnings.append) == 1  # a cluster: one per solve


def test_warning_goes_to_stderr_and_the_sweep_runs(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(runner, "available_cores", lambda: 1)
    path = write_sweep(tmp_path, BASELINES_SWEEP)
    out = str(tmp_path / "out")
    result = run_cli("sweep", str(path), "--out", out, "--workers-per-solve", "2", "--quiet")
    assert result.exit_code == 0
    assert "warning: 1 jobs x 2 CP-SAT workers per solve = 2 workers on 1 cores" in result.stderr


def test_each_run_gets_an_explicit_worker_count(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(runner, "available_cores", lambda: 4)
    warnings: list[str] = []
    plain = load_sweep(write_sweep(tmp_path, with_(TINY_OPTIMAL, solver={"time_limit": 1})))
    assert {r.workers for r in assign_workers(plain.runs, 2, None, False, warnings.append)} == {2}
    assert {r.workers for r in assign_workers(plain.runs, 2, 1, False, warnings.append)} == {1}
    # the sweep's own solver.workers counts, also for the oversubscription warning
    tiny = load_sweep(write_sweep(tmp_path, TINY_OPTIMAL, "tiny.yaml"))  # workers: 1
    assert {r.workers for r in assign_workers(tiny.runs, 1, None, False, warnings.append)} == {1}
    own = with_(TINY_OPTIMAL, solver={"time_limit": 1, "workers": 3})
    runs = load_sweep(write_sweep(tmp_path, own, "own.yaml")).runs
    assert {r.workers for r in assign_workers(runs, 2, None, False, warnings.append)} == {3}
    assert warnings == [
        "warning: 2 jobs x 3 CP-SAT workers per solve = 6 workers on 4 cores; "
        "solves will compete for the cores"
    ]
    seen: list[int] = []
    monkeypatch.setattr(runner, "execute_run", lambda config, workers: seen.append(workers) or {})
    run_sweep(load_sweep(write_sweep(tmp_path, own, "own.yaml")), tmp_path / "o", quiet=True)
    assert seen == [3, 3, 3, 3]  # what the worker function receives


def test_local_process_pool_gives_the_same_results(tmp_path: Path) -> None:
    sweep = load_sweep(write_sweep(tmp_path, TINY_OPTIMAL))
    serial = run_sweep(sweep, tmp_path / "serial", quiet=True)
    pooled = run_sweep(sweep, tmp_path / "pooled", jobs=2, workers_per_solve=1, quiet=True)
    assert serial.executed == pooled.executed == 4 and pooled.failed == 0
    serial_rows = read_csv(tmp_path / "serial" / "results.csv")
    assert comparable(read_csv(tmp_path / "pooled" / "results.csv")) == comparable(serial_rows)
    assert len(read_jsonl(tmp_path / "pooled" / "runs.jsonl")) == 4


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None, reason="dask not installed")
def test_dask_local_cluster_runs_the_sweep(tmp_path: Path) -> None:
    from distributed import LocalCluster

    data = with_(TINY_OPTIMAL, grid={"num_batches": [2]}, schedules=["1f1b", "gpipe", "optimal"])
    sweep = load_sweep(write_sweep(tmp_path, data))
    run_sweep(sweep, tmp_path / "serial", quiet=True)
    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        outcome = run_sweep(sweep, tmp_path / "dask", cluster=cluster.scheduler_address, quiet=True)
        assert outcome.executed == 3 and outcome.failed == 0
        again = run_sweep(sweep, tmp_path / "dask", cluster=cluster.scheduler_address, quiet=True)
        assert (again.executed, again.skipped) == (0, 3)
    rows = read_csv(tmp_path / "dask" / "results.csv")
    assert comparable(rows) == comparable(read_csv(tmp_path / "serial" / "results.csv"))
    assert [row["status"] for row in rows] == ["", "", "OPTIMAL"]


def test_a_second_sweep_into_the_same_out_is_refused(tmp_path: Path) -> None:
    """Issue 21 item 12: two sweeps into one --out ran the same runs twice; the second one
    is now refused at once while the first holds the directory's lock."""
    sweep = write_sweep(tmp_path, BASELINES_SWEEP)
    out = tmp_path / "out"
    out.mkdir()
    with (out / ".ppopt-sweep.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a sweep running elsewhere
        busy = run_cli("sweep", str(sweep), "--out", str(out), "--quiet")
    assert busy.exit_code == 2
    assert busy.stderr == (
        f"error: --out: {out} is in use by another sweep; wait for it or give another directory\n"
    )
    assert not (out / "runs.jsonl").exists()  # nothing ran
    free = run_cli("sweep", str(sweep), "--out", str(out), "--quiet")  # the lock was released
    assert free.exit_code == 0, free.stderr


def test_an_unwritable_out_is_found_before_any_run(tmp_path: Path, monkeypatch) -> None:
    """Issue 21 item 12: a read-only --out was found only after every run had finished."""
    calls: list[str] = []
    monkeypatch.setattr(runner, "execute_run", lambda config, workers: calls.append("run"))
    if os.geteuid() != 0:
        out = tmp_path / "locked"
        out.mkdir()
        out.chmod(0o555)
    else:  # root writes anywhere permissions allow; /proc refuses even root
        out = Path("/proc")
    result = run_cli("sweep", str(write_sweep(tmp_path, BASELINES_SWEEP)), "--out", str(out))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: --out: cannot write to {out}: ")
    assert result.stderr.count("\n") == 1
    assert calls == []
