"""Activation memory over time: one step line per device, the memory limit dashed."""

from __future__ import annotations

import math
from collections.abc import Sequence

from matplotlib import colormaps
from matplotlib.axes import Axes

from ppopt.limits import per_device
from ppopt.metrics import memory_profile
from ppopt.schedule import Schedule
from ppopt.viz.gantt import gantt_size, new_axes, style_time_axis

MEMORY_PANEL_HEIGHT = 2.4  # inches of a memory panel


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
        ax = new_axes(gantt_size(schedule)[0], MEMORY_PANEL_HEIGHT)
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
            label=f"device {device + 1} (peak {peak:g})",
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
