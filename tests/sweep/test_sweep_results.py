"""A sweep's results (:mod:`ppopt.sweep.results`): the CSV and ``runs.jsonl`` against direct
computations, the optimizer's gain over 1F1B, resume after a rerun or a torn line, failing
runs recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sweep_helpers import (
    BASELINES_SWEEP,
    PNG_MAGIC,
    TINY_OPTIMAL,
    comparable,
    read_csv,
    read_jsonl,
    run_cli,
    with_,
    write_sweep,
)

import ppopt.sweep.runner as runner
from ppopt.baselines import baseline
from ppopt.metrics import compute_metrics
from ppopt.problem import Problem
from ppopt.sweep import load_sweep, run_sweep

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


@pytest.mark.parametrize(
    "corrupt",
    [
        b'{"key": "\xff\xfe"}\n',  # not UTF-8 (the reader crashed with UnicodeDecodeError)
        b'{"key": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",  # RecursionError
        b'{"key": "x", "n": ' + b"9" * 5000 + b"}\n",  # over-long integer: ValueError
    ],
    ids=["bad-utf8", "deep-nesting", "huge-int"],
)
def test_a_corrupt_last_line_of_runs_jsonl_is_redone(tmp_path: Path, corrupt: bytes) -> None:
    """Issue 21 item 12: the resume reads past a corrupt last line and redoes that run."""
    sweep = load_sweep(write_sweep(tmp_path, BASELINES_SWEEP))
    out = tmp_path / "out"
    run_sweep(sweep, out, quiet=True)
    lines = (out / "runs.jsonl").read_bytes().splitlines(keepends=True)
    (out / "runs.jsonl").write_bytes(b"".join(lines[:-1]) + corrupt)
    again = run_sweep(sweep, out, quiet=True)
    assert (again.executed, again.skipped) == (1, 7)
