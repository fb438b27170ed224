"""Activation memory over time: one step line per device and the memory limit dashed; beyond
:data:`MAX_LINES` devices (where lines become a tangle) a heat map instead, one row per device
like the Gantt chart's, shaded from 0 to the limit (or the peak) and red above the limit."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection

from ppopt.limits import per_device
from ppopt.metrics import memory_profile
from ppopt.schedule import Schedule
from ppopt.tasks import device_name
from ppopt.viz.gantt import gantt_size, new_axes, style_time_axis

MEMORY_PANEL_HEIGHT = 2.4  # inches of a memory panel
MAX_LINES = 8  # devices drawn as lines; more are a heat map
HEAT_MAP = "Blues"
OVER_LIMIT = "#d62728"


def plot_memory(
    schedule: Schedule,
    ax: Axes | None = None,
    limit: float | Sequence[float] | None = None,
    time_unit: str | None = None,
) -> Axes:
    """Draw each device's activation memory over time on ``ax`` (a new figure if not given).

    ``limit`` is an absolute limit, one number or one per device (e.g. what
    ``ppopt.metrics.resolve_limit`` returns); it is drawn dashed. The time axis matches the
    Gantt chart's.
    """
    p = schedule.problem.num_devices
    limits = _per_device_limit(limit, p)
    if ax is None:
        ax = new_axes(gantt_size(schedule)[0], memory_panel_height(p))
    if p > MAX_LINES:
        return _plot_heatmap(schedule, ax, limits, time_unit)
    end = schedule.makespan
    top = 0.0
    for device in range(p):
        times, levels = memory_profile(schedule, device)
        peak = max(levels)
        top = max(top, peak)
        ax.step(
            [*times, max(end, times[-1])],
            [*levels, levels[-1]],
            where="post",
            color=device_color(device, p),
            linewidth=1.2,
            label=f"{device_name(device)} (peak {peak:g})",
        )
    if limits is not None:
        top = max(top, *limits)
        _draw_limit(ax, limits)
    ax.set_ylim(0.0, top * 1.1 if top > 0 else 1.0)
    ax.set_ylabel("activation memory")
    style_time_axis(ax, end, time_unit)
    ax.grid(axis="y", color="0.9", linewidth=0.6)
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.005, 1.0),
        fontsize=8 if p <= 8 else 7,
        frameon=False,
        ncols=math.ceil(p / 16),
    )
    return ax


def memory_panel_height(num_devices: int) -> float:
    """Inches of a memory panel: the lines' fixed height, or a heat map's rows (0.12 in
    each, up to 6 in)."""
    if num_devices <= MAX_LINES:
        return MEMORY_PANEL_HEIGHT
    return min(max(MEMORY_PANEL_HEIGHT, 0.12 * num_devices), 6.0)


def _plot_heatmap(
    schedule: Schedule, ax: Axes, limits: tuple[float, ...] | None, time_unit: str | None
) -> Axes:
    """One row per device (device 1 on top), each memory level a cell from its time to the
    next change, coloured by its share of the scale: the limit when there is one (levels
    above it red), else the largest peak. Rows are labelled with their peak."""
    p = schedule.problem.num_devices
    cells, values, peaks = [], [], []
    for device in range(p):
        times, levels = memory_profile(schedule, device)
        ends = [*times[1:], max(schedule.makespan, times[-1])]
        peaks.append(max(levels))
        for start, end, level in zip(times, ends, levels, strict=True):
            if end > start:
                cells.append([(start, device - 0.5), (start, device + 0.5),
                              (end, device + 0.5), (end, device - 0.5)])  # fmt: skip
                values.append(level)
    top = max(limits) if limits is not None else max(peaks)
    cmap = colormaps[HEAT_MAP].with_extremes(over=OVER_LIMIT)
    heat = PolyCollection(cells, array=np.array(values), cmap=cmap, edgecolors="none")
    heat.set_clim(0.0, top if top > 0 else 1.0)
    ax.add_collection(heat, autolim=False)
    ax.set_ylim(p - 0.5, -0.5)
    ax.set_yticks(range(p), [f"{device_name(d)} (peak {peaks[d]:g})" for d in range(p)])
    ax.tick_params(axis="y", length=0, labelsize=7 if p <= 16 else 5)
    ax.set_ylabel("activation memory")
    style_time_axis(ax, schedule.makespan, time_unit)
    scale = "limit" if limits is not None else "peak"
    bar = ax.figure.colorbar(
        heat, ax=ax, pad=0.01, fraction=0.03, extend="max" if limits else "neither"
    )
    bar.set_label(f"memory (0 to the {scale} {top:g})", fontsize=7)
    bar.ax.tick_params(labelsize=7)
    return ax


def device_color(device: int, num_devices: int) -> tuple[float, float, float, float]:
    """A device's line colour: a viridis ramp from the first device to the last."""
    share = device / (num_devices - 1) if num_devices > 1 else 0.0
    return colormaps["viridis"](0.9 * share)


def _per_device_limit(
    limit: float | Sequence[float] | None, num_devices: int
) -> tuple[float, ...] | None:
    """The limit as one value per device; a list of the wrong length is an error."""
    if limit is None:
        return None
    values = (limit,) if isinstance(limit, int | float) else limit
    return per_device("memory limit", values, num_devices)


def _draw_limit(ax: Axes, limits: tuple[float, ...]) -> None:
    """One dashed black line for a common limit, else one dashed line per device colour."""
    if len(set(limits)) == 1:
        ax.axhline(
            limits[0], color="black", linestyle="--", linewidth=1.0, label=f"limit {limits[0]:g}"
        )
        return
    p = len(limits)
    for device, value in enumerate(limits):
        ax.axhline(
            value,
            color=device_color(device, p),
            linestyle="--",
            linewidth=1.0,
            label="limit (per device)" if device == 0 else None,
        )
