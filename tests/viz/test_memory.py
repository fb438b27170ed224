"""The memory panel: one step line per device matching the closed-form 1F1B peaks, the limit."""

from __future__ import annotations

import pytest
from matplotlib.colors import to_rgba
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
    assert ax.get_xlim() == (0.0, 33.0 * 1.01)  # 1 % after the end


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


def heat_cells(ax):
    """The heat map's cells as (device row, start, end, level)."""
    (heat,) = [c for c in ax.collections if c.get_array() is not None]
    out = []
    for path, level in zip(heat.get_paths(), heat.get_array(), strict=True):
        xs, ys = path.vertices[:, 0], path.vertices[:, 1]
        out.append((round(float(ys.mean())), float(xs.min()), float(xs.max()), float(level)))
    return heat, out


def test_many_devices_are_a_heat_map_with_the_1f1b_peaks() -> None:
    """p=16 > 8: no lines; one row per device, its cells the memory profile (the level of
    each change until the next), rows labelled with the 1F1B peak min(p - d, m)."""
    p, m = 16, 32
    schedule = baseline("1f1b", Problem.create(p, m))
    ax = plot_memory(schedule)
    assert device_lines(ax) == []
    heat, cells = heat_cells(ax)
    for d in range(p):
        times, levels = memory_profile(schedule, d)
        mine = sorted(c[1:] for c in cells if c[0] == d)
        expected = [
            (start, end, level)
            for start, end, level in zip(
                times, [*times[1:], schedule.makespan], levels, strict=True
            )
            if end > start
        ]
        assert mine == expected
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert ticks == [f"device {d + 1} (peak {min(p - d, m)})" for d in range(p)]
    assert heat.get_clim() == (0.0, float(p))  # no limit: 0 to the largest peak


def test_heat_map_marks_levels_above_the_limit() -> None:
    schedule = baseline("1f1b", Problem.create(12, 24))
    ax = plot_memory(schedule, limit=6)
    heat, cells = heat_cells(ax)
    assert heat.get_clim() == (0.0, 6.0)
    assert max(level for *_, level in cells) == 12  # device 1 holds 12 > 6: drawn "over"
    assert heat.cmap.get_over() == pytest.approx(to_rgba("#d62728"))
