"""The memory panel: one step line per device matching the closed-form 1F1B peaks, the limit."""

from __future__ import annotations

import pytest
from matplotlib.lines import Line2D

from ppopt.baselines import baseline
from ppopt.metrics import memory_profile
from ppopt.problem import Problem
from ppopt.schedule import Schedule
from ppopt.viz import plot_memory


def device_lines(ax) -> list[Line2D]:
    return [line for line in ax.get_lines() if line.get_label().startswith("device")]


def limit_lines(ax) -> list[Line2D]:
    return [line for line in ax.get_lines() if line.get_linestyle() == "--"]


@pytest.mark.parametrize(("p", "m"), [(4, 8), (4, 2), (6, 6)])
def test_one_line_per_device_with_the_1f1b_peak(p: int, m: int) -> None:
    schedule = baseline("1f1b", Problem.create(p, m))
    ax = plot_memory(schedule)
    lines = device_lines(ax)
    assert [line.get_label().split(" (")[0] for line in lines] == [
        f"device {d + 1}" for d in range(p)
    ]
    for d, line in enumerate(lines):
        # 1F1B keeps min(p - d, m) micro-batches in flight on device d (unit activations)
        assert max(line.get_ydata()) == min(p - d, m)
        assert line.get_label() == f"device {d + 1} (peak {min(p - d, m)})"
        assert line.get_drawstyle() == "steps-post"
        assert line.get_xdata()[-1] == schedule.makespan
        assert line.get_ydata()[-1] == 0  # everything freed at the end


def test_step_line_follows_the_profile(split: Schedule) -> None:
    ax = plot_memory(split)
    for d, line in enumerate(device_lines(ax)):
        times, levels = memory_profile(split, d)
        assert list(line.get_xdata()[:-1]) == times
        assert list(line.get_ydata()[:-1]) == levels


def test_axes_labels_and_time_axis(plain: Schedule) -> None:
    ax = plot_memory(plain, time_unit="ms")
    assert ax.get_ylabel() == "activation memory"
    assert ax.get_xlabel() == "time (ms)"
    assert ax.get_xlim() == (0.0, 33.0)


def test_scalar_limit_is_one_dashed_line(plain: Schedule) -> None:
    ax = plot_memory(plain, limit=5)
    (line,) = limit_lines(ax)
    assert set(line.get_ydata()) == {5}
    assert line.get_label() == "limit 5"
    assert ax.get_ylim()[1] > 5


def test_per_device_limit_is_a_dashed_line_each(plain: Schedule) -> None:
    ax = plot_memory(plain, limit=[4, 3, 2, 6])
    assert sorted(next(iter(set(line.get_ydata()))) for line in limit_lines(ax)) == [2, 3, 4, 6]
    assert len(limit_lines(plot_memory(plain, limit=[3]))) == 1


def test_no_limit_no_dashed_line(plain: Schedule) -> None:
    assert limit_lines(plot_memory(plain)) == []


def test_limit_of_wrong_length_is_refused(plain: Schedule) -> None:
    with pytest.raises(ValueError, match="expected 1 or 4 values"):
        plot_memory(plain, limit=[1, 2])
