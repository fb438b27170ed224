"""Several schedules in one figure: a Gantt block each (and its memory panel) on one time axis."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ppopt.schedule import Schedule
from ppopt.view import View
from ppopt.viz.gantt import gantt_height, gantt_size, plot_gantt, style_time_axis
from ppopt.viz.memory import memory_panel_height, plot_memory

MAX_HEIGHT = 40.0  # inches; taller stacks are scaled down to this


def plot_comparison(
    schedules: Sequence[Schedule],
    limit: float | Sequence[float] | None = None,
    show_memory: bool = True,
    time_unit: str | None = None,
    view: View | None = None,
) -> Figure:
    """One figure: per schedule a Gantt block titled with its name, makespan and bubble rate,
    followed by its memory panel when ``show_memory``; every panel shares the time axis so
    the makespans compare at a glance. ``limit`` is the absolute memory limit to draw;
    ``view`` a time window and a range of devices to show (labels adapt to the zoom).
    """
    if not schedules:
        raise ValueError("plot_comparison: no schedules to draw")
    heights: list[float] = []
    for schedule in schedules:
        heights.append(gantt_height(schedule.problem.num_devices))
        if show_memory:
            heights.append(memory_panel_height(schedule.problem.num_devices))
    width = max(gantt_size(schedule)[0] for schedule in schedules)
    total = sum(heights) + 0.3
    fig = Figure(figsize=(width, min(total, MAX_HEIGHT)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(heights), 1, sharex=True, height_ratios=heights, squeeze=False)[:, 0]
    panels = iter(axes)
    for schedule in schedules:
        plot_gantt(schedule, ax=next(panels), time_unit=time_unit)
        if show_memory:
            plot_memory(schedule, ax=next(panels), limit=limit, time_unit=time_unit)
    _share_legends(list(axes))
    end = max(schedule.makespan for schedule in schedules)
    for ax in axes:
        style_time_axis(ax, end, time_unit)  # the longest makespan sets the shared axis
        ax.tick_params(axis="x", labelbottom=True)
        if ax is not axes[-1]:
            ax.set_xlabel("")
    if view is not None:
        view.apply(list(axes), end)
    return fig


def _share_legends(axes: Sequence[Axes]) -> None:
    """Keep a legend only where it says something new: a Gantt block whose kinds and chunks
    are those of the block above shows none (memory panels keep theirs: their peaks differ)."""
    seen: list[list[str]] = []
    for ax in axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        entries = [text.get_text() for text in legend.get_texts()]
        if entries and not entries[0].startswith("device") and entries in seen:
            legend.remove()
        else:
            seen.append(entries)
