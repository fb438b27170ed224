"""The comparison figure: a Gantt block (+ memory panel) per schedule on one time axis."""

from __future__ import annotations

import pytest

from ppopt.baselines import baseline
from ppopt.schedule import Schedule
from ppopt.viz import plot_comparison
from ppopt.viz.labels import chart_labels


def test_blocks_share_the_time_axis_of_the_longest(split: Schedule) -> None:
    classic = baseline("1f1b", split.problem.unsplit()).renamed("1f1b classic")
    fig = plot_comparison([split, classic], limit=4)
    gantt1, memory1, gantt2, memory2 = fig.axes
    assert gantt1.get_title().startswith("1f1b: makespan 30, bubble rate 20.0%")
    assert gantt2.get_title().startswith("1f1b classic: makespan 33, bubble rate 27.3%")
    assert [ax.get_ylabel() for ax in (memory1, memory2)] == ["activation memory"] * 2
    for ax in fig.axes:
        assert ax.get_xlim() == (0.0, 33.0 * 1.01)  # sharex: the longest makespan for all
    assert gantt1.get_shared_x_axes().joined(gantt1, memory2)
    assert [ax.get_xlabel() for ax in fig.axes] == ["", "", "", "time"]
    labels = chart_labels(gantt1)
    assert labels is not None and len(labels.texts) == len(list(split.ops()))


def test_without_memory_only_gantt_blocks(plain: Schedule, split: Schedule) -> None:
    fig = plot_comparison([plain, split], show_memory=False, time_unit="ms")
    assert len(fig.axes) == 2
    assert fig.axes[-1].get_xlabel() == "time (ms)"
    assert all("bubble rate" in ax.get_title() for ax in fig.axes)


def test_size_is_sane(plain: Schedule) -> None:
    width, height = plot_comparison([plain] * 8).get_size_inches()
    assert 9 <= width <= 26 and height <= 40


def test_nothing_to_compare_is_an_error() -> None:
    with pytest.raises(ValueError, match="no schedules"):
        plot_comparison([])


def test_one_legend_for_blocks_of_the_same_kinds(split: Schedule) -> None:
    """Five schedules of one problem: the kinds' legend once, on the first block; the memory
    panels keep theirs (their peaks differ)."""
    names = ("1f1b", "zb-h1", "gpipe", "1f1b", "zb-h1")
    fig = plot_comparison([baseline(n, split.problem).renamed(f"{n} {k}") for k, n in
                           enumerate(names)], limit=8)  # fmt: skip
    gantts, memories = fig.axes[0::2], fig.axes[1::2]
    assert [ax.get_legend() is not None for ax in gantts] == [True, False, False, False, False]
    assert all(ax.get_legend() is not None for ax in memories)


def test_blocks_of_other_kinds_keep_their_legend(plain: Schedule, split: Schedule) -> None:
    fig = plot_comparison([plain, split], show_memory=False)
    assert all(ax.get_legend() is not None for ax in fig.axes)  # B full vs B + W
