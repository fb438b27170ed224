"""The schedule file of docs/contract.md §4: round trip, content, refusals, and a failed write
that leaves the old file (the atomic writer itself: ``tests/test_atomic.py``)."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from strategies import problems, timed

from ppopt.baselines import baseline
from ppopt.config import PROBLEM_KEYS, problem_to_dict
from ppopt.export.schedule_json import (
    FORMAT,
    ScheduleFileError,
    dumps_schedule,
    read_schedule,
    schedule_from_dict,
    schedule_to_dict,
    write_schedule,
)
from ppopt.limits import tidy
from ppopt.metrics import compute_metrics
from ppopt.problem import Problem
from ppopt.schedule import Op, Schedule
from ppopt.validate import validate


@given(timed(problems(placements=("interleaved", "vshape", "explicit"))))
def test_round_trip_keeps_every_op_and_the_problem(schedule: Schedule) -> None:
    data = json.loads(dumps_schedule(schedule))
    again, solver = schedule_from_dict(data)
    assert solver is None
    # every op in its place, its times to the file's 12 significant digits (docs/contract.md §4)
    assert [[op[:4] for op in row] for row in again.device_ops] == [
        [op[:4] for op in row] for row in schedule.device_ops
    ]
    for op, written in zip(again.ops(), schedule.ops(), strict=True):
        assert (op.start, op.end) == (tidy(written.start), tidy(written.end))
    assert again.name == schedule.name and again.interrupted == schedule.interrupted
    assert problem_to_dict(again.problem) == problem_to_dict(schedule.problem)  # exactly
    assert validate(again, limit=None) == []
    assert compute_metrics(again).makespan == pytest.approx(schedule.makespan, rel=5e-12)


def test_file_content(tmp_path: Path) -> None:
    problem = Problem.create(3, 4, forward=[1, 1.5, 1], weight=0.5, retained=0.25, p2p=0.1)
    schedule = baseline("1f1b", problem)
    solver = {"status": "OPTIMAL", "lower_bound": schedule.makespan, "gap": 0.0, "wall_time": 0.1}
    path = tmp_path / "s.json"
    write_schedule(path, schedule, solver)
    data = json.loads(path.read_text())
    assert data["format"] == FORMAT == "ppopt-schedule/1"
    assert tuple(data["problem"]) == PROBLEM_KEYS  # every problem key of §2, normalised
    assert data["problem"]["forward_times"] == [1.0, 1.5, 1.0]
    assert data["problem"]["weight_times"] == [0.5, 0.5, 0.5]
    assert data["problem"]["memory"] == {
        "activation": [1.0, 1.0, 1.0], "retained": [0.25, 0.25, 0.25], "limit": "1x",
        "recompute": "none", "checkpoint": None,
    }  # fmt: skip
    assert data["schedule"] == "1f1b"
    assert data["solver"] == tidy(solver)  # numbers to 12 significant digits
    assert data["interrupted"] is False
    assert len(data["ops"]) == problem.num_tasks == 3 * 3 * 4
    assert set(data["ops"][0]) == {"device", "stage", "microbatch", "kind", "start", "end"}
    metrics = {**compute_metrics(schedule).to_dict(), "fits_memory_limit": True}
    assert data["metrics"] == tidy(metrics)
    assert data["metrics"]["busy"] == [14.0, 16.0, 14.0]  # 13.999999999999998 in floats
    assert "solver" not in schedule_to_dict(schedule)  # only when a solver ran
    loaded, loaded_solver = read_schedule(path)
    assert loaded.problem == schedule.problem and loaded_solver == tidy(solver)
    assert [tidy([op.start, op.end]) for op in schedule.ops()] == [
        [op.start, op.end] for op in loaded.ops()
    ]
    assert validate(loaded, loaded.problem.memory_caps) == []


def test_float_times_come_back_to_12_digits_and_the_problem_exactly(tmp_path: Path) -> None:
    """The problem's own numbers are written exactly (a p2p of 0.30000000000000004 stays
    that); the times to 12 significant digits, and the file still validates."""
    problem = Problem.create(2, 3, forward=0.1, backward=0.2, p2p=0.30000000000000004)
    schedule = baseline("gpipe", problem)
    write_schedule(tmp_path / "s.json", schedule)
    loaded, _ = read_schedule(tmp_path / "s.json")
    assert loaded.problem == problem and loaded.problem.p2p == 0.30000000000000004
    for op, written in zip(loaded.ops(), schedule.ops(), strict=True):
        assert op[:4] == written[:4] and op.end == pytest.approx(written.end, rel=5e-12)
    assert validate(loaded, limit=None) == []  # GPipe holds all m: no limit asked


def test_named_placement_comes_back_by_name() -> None:
    problem = Problem.create(2, 2, num_chunks=2, placement="vshape")
    loaded, _ = schedule_from_dict(json.loads(dumps_schedule(baseline("gpipe", problem))))
    assert loaded.problem == problem and loaded.problem.placement_name == "vshape"


@pytest.fixture(scope="module")
def good() -> dict:
    """A valid file's content: 1F1B of p=2, m=2."""
    return json.loads(dumps_schedule(baseline("1f1b", Problem.create(2, 2))))


