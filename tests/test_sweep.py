"""``ppopt sweep``: sweep-file validation, the grid's cross product, results vs direct
computations, resume, failing runs, the local process pool and a Dask LocalCluster.

Solver runs are tiny (2 devices) with a 1 s limit and one CP-SAT worker.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import ppopt.sweep.runner as runner
from ppopt.baselines import baseline
from ppopt.cli import app
from ppopt.metrics import compute_metrics
from ppopt.problem import Problem
from ppopt.sweep import load_sweep, run_sweep
from ppopt.sweep.plots import plot_bubble_rate, plot_improvement
from ppopt.sweep.runner import assign_workers, plan_workers

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


# ------------------------------------------------------------------------------ results


def test_results_match_direct_baseline_computation(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, BASELINES_SWEEP)
    result = run_cli("sweep", str(path), "--out", str(tmp_path / "out"), "--quiet")
    assert result.exit_code == 0, result.output
    assert "8 runs: 8 run now, 0 already done" in result.stdout
    rows = read_csv(tmp_path / "out" / "results.csv")
    assert len(rows) == 8
    assert list(rows[0])[:3] == ["num_batches", "p2p_time", "schedule"]
    for row in rows:
        m, p2p = int(row["num_batches"]), float(row["p2p_time"])
        metrics = compute_metrics(baseline(row["schedule"], Problem.create(4, m, p2p=p2p)))
        assert float(row["makespan"]) == metrics.makespan
        assert float(row["bubble_rate"]) == pytest.approx(metrics.bubble_rate, abs=1e-12)
        assert float(row["bubble_ratio"]) == pytest.approx(metrics.bubble_ratio, abs=1e-12)
        assert float(row["peak_memory"]) == max(metrics.peak_memory)
        assert row["error"] == "" and row["status"] == ""
        if row["schedule"] == "1f1b" and p2p == 0:  # closed form (m + p - 1)(f + b)
            assert float(row["makespan"]) == (m + 3) * 3.0
            assert float(row["bubble_rate"]) == pytest.approx(3 / (m + 3))
    records = read_jsonl(tmp_path / "out" / "runs.jsonl")
    by_key = {record["key"]: record for record in records}
    assert len(records) == 8 and set(by_key) == {row["key"] for row in rows}
    for row in rows:
        record = by_key[row["key"]]
        assert record["schedule"] == row["schedule"]
        assert record["params"] == {
            "num_batches": int(row["num_batches"]),
            "p2p_time": float(row["p2p_time"]),
        }
        assert max(record["peak_memory_per_device"]) == float(row["peak_memory"])
    pictures = ["bubble_rate_vs_num_batches.png", "bubble_rate_vs_p2p_time.png"]
    for name in pictures:
        assert (tmp_path / "out" / name).read_bytes().startswith(PNG_MAGIC)


def test_optimal_runs_record_solver_and_gain_over_1f1b(tmp_path: Path) -> None:
    sweep = load_sweep(write_sweep(tmp_path, TINY_OPTIMAL))
    outcome = run_sweep(sweep, tmp_path / "out", quiet=True)
    assert outcome.executed == 4 and outcome.failed == 0
    rows = read_csv(tmp_path / "out" / "results.csv")
    one_f_one_b = {r["num_batches"]: float(r["makespan"]) for r in rows if r["schedule"] == "1f1b"}
    for row in (r for r in rows if r["schedule"] == "optimal"):
        makespan, reference = float(row["makespan"]), float(row["reference_makespan"])
        assert row["status"] == "OPTIMAL" and float(row["gap"]) == 0.0
        assert float(row["lower_bound"]) == makespan
        assert reference == one_f_one_b[row["num_batches"]]  # plain problem: plain 1F1B
        assert float(row["improvement"]) == pytest.approx((reference - makespan) / reference)
        assert makespan <= reference
        assert 0 < float(row["solve_time"]) <= float(row["wall_time"])
    for name in ("improvement_over_1f1b.png", "solve_time_vs_tasks.png"):
        assert (tmp_path / "out" / name).read_bytes().startswith(PNG_MAGIC)


def test_rerun_resumes_and_does_no_finished_work(tmp_path: Path, monkeypatch) -> None:
    calls: list[str] = []
    real = runner.execute_run

    def counting(config: dict[str, Any], workers: int) -> dict[str, Any]:
        calls.append(config["schedule"])
        return real(config, workers)

    monkeypatch.setattr(runner, "execute_run", counting)
    sweep = load_sweep(write_sweep(tmp_path, BASELINES_SWEEP))
    out = tmp_path / "out"
    first = run_sweep(sweep, out, quiet=True)
    assert (first.executed, first.skipped, len(calls)) == (8, 0, 8)
    csv_before = (out / "results.csv").read_text()
    rows_before = read_csv(out / "results.csv")
    jsonl_before = (out / "runs.jsonl").read_text()

    second = run_sweep(sweep, out, quiet=True)
    assert (second.executed, second.skipped, len(calls)) == (0, 8, 8)  # no new run at all
    assert (out / "runs.jsonl").read_text() == jsonl_before
    assert (out / "results.csv").read_text() == csv_before

    # a crash mid-write leaves a torn last line: exactly that run is redone
    lines = jsonl_before.splitlines(keepends=True)
    (out / "runs.jsonl").write_text("".join(lines[:-1]) + lines[-1][:20])
    third = run_sweep(sweep, out, quiet=True)
    assert (third.executed, third.skipped, len(calls)) == (1, 7, 9)
    assert comparable(read_csv(out / "results.csv")) == comparable(rows_before)

    # growing the grid runs only the new points
    bigger = with_(BASELINES_SWEEP, grid={"num_batches": [2, 5, 7], "p2p_time": [0, 0.25]})
    fourth = run_sweep(load_sweep(write_sweep(tmp_path, bigger, "bigger.yaml")), out, quiet=True)
    assert (fourth.executed, fourth.skipped, len(calls)) == (4, 8, 13)
    assert len(read_csv(out / "results.csv")) == 12


def test_a_failing_run_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    data = {
        "base": {"num_stages": 2, "num_batches": 2},
        "grid": {"memory.limit": [0.5, "none"]},  # 0.5 < one micro-batch's activation
        "schedules": ["1f1b", "zb-h1", "optimal"],  # zb-h1 needs a split backward
        "solver": {"time_limit": 1, "workers": 1},
    }
    path = write_sweep(tmp_path, data)
    result = run_cli("sweep", str(path), "--out", str(tmp_path / "out"), "--quiet")
    assert result.exit_code == 0, result.output
    assert "6 runs: 6 run now" in result.stdout and "3 failed" in result.stdout
    rows = {(r["memory.limit"], r["schedule"]): r for r in read_csv(tmp_path / "out/results.csv")}
    assert len(rows) == 6
    for limit in ("0.5", "none"):
        failed = rows[(limit, "zb-h1")]
        assert failed["status"] == "ERROR" and "split backward" in failed["error"]
        assert failed["makespan"] == ""
        assert rows[(limit, "1f1b")]["makespan"] == "9.0"  # (m + p - 1)(f + b), no limit check
    assert rows[("0.5", "optimal")]["status"] == "ERROR"
    assert "NoScheduleError" in rows[("0.5", "optimal")]["error"]
    assert rows[("none", "optimal")]["status"] == "OPTIMAL"
    errors = [r for r in read_jsonl(tmp_path / "out/runs.jsonl") if r["status"] == "ERROR"]
    assert len(errors) == 3  # a run's own error is final: saved, not retried


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


# ------------------------------------------------------------------------------ plots


def test_plots_name_metric_units_and_bands() -> None:
    rows = [
        {
            "num_batches": m,
            "p2p_time": t,
            "num_chunks": 1,
            "memory.limit": lim,
            "schedule": s,
            "bubble_rate": (3 / (m + 3)) * (1.1 if s == "1f1b" else 1.0),
            "improvement": 0.05 * t,
        }
        for m in (4, 8)
        for t in (0, 0.5, 1.0)
        for lim in ("1x", "2x")
        for s in ("1f1b", "optimal")
    ]
    keys = ["num_batches", "p2p_time", "memory.limit"]
    figure = plot_bubble_rate(rows, "num_batches", keys)
    ax = figure.axes[0]
    assert ax.get_xlabel() == "num_batches (micro-batches)"
    assert "bubble rate" in ax.get_ylabel() and "idle share" in ax.get_ylabel()
    assert "band" in figure.get_suptitle()  # 6 combinations of the other keys: mean + band
    assert [line.get_label() for line in ax.get_lines()] == ["1f1b", "optimal"]
    mean_1f1b = ax.get_lines()[0].get_ydata()
    assert list(mean_1f1b) == pytest.approx([100 * 1.1 * 3 / 7, 100 * 1.1 * 3 / 11])

    few = plot_bubble_rate(
        [r for r in rows if r["memory.limit"] == "1x" and r["p2p_time"] == 0], "num_batches", keys
    )
    assert "band" not in few.get_suptitle()
    labels = [line.get_label() for line in few.axes[0].get_lines()]
    assert labels == ["1f1b, p2p_time=0, memory.limit=1x", "optimal, p2p_time=0, memory.limit=1x"]

    categorical = plot_bubble_rate(rows, "memory.limit", keys).axes[0]
    assert [t.get_text() for t in categorical.get_xticklabels()] == ["1x", "2x"]

    gain = plot_improvement([r for r in rows if r["schedule"] == "optimal"], keys)
    assert "1F1B makespan - optimal makespan" in gain.get_suptitle()
    assert gain.axes[0].get_ylabel() == "makespan gain over 1F1B (%)"
    assert math.isclose(max(max(line.get_ydata()) for line in gain.axes[0].get_lines()), 5.0)
