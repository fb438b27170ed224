"""Memory limits (ppopt/limits.py and Problem.memory_caps): the ``Nx`` unit's closed form
against the 1F1B baseline's measured peak, per-device expansion, and the tolerances."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from strategies import problems

from ppopt.baselines import baseline
from ppopt.errors import ProblemError
from ppopt.limits import TIDY_ULPS, MemoryLimit, fits, meets_bound, per_device, tidy, within
from ppopt.metrics import peak_memory
from ppopt.problem import Problem


@settings(max_examples=150, deadline=None)
@given(problems(placements=("interleaved", "vshape", "explicit")))
def test_reference_peak_is_the_1f1b_baselines_measured_peak(problem: Problem) -> None:
    """Two independent computations of the unit of ``Nx``: the closed form min(p-d, m) x the
    device's activation, and the engine-timed 1F1B schedule of the merged problem."""
    measured = max(peak_memory(baseline("1f1b", problem.merged_chunks())))
    assert problem.reference_peak() == pytest.approx(measured, rel=1e-12, abs=1e-12)


def test_memory_caps_follow_the_limit() -> None:
    problem = Problem.create(4, 8, activation=[1, 2, 1, 1])
    assert problem.memory_caps == (6.0,) * 4  # 1F1B: device 1 holds 3 x 2
    assert problem.with_limit("2x").memory_caps == (12.0,) * 4
    assert problem.with_limit([1, 2, 3, 4]).memory_caps == (1.0, 2.0, 3.0, 4.0)
    assert problem.with_limit(5).memory_caps == (5.0,) * 4
    assert problem.with_limit("none").memory_caps is None


def test_per_device_and_tolerances() -> None:
    assert per_device("k", [2.0], 3) == (2.0, 2.0, 2.0)
    with pytest.raises(ProblemError, match=r"^k: expected 1 or 3 values \(one per device\)"):
        per_device("k", [1.0, 2.0], 3)
    assert within(1.0 + 1e-12, 1.0) and not within(1.0 + 1e-6, 1.0)
    assert fits([1.0, 2.0], None) and fits([1.0, 2.0], [1.0, 2.0]) and not fits([3.0], [2.0])
    assert meets_bound(10.0, 10.0) and not meets_bound(10.0 + 1e-9, 10.0)


def test_limit_is_parsed_as_the_config_writes_it() -> None:
    assert MemoryLimit.parse("2x") == MemoryLimit(factor=2.0)
    assert MemoryLimit.parse("1 2") == MemoryLimit(values=(1.0, 2.0))
    assert MemoryLimit.parse(None).is_none and MemoryLimit.parse("none").is_none
    assert MemoryLimit(factor=1.5).to_config() == "1.5x"


@pytest.mark.parametrize(
    ("raw", "factor", "values"),
    [
        (None, None, None),  # nothing given
        ("none", None, None),  # spelt out
        ("2x", 2.0, None),  # ZB-2p
        (" 1.5X ", 1.5, None),  # case and spaces
        (3, None, (3.0,)),  # absolute, every device
        ([1, 2.5], None, (1.0, 2.5)),  # absolute per device
        ("1, 2", None, (1.0, 2.0)),  # a list typed on the command line
        ("0.5x", 0.5, None),  # V-Half's budget
        ("1/3x", 1 / 3, None),  # V-Min's budget, exactly a third (round trip: repr)
    ],
)
def test_memory_limit_parse(raw: object, factor: float | None, values: object) -> None:
    limit = MemoryLimit.parse(raw)
    assert (limit.factor, limit.values) == (factor, values)
    assert MemoryLimit.parse(limit.to_config()) == limit


def test_a_third_holds_what_a_third_holds_where_0_33x_does_not() -> None:
    """p = 3: 1F1B's peak is 3 micro-batches, a third is one; 0.33x is 0.99, below one."""
    problem = Problem.create(3, 6)
    assert problem.with_limit("1/3x").memory_caps == (1.0,) * 3
    assert problem.with_limit("0.33x").memory_caps == pytest.approx((0.99,) * 3)
    with pytest.raises(ProblemError, match="denominator"):
        MemoryLimit.parse("1/0x")