def _edit(data: dict, path: str, value: object) -> dict:
    """A deep copy of ``data`` with ``a.b.0.c`` set to ``value`` (``DELETE`` removes it)."""
    out = copy.deepcopy(data)
    *parents, last = path.split(".")
    node = out
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value == "DELETE":
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


@pytest.mark.parametrize(
    ("path", "value", "fragment"),
    [
        # another version of the format
        ("format", "ppopt-schedule/2", "format 'ppopt-schedule/2' is not supported"),
        # not ours at all
        ("format", "DELETE", "not a ppopt schedule file"),
        # a key this version does not know
        ("extra", 1, "extra: unknown key"),
        # required parts missing
        ("ops", "DELETE", "ops: missing"),
        ("metrics", "DELETE", "metrics: missing"),
        # a problem that is not valid as a config
        ("problem.forward_times", [1.0, -1.0], "problem: forward_times[1]: must be > 0, got -1"),
        ("problem.num_chunks", 0, "problem: num_chunks: must be >= 1, got 0"),
        # ops that do not fit the problem
        ("ops.0.kind", "W", "ops[0].kind: expected one of F, B, got 'W'"),
        ("ops.0.stage", 7, "ops[0].stage: expected an index 0..1, got 7"),
        ("ops.0.microbatch", -1, "ops[0].microbatch: expected an index 0..1, got -1"),
        ("ops.0.device", 1, "ops[0]: stage index 0 runs on device index 0 by the problem's"),
        ("ops.0.start", "soon", "ops[0].start: expected a finite number, got 'soon'"),
        ("ops.0.end", "DELETE", "ops[0]: expected an object with keys"),
        ("ops.1.microbatch", 0, "appears twice"),
        # metrics that are not those of the ops
        ("metrics.makespan", 99.0, "metrics.makespan: the file says 99.0, its ops give 9.0"),
        ("metrics.bubble_rate", "DELETE", "metrics.bubble_rate: missing"),
        # issue 21 item 8: every metric is checked, not only the four headline ones
        (
            "metrics.peak_memory",
            [1.0, 1.0],
            "metrics.peak_memory[0]: the file says 1.0, its ops give 2.0",
        ),
        ("metrics.busy.1", 5.0, "metrics.busy[1]: the file says 5.0, its ops give 6.0"),
        ("metrics.idle", [0.0, 0.0], "metrics.idle[0]: the file says 0.0, its ops give 3.0"),
        ("metrics.zb_bubble", 0.0, "metrics.zb_bubble: the file says 0.0, its ops give 0.333"),
        ("metrics.busy", [6.0], "metrics.busy: expected a list of 2 numbers"),
        ("metrics.fits_memory_limit", "yes", "metrics.fits_memory_limit: expected true or false"),
        # ... and the solver's claims: a bound above the makespan, a negative gap, OPTIMAL
        # with a gap, FEASIBLE at the bound, a status that is not one
        (
            "solver",
            {"status": "OPTIMAL", "lower_bound": 22.0, "gap": 0.0},
            "solver.lower_bound: 22.0 is above the schedule's makespan 9.0",
        ),
        (
            "solver",
            {"status": "FEASIBLE", "lower_bound": 8.0, "gap": -0.5},
            "solver.gap: the file says -0.5, its ops give 0.111",
        ),
        (
            "solver",
            {"status": "OPTIMAL", "lower_bound": 8.0, "gap": 1 / 9},
            "solver.status: OPTIMAL, but the makespan 9.0 is above the lower bound 8.0",
        ),
        (
            "solver",
            {"status": "FEASIBLE", "lower_bound": 9.0, "gap": 0.0},
            "solver.status: FEASIBLE, but the makespan 9.0 meets the lower bound",
        ),
        (
            "solver",
            {"status": "DONE", "lower_bound": 9.0, "gap": 0.0},
            "solver.status: expected OPTIMAL or FEASIBLE, got 'DONE'",
        ),
        (
            "solver",
            {"status": "OPTIMAL", "lower_bound": None, "gap": 0.0},
            "solver.lower_bound: expected a finite number, got None",
        ),
        (
            "solver",
            {"status": "OPTIMAL", "objective": "span", "lower_bound": 9.5, "gap": 0.0},
            "solver.lower_bound: 9.5 is above the schedule's span 9.0",
        ),
        # odd types
        ("interrupted", "yes", "interrupted: expected true or false, got 'yes'"),
        ("solver", [1], "solver: expected an object"),
        ("schedule", "", "schedule: expected a name"),
    ],
)
def test_inconsistent_files_are_refused(
    good: dict, path: str, value: object, fragment: str
) -> None:
    with pytest.raises(ScheduleFileError) as error:
        schedule_from_dict(_edit(good, path, value))
    assert fragment in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_task_is_refused(good: dict) -> None:
    data = copy.deepcopy(good)
    data["ops"].pop()
    with pytest.raises(ScheduleFileError, match="1 tasks of the problem are missing"):
        schedule_from_dict(data)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ScheduleFileError, match="s.json: file not found"):
        read_schedule(tmp_path / "s.json")
    (tmp_path / "t.json").write_text("{oops")
    with pytest.raises(ScheduleFileError, match=r"t\.json: not a schedule file \(JSON syntax"):
        read_schedule(tmp_path / "t.json")


