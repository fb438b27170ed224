"""The independent validator: valid schedules pass; each kind of damage is reported in words.

Most cases start from 1F1B on the seed problem (p=4, m=8, f=1, b=2), whose times are:
device 1: F1..F4 at 0..4, B1@s1 10-12, ..., B8@s1 31-33; device 2: F1@s2 1-2, F2@s2 2-3, ...;
device 4: F1@s4 3-4, B1@s4 4-6, F2@s4 6-7, ...
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import problems, timed

from ppopt.baselines import baseline
from ppopt.errors import ScheduleInvalid
from ppopt.problem import Problem
from ppopt.schedule import Op, Schedule
from ppopt.tasks import Task
from ppopt.timeline import compute_timeline
from ppopt.validate import assert_valid, check_tight, memory_peaks, validate


@pytest.fixture
def seed_1f1b(seed_problem: Problem) -> Schedule:
    return baseline("1f1b", seed_problem)


def _rows(schedule: Schedule) -> list[list[Op]]:
    return [list(row) for row in schedule.device_ops]


def _rebuilt(schedule: Schedule, rows: list[list[Op]], problem: Problem | None = None) -> Schedule:
    return Schedule(problem or schedule.problem, schedule.name, tuple(tuple(r) for r in rows))


def _find(rows: list[list[Op]], label: str) -> tuple[int, int]:
    for d, row in enumerate(rows):
        for k, op in enumerate(row):
            if op.task.label() == label:
                return d, k
    raise LookupError(label)


def _edit(schedule: Schedule, label: str, **fields: object) -> Schedule:
    """The schedule with one op's fields replaced."""
    rows = _rows(schedule)
    d, k = _find(rows, label)
    rows[d][k] = rows[d][k]._replace(**fields)
    return _rebuilt(schedule, rows)


# ----------------------------------------------------------------------------- valid input


def test_engine_schedule_is_valid_and_tight(seed_1f1b: Schedule) -> None:
    assert validate(seed_1f1b) == []
    assert check_tight(seed_1f1b) == []
    assert_valid(seed_1f1b, limit=(4, 3, 2, 1), tight=True)


def test_frees_come_before_allocations_at_one_instant(seed_1f1b: Schedule) -> None:
    """On device 4, B1@s4 ends at 6 exactly when F2@s4 starts: the peak stays 1, not 2."""
    rows = _rows(seed_1f1b)
    b1, f2 = rows[3][1], rows[3][2]
    assert (b1.task.label(), f2.task.label(), b1.end) == ("B1@s4", "F2@s4", f2.start)
    assert memory_peaks(seed_1f1b) == (4.0, 3.0, 2.0, 1.0)
    assert validate(seed_1f1b, limit=(4, 3, 2, 1)) == []


def test_tiny_float_noise_is_not_a_violation(seed_1f1b: Schedule) -> None:
    rows = [
        [op._replace(start=op.start * (1 + 1e-13), end=op.end * (1 - 1e-13)) for op in row]
        for row in _rows(seed_1f1b)
    ]
    noisy = _rebuilt(seed_1f1b, rows)
    assert validate(noisy, limit=(4,)) == []
    assert check_tight(noisy) == []


# ----------------------------------------------------------------------------- damage


def test_wrong_duration(seed_1f1b: Schedule) -> None:
    broken = _edit(seed_1f1b, "F2@s2", start=2.5)
    assert validate(broken) == ["device 2: F2@s2 lasts 0.5 (2.5 to 3.0), expected 1.0"]


def test_shifted_earlier_breaks_dependency_and_device(seed_1f1b: Schedule) -> None:
    broken = _edit(seed_1f1b, "F2@s2", start=1.5, end=2.5)
    assert sorted(validate(broken)) == [
        "device 2: F2@s2 starts at 1.5 before its dependency F2@s1 ends at 2.0",
        "device 2: F2@s2 starts at 1.5 while F1@s2 runs until 2.0 (overlap)",
    ]


def test_p2p_latency_is_required_across_devices(seed_1f1b: Schedule) -> None:
    """The same times checked against the problem with p2p 0.5 break every device crossing."""
    slow = Problem.create(4, 8, forward=1.0, backward=2.0, p2p=0.5)
    violations = validate(_rebuilt(seed_1f1b, _rows(seed_1f1b), slow))
    assert "device 2: F1@s2 starts at 1.0 before its dependency F1@s1 ends at 1.0 + p2p 0.5" in (
        violations
    )
    assert "device 3: B1@s3 starts at 6.0 before its dependency B1@s4 ends at 6.0 + p2p 0.5" in (
        violations
    )
    # the turn B1@s4 after F1@s4 is on one device: no latency, no violation
    assert not any("B1@s4 starts" in line for line in violations)