@pytest.mark.parametrize(
    ("problem", "raw", "expected"),
    [
        (Problem.create(4, 8), "1x", (4.0,) * 4),  # 1F1B peak on device 0 = p = 4
        (Problem.create(4, 8), "2x", (8.0,) * 4),  # ZB-2p
        (Problem.create(4, 2), "1x", (2.0,) * 4),  # m < p: the peak is m
        (Problem.create(4, 8), 5, (5.0,) * 4),  # absolute, every device
        (Problem.create(4, 8), [1, 2, 3, 4], (1.0, 2.0, 3.0, 4.0)),  # absolute per device
        (Problem.create(4, 8), "none", None),  # unchecked
        # chunks merged per device: device 0 holds stages 0, 2 (1 + 3 = 4), device 1 holds
        # 1, 3 (2 + 4 = 6); merged 1F1B peaks 2 * 4 = 8 and 1 * 6 = 6: the unit is the max, 8
        (
            Problem.create(2, 4, num_chunks=2, activation=[1, 2, 3, 4]),
            "1x",
            (8.0, 8.0),
        ),
        # V-shape: stages (0, 3) and (1, 2) -> 5 each; device 0 holds 2 micro-batches: 10
        (
            Problem.create(2, 4, num_chunks=2, placement="vshape", activation=[1, 2, 3, 4]),
            "1.5x",
            (15.0, 15.0),
        ),
    ],
)
def test_memory_caps_resolve_every_form_of_limit(
    problem: Problem, raw: object, expected: tuple[float, ...] | None
) -> None:
    limited = problem.with_limit(MemoryLimit.parse(raw))
    assert limited.memory_caps == expected
    assert problem.with_limit(raw).memory_caps == expected


def test_tidy_writes_decimal_sums_as_decimals() -> None:
    """The float noise of decimal sums is not written: 0.1 + 0.2 is written 0.3, ten 0.1
    steps 1.0, and what is not a float (ints, bools, strings, None) is left as it is."""
    assert tidy(0.1 + 0.2) == 0.3 and 0.1 + 0.2 != 0.3
    assert tidy(sum([0.1] * 10)) == 1.0
    assert tidy({"a": [0.1 + 0.2, 3, True, None, "x"]}) == {"a": [0.3, 3, True, None, "x"]}


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_tidy_moves_a_float_by_at_most_4_ulps_and_never_lengthens_it(value: float) -> None:
    tidied = tidy(value)
    assert isinstance(tidied, float)
    assert abs(tidied - value) <= 4 * math.ulp(value)
    assert len(repr(tidied)) <= len(repr(value))


def test_tidy_keeps_digits_that_mean_something() -> None:
    """A duration given with 16 digits is not cut to 12 (that would move it by 1e-11, which
    the validator would see); noise of a few ulps is removed at any size."""
    for value in (0.6216899801925109, 12.111759920770044):
        assert tidy(value) != float(f"{value:.12g}")
        assert abs(tidy(value) - value) <= 4 * math.ulp(value)
    assert tidy(1e7 + 0.1 + 0.2) == 10000000.3


@given(st.floats(min_value=1e-9, max_value=1e9, allow_nan=False))
@example(3.7052266664574677e-06)  # rounded to 16 digits, then 15 on the way back (found)
def test_tidy_is_idempotent_and_within_its_ulps(value: float) -> None:
    """A number read back from a file and written again does not change (a sweep's rerun
    rewrites its finished rows; double rounding once changed 0.001247808002517559 to
    0.00124780800251756 there), and it stays within TIDY_ULPS ulps of the float."""
    once = tidy(value)
    assert tidy(once) == once
    assert abs(once - value) <= TIDY_ULPS * math.ulp(value)