def test_unserialisable_schedule_leaves_the_old_file(tmp_path: Path) -> None:
    """A NaN time cannot be written (``allow_nan=False``): the old file stays whole."""
    problem = Problem.create(1, 1)
    nan = float("nan")
    broken = Schedule(problem, "broken", ((Op(0, "F", 0, 0, 0.0, nan), Op(0, "B", 0, 0, 1, 3)),))
    target = tmp_path / "s.json"
    target.write_text("old")
    with pytest.raises(ValueError):
        write_schedule(target, broken)
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["s.json"]


def test_decimal_durations_give_decimal_times_in_the_file() -> None:
    """F=0.1, B=0.2 (not exact in binary): the engine's sums carry float noise
    (0.30000000000000004), the file holds the decimals (docs/contract.md §4), and it reads
    back as a valid schedule of the same metrics."""
    problem = Problem.create(num_stages=3, num_batches=5, forward=0.1, backward=0.2)
    schedule = baseline("1f1b", problem)
    assert any(len(repr(op.end)) > 14 for op in schedule.ops())  # the noise is there
    text = dumps_schedule(schedule)
    data = json.loads(text)
    times = [op[key] for op in data["ops"] for key in ("start", "end")]
    assert all(len(repr(t)) <= 14 for t in times), max(times, key=lambda t: len(repr(t)))
    assert data["metrics"]["makespan"] == round(schedule.makespan, 12)
    back, _ = schedule_from_dict(data)
    assert validate(back) == []
    assert compute_metrics(back).makespan == pytest.approx(schedule.makespan, rel=1e-12)