def test_negative_start(seed_1f1b: Schedule) -> None:
    broken = _edit(seed_1f1b, "F1@s1", start=-1.0, end=0.0)
    assert validate(broken) == ["device 1: F1@s1 starts at -1.0, before time 0"]


def test_task_on_the_wrong_device(seed_1f1b: Schedule) -> None:
    rows = _rows(seed_1f1b)
    moved = rows[0].pop()  # B8@s1, 31-33, after B8@s2 (29-31) on device 2
    rows[1].append(moved._replace(device=1))
    assert validate(_rebuilt(seed_1f1b, rows)) == [
        "device 2: B8@s1 runs here but stage 1 is placed on device 1"
    ]


def test_op_device_field_disagrees_with_its_row(seed_1f1b: Schedule) -> None:
    broken = _edit(seed_1f1b, "F1@s3", device=3)
    assert validate(broken) == ["device 3: F1@s3 is in device 3's row but says device 4"]


def test_dropped_task(seed_1f1b: Schedule) -> None:
    rows = _rows(seed_1f1b)
    d, k = _find(rows, "F8@s4")
    del rows[d][k]
    assert validate(_rebuilt(seed_1f1b, rows)) == ["F8@s4 is in no device's ops"]


def test_duplicated_task(seed_1f1b: Schedule) -> None:
    rows = _rows(seed_1f1b)
    rows[0].append(rows[0][-1]._replace(start=33.0, end=35.0))
    assert validate(_rebuilt(seed_1f1b, rows)) == ["device 1: B8@s1 appears more than once"]


def test_ops_out_of_time_order(seed_1f1b: Schedule) -> None:
    rows = _rows(seed_1f1b)
    rows[0][0], rows[0][1] = rows[0][1], rows[0][0]
    assert validate(_rebuilt(seed_1f1b, rows)) == [
        "device 1: F1@s1 is listed after F2@s1 but starts earlier (0.0 < 1.0): "
        "ops out of time order"
    ]


def test_overlap_on_a_device(seed_1f1b: Schedule) -> None:
    broken = _edit(seed_1f1b, "F2@s1", start=0.5, end=1.5)
    assert validate(broken) == [
        "device 1: F2@s1 starts at 0.5 while F1@s1 runs until 1.0 (overlap)"
    ]


def test_foreign_task(seed_1f1b: Schedule) -> None:
    rows = _rows(seed_1f1b)
    rows[0].append(Op(0, "W", 0, 0, 33.0, 34.0))  # no W in an unsplit problem
    assert validate(_rebuilt(seed_1f1b, rows)) == ["device 1: W1@s1 is not a task of this problem"]


def test_non_finite_time(seed_1f1b: Schedule) -> None:
    broken = _edit(seed_1f1b, "B8@s1", start=math.nan)
    assert validate(broken) == ["device 1: B8@s1 has a non-finite time (nan to 33.0)"]


# ----------------------------------------------------------------------------- memory


def test_memory_over_a_single_limit(seed_1f1b: Schedule) -> None:
    assert validate(seed_1f1b, limit=(3,)) == [
        "device 1: memory 4 at time 3.0 (when F4@s1 starts) is above the limit 3; peak 4"
    ]


def test_memory_over_a_per_device_limit(seed_1f1b: Schedule) -> None:
    assert validate(seed_1f1b, limit=(4, 3, 2, 0.5)) == [
        "device 4: memory 1 at time 3.0 (when F1@s4 starts) is above the limit 0.5; peak 1"
    ]


def test_memory_limit_of_the_wrong_length(seed_1f1b: Schedule) -> None:
    with pytest.raises(ValueError, match="memory limit has 2 values, problem has 4 devices"):
        validate(seed_1f1b, limit=(4, 4))


def test_split_backward_keeps_the_retained_part_until_w() -> None:
    """One device, activation 3 of which W needs 1; order F1 B1 F2 W1 B2 W2, all of length 1:
    3 at 0, 1 after B1 frees 2 at 2, then F2 adds 3 at 2 (after the free): peak 4."""
    problem = Problem.create(1, 2, forward=1, backward=1, weight=1, activation=3, retained=1)
    order = [
        Task("F", 0, 0),
        Task("B", 0, 0),
        Task("F", 0, 1),
        Task("W", 0, 0),
        Task("B", 0, 1),
        Task("W", 0, 1),
    ]
    schedule = compute_timeline(problem, [order])
    assert memory_peaks(schedule) == (4.0,)
    assert validate(schedule, limit=(4,)) == []
    assert validate(schedule, limit=(3.9,)) == [
        "device 1: memory 4 at time 2.0 (when F2@s1 starts) is above the limit 3.9; peak 4"
    ]


# ----------------------------------------------------------------------------- tightness


