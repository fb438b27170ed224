"""Running a config (:mod:`ppopt.runs`): the optimizer or a baseline beside the classic 1F1B
reference, several schedules with the applicable baselines timed once, and the same numbers
from ``ppopt solve``, ``ppopt compare``, a sweep and the library for one config."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import ppopt.runs
from ppopt.baselines import applicable_baselines, baseline
from ppopt.cli import app
from ppopt.config import build_run_config
from ppopt.errors import NoScheduleError, NotApplicableError, UnknownScheduleError
from ppopt.problem import Problem
from ppopt.runs import compare_schedules, run_schedule
from ppopt.solver import Objective, Status
from ppopt.sweep import load_sweep, run_sweep

#: 3 devices, 4 micro-batches, split backward (B 1, W 1), p2p 0.25, 1x memory: the optimizer
#: proves 15; the classic 1F1B (unsplit, backward 2) takes 20, so the improvement is 25 %.
SPLIT: dict[str, Any] = {
    "num_stages": 3,
    "num_batches": 4,
    "forward_times": 1.0,
    "backward_times": 1.0,
    "weight_times": 1.0,
    "p2p_time": 0.25,
}
SOLVER = {"workers": 1, "deterministic": True, "time_limit": 20}


def config(**changes: Any) -> dict[str, Any]:
    return {**SPLIT, "solver": SOLVER, **changes}


def counting(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """Count the calls of ``ppopt.runs.<name>`` (still calling the real one)."""
    calls: list[str] = []
    real = getattr(ppopt.runs, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return real(*args, **kwargs)

    monkeypatch.setattr(ppopt.runs, name, counted)
    return calls


# ------------------------------------------------------------------------------ one run


def test_optimal_outcome_carries_the_result_and_the_gain() -> None:
    outcome = run_schedule(build_run_config(config()))
    assert outcome.result is not None and outcome.result.status == Status.OPTIMAL
    assert outcome.schedule is outcome.result.schedule
    assert outcome.objective == Objective.MAKESPAN
    assert outcome.schedule.makespan == 15.0
    assert outcome.reference_value == outcome.reference.makespan == 20.0
    assert outcome.improvement == pytest.approx(0.25)


def test_span_objective_measures_the_gain_in_span() -> None:
    run = build_run_config(config(solver={**SOLVER, "objective": "span"}))
    outcome = run_schedule(run)
    assert outcome.objective == Objective.SPAN
    spans = (outcome.reference_value, outcome.result.objective_value)  # type: ignore[union-attr]
    assert outcome.improvement == pytest.approx((spans[0] - spans[1]) / spans[0])


def test_baseline_outcome_is_the_baseline_and_has_no_result() -> None:
    run = build_run_config(config(schedule="gpipe"))
    outcome = run_schedule(run)
    assert outcome.result is None
    assert outcome.schedule == baseline("gpipe", run.problem)
    assert outcome.objective == Objective.MAKESPAN
    gain = (outcome.reference.makespan - outcome.schedule.makespan) / outcome.reference.makespan
    assert outcome.improvement == pytest.approx(gain)
    other = run_schedule(run, "1f1b")  # a name beats the run's schedule
    assert other.schedule.name == "1f1b" and other.result is None


def test_a_limit_below_one_microbatch_is_no_schedule_for_a_baseline_too() -> None:
    run = build_run_config(config(schedule="1f1b", memory={"limit": 0.5}))
    with pytest.raises(NoScheduleError, match="^no schedule: device 1 needs 1 memory"):
        run_schedule(run)
    with pytest.raises(NoScheduleError):
        run_schedule(run, "optimal")
    measured = run_schedule(run, check_fits=False)  # what a sweep does
    assert measured.schedule == baseline("1f1b", run.problem)


def test_baseline_errors_name_the_cause() -> None:
    run = build_run_config(config(schedule="1f1b", weight_times=None))
    with pytest.raises(NotApplicableError):
        run_schedule(run, "zb-h1")  # needs a split backward
    with pytest.raises(UnknownScheduleError):
        run_schedule(run, "2f2b")


def test_the_reference_is_the_classic_1f1b_unsplit_with_chunks_merged() -> None:
    """docs/contract.md §1: p=2, v=2, m=3, F=B=W=1 per virtual stage. Merged, each device is
    one stage with F 2, backward B+W 4, activation 2: 1F1B takes (m+p-1)(2+4) = 24 and device
    d holds min(p-d, m) micro-batches of 2."""
    run = build_run_config(
        {"num_stages": 2, "num_batches": 3, "num_chunks": 2, "weight_times": 1.0,
         "backward_times": 1.0, "schedule": "interleaved-1f1b"}
    )  # fmt: skip
    assert run.problem.is_split and run.problem.num_chunks == 2
    reference = run_schedule(run).reference
    assert reference.name == "1f1b"
    assert not reference.problem.is_split and reference.problem.num_chunks == 1
    classic = Problem.create(2, 3, forward=2, backward=4, activation=2)
    assert reference.problem.forward == classic.forward
    assert reference.problem.backward == classic.backward
    assert reference.problem.activation == classic.activation
    assert reference.makespan == (3 + 2 - 1) * (2 + 4) == baseline("1f1b", classic).makespan
    assert [op.start for op in reference.device_ops[1]] == [
        op.start for op in baseline("1f1b", classic).device_ops[1]
    ]


# ------------------------------------------------------------------------ several runs


def test_compare_times_the_applicable_baselines_once(monkeypatch: pytest.MonkeyPatch) -> None:
    run = build_run_config(config(schedule="1f1b", weight_times=None))
    applicable = counting(monkeypatch, "applicable_baselines")
    timed = counting(monkeypatch, "baseline")
    names = ["1f1b", "gpipe", "zb-h1", "zb-v"]
    comparison = compare_schedules(run, names, skip_inapplicable=True)
    assert applicable == ["applicable_baselines"]
    assert timed == []  # the schedules come from that one call
    assert comparison.left_out == ("zb-h1", "zb-v")  # a split backward / two chunks only
    expected = applicable_baselines(run.problem)
    assert comparison.schedules == [expected["1f1b"], expected["gpipe"]]
    assert comparison.results == []
    assert {id(o.reference) for o in comparison.outcomes} == {id(comparison.outcomes[0].reference)}


def test_compare_by_name_raises_for_a_baseline_that_does_not_apply() -> None:
    run = build_run_config(config(schedule="1f1b", weight_times=None))
    with pytest.raises(NotApplicableError):
        compare_schedules(run, ["1f1b", "zb-h1"])
    with pytest.raises(UnknownScheduleError):
        compare_schedules(run, ["1f1b", "2f2b"], skip_inapplicable=True)
    with pytest.raises(NoScheduleError):
        compare_schedules(build_run_config(config(memory={"limit": 0.5})), ["optimal", "1f1b"])


def test_compare_keeps_the_order_and_runs_the_optimizer() -> None:
    run = build_run_config(config())
    comparison = compare_schedules(run, ["1f1b", "optimal", "gpipe"], skip_inapplicable=True)
    assert [s.name for s in comparison.schedules] == ["1f1b", "optimal", "gpipe"]
    (result,) = comparison.results
    assert comparison.outcomes[1].result is result and result.schedule.makespan == 15.0


def test_the_cli_compare_times_the_applicable_baselines_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = counting(monkeypatch, "applicable_baselines")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"num_stages": 2, "num_batches": 2}))
    result = CliRunner().invoke(
        app, ["compare", str(path), "--workers", "1", "--no-visualization", "--quiet"]
    )  # the default names: 1f1b, gpipe and optimal
    assert result.exit_code == 0, result.output
    assert calls == ["applicable_baselines"]


# ------------------------------------------------------------------- one config, 4 ways


def test_solve_compare_sweep_and_library_agree(tmp_path: Path) -> None:
    """The same config gives the same makespan and improvement over 1F1B everywhere."""
    outcome = run_schedule(build_run_config(config()))
    makespan, gain = outcome.schedule.makespan, outcome.improvement
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(config()))
    runner = CliRunner()

    solved = runner.invoke(
        app, ["solve", str(cfg), "--no-visualization", "--quiet", "--json", str(tmp_path / "s")]
    )
    assert solved.exit_code == 0, solved.output
    assert json.loads((tmp_path / "s").read_text())["metrics"]["makespan"] == makespan
    assert f"improvement over 1F1B: {gain * 100:.2f}% (makespan 20 -> 15)" in solved.stdout

    compared = runner.invoke(
        app, ["compare", str(cfg), "--schedules", "optimal", "--no-visualization", "--quiet"]
    )
    assert compared.exit_code == 0, compared.output
    row = next(line for line in compared.stdout.splitlines() if line.startswith("makespan"))
    assert row.split()[1:] == [f"{makespan:g}"]

    sweep_file = tmp_path / "sweep.yaml"
    base = {key: value for key, value in SPLIT.items() if key != "num_batches"}
    grid = {"num_batches": [SPLIT["num_batches"]]}
    sweep_file.write_text(
        yaml.safe_dump({"base": base, "grid": grid, "schedules": ["optimal"], "solver": SOLVER})
    )
    run_sweep(load_sweep(sweep_file), tmp_path / "out", quiet=True)
    with (tmp_path / "out" / "results.csv").open(encoding="utf-8") as handle:
        (row_,) = list(csv.DictReader(handle))
    assert float(row_["makespan"]) == makespan
    assert float(row_["reference_makespan"]) == outcome.reference_value == 20.0
    assert float(row_["improvement"]) == pytest.approx(gain)