def test_late_but_valid_op_is_not_tight(seed_1f1b: Schedule) -> None:
    late = _edit(seed_1f1b, "B8@s1", start=32.0, end=34.0)
    assert validate(late) == []
    assert check_tight(late) == [
        "device 1: B8@s1 starts at 32.0 but could start at 31.0 (dependency B8@s2 ends at 31.0)"
    ]
    idle = _edit(seed_1f1b, "F4@s1", start=3.5, end=4.5)
    assert validate(idle) == []
    assert check_tight(idle) == [
        "device 1: F4@s1 starts at 3.5 but could start at 3.0 (device free at 3.0)"
    ]
    with pytest.raises(ScheduleInvalid):
        assert_valid(idle, tight=True)
    assert_valid(idle)


def test_assert_valid_lists_every_violation(seed_1f1b: Schedule) -> None:
    broken = _edit(seed_1f1b, "F2@s2", start=1.5, end=2.5)
    with pytest.raises(ScheduleInvalid) as info:
        assert_valid(broken, limit=(3,))
    assert isinstance(info.value, ValueError)
    assert info.value.violations == validate(broken, limit=(3,))
    assert len(info.value.violations) == 3
    for line in info.value.violations:
        assert line in str(info.value)


# ----------------------------------------------------------------------------- properties


@given(schedule=timed(), data=st.data())
def test_any_dropped_task_is_reported(schedule: Schedule, data: st.DataObject) -> None:
    rows = _rows(schedule)
    d = data.draw(st.sampled_from([d for d, row in enumerate(rows) if row]))
    k = data.draw(st.integers(0, len(rows[d]) - 1))
    dropped = rows[d].pop(k)
    assert f"{dropped.task.label()} is in no device's ops" in validate(_rebuilt(schedule, rows))


@given(schedule=timed(), data=st.data())
def test_any_tight_op_moved_earlier_is_reported(schedule: Schedule, data: st.DataObject) -> None:
    """A tight op is held back by time 0, its device or a dependency: moving it earlier by any
    visible amount breaks one of those, and the violation names it."""
    rows = _rows(schedule)
    d = data.draw(st.sampled_from([d for d, row in enumerate(rows) if row]))
    k = data.draw(st.integers(0, len(rows[d]) - 1))
    shift = data.draw(st.floats(1e-6, 10.0))
    op = rows[d][k]
    rows[d][k] = op._replace(start=op.start - shift, end=op.end - shift)
    violations = validate(_rebuilt(schedule, rows))
    assert any(op.task.label() in line for line in violations), violations


@given(schedule=timed(problems(max_devices=4, max_microbatches=6)), data=st.data())
def test_memory_limit_is_checked_per_device(schedule: Schedule, data: st.DataObject) -> None:
    """At the peaks nothing is reported; just below one device's peak only that device is."""
    peaks = memory_peaks(schedule)
    assert validate(schedule, limit=peaks) == []
    d = data.draw(st.integers(0, len(peaks) - 1))
    lower = tuple(peak * (0.99 if e == d else 1.0) for e, peak in enumerate(peaks))
    reported = [line for line in validate(schedule, limit=lower) if "memory" in line]
    assert peaks[d] > 0  # every device runs forwards and every activation is positive
    assert len(reported) == 1 and reported[0].startswith(f"device {d + 1}: memory "), reported


# --------------------------------------------------- tolerance at large times (issue 21 #8)


def _shifted(schedule: Schedule, by: float) -> Schedule:
    rows = [
        [op._replace(start=op.start + by, end=op.end + by) for op in row] for row in _rows(schedule)
    ]
    return _rebuilt(schedule, rows)


@pytest.mark.parametrize("by", [1e7, 1e12])
def test_a_shifted_schedule_stays_valid(seed_1f1b: Schedule, by: float) -> None:
    """Every time moved later by the same amount: late, not tight, but valid."""
    assert validate(_shifted(seed_1f1b, by)) == []


def test_a_500_unit_error_at_1e12_is_reported(seed_1f1b: Schedule) -> None:
    """A slack of 1e-9 * |t| was 1000 units at 1e12 and hid this."""
    shifted = _shifted(seed_1f1b, 1e12)
    op = next(op for op in shifted.device_ops[1] if op.task.label() == "F2@s2")
    broken = _edit(shifted, "F2@s2", start=op.start - 500, end=op.end - 500)
    assert any("F2@s2 starts at" in v and "before its dependency" in v for v in validate(broken))


def test_a_half_percent_duration_error_at_1e7_is_reported(seed_1f1b: Schedule) -> None:
    """F2@s2 lasting 1.005 instead of 1 at time 1e7 (the old slack there was 0.01)."""
    shifted = _shifted(seed_1f1b, 1e7)
    op = next(op for op in shifted.device_ops[1] if op.task.label() == "F2@s2")
    broken = _edit(shifted, "F2@s2", end=op.end + 0.005)
    assert any("F2@s2 lasts" in v and "expected 1.0" in v for v in validate(broken))
