"""Gantt chart of a schedule: one row per device, one box per task, F/B/W coloured.

Figures are plain :class:`matplotlib.figure.Figure` objects on an Agg canvas, never pyplot
ones: nothing here needs a display or touches pyplot's global state, so plotting is safe in
worker processes and tests. The micro-batch numbers in the boxes follow one rule for the whole
chart, decided at draw time (:mod:`ppopt.viz.labels`): a box is labelled when it holds the
chart's widest number, so a label lies wholly inside its box whatever the figure size, layout
or dpi, and boxes of one size are all labelled or all not.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ppopt.metrics import compute_metrics
from ppopt.problem import Problem
from ppopt.schedule import Op, Schedule
from ppopt.tasks import Task, device_name
from ppopt.viz.labels import BoxLabels, choose_style

#: The colour of each task kind, the same in every picture ppopt draws; told apart also with
#: red-green or blue-yellow colour blindness (tests/viz/test_colors.py; W is Paul Tol's teal).
KIND_COLORS: dict[str, str] = {
    "F": "#3b75af",
    "B": "#e1812c",
    "W": "#44aa99",
    "R": "#aa3377",
    "O": "#333333",  # offload and reload: the thin copy lane under each device's row
    "L": "#cccccc",
}
COPY_LANE = (0.42, 0.16)  # offset below a row's centre and height of its copy lane
CHUNK_LEGEND_COLOR = "#707070"  # neutral grey for the chunk entries of the legend

#: Legend names of the kinds; ``B`` means the full backward on an unsplit problem.
KIND_NAMES = {
    "F": "F forward",
    "B": "B backward (input grad)",
    "W": "W weight grad",
    "O": "O offload (copy lane)",
    "L": "L reload (copy lane)",
    "R": "R recompute",
}

#: Hatch per chunk index (chunk 1 plain); chunks are also shaded lighter.
CHUNK_HATCHES = ("", "///", "...", "xxx", "\\\\\\", "ooo")

ROW_HEIGHT = 0.8  # share of a device row a box fills
TIME_MARGIN = 0.01  # share of the makespan shown after it
STRIP_DEVICES = 8  # charts of more devices get an idle-share strip beside the rows
STRIP_WIDTH = 0.05  # its width, as a share of the chart's


def plot_gantt(
    schedule: Schedule,
    ax: Axes | None = None,
    title: str | None = None,
    time_unit: str | None = None,
) -> Axes:
    """Draw the schedule as a Gantt chart on ``ax`` (a new figure when not given); return it.

    Device 1 is the top row; chunk ``c`` of a device (its ``c``-th stage in
    ``problem.stages_on(device)``) is shaded lighter and hatched. The title names the schedule,
    its makespan and its bubble rate (idle share of device time, docs/contract.md §5).
    """
    problem = schedule.problem
    if ax is None:
        ax = new_axes(*gantt_size(schedule))
    points_per_unit = _points_per_time_unit(ax, schedule.makespan)
    edge = _edge_width(schedule, points_per_unit)
    boxes: list[tuple[float, float, float, float]] = []
    texts: list[str] = []
    text_colors: list[str] = []
    sides = _pair_sides(schedule)
    for (kind, chunk), ops in _groups(schedule).items():
        color = chunk_color(kind, chunk, problem.num_chunks)
        hatch = CHUNK_HATCHES[chunk % len(CHUNK_HATCHES)]
        _draw_boxes(ax, ops, color, hatch, edge, [_extent(op, sides) for op in ops])
        text_color = "black" if _luminance(color) > 0.55 else "white"
        for op in ops:
            low, high = _extent(op, sides)
            boxes.append((op.start, op.end, op.device + low, op.device + high))
            texts.append(str(op.microbatch + 1))
            text_colors.append(text_color)
    box_pt = ROW_HEIGHT * _axes_points(ax)[1] / max(problem.num_devices, 1)
    style = choose_style(list(schedule.ops()), points_per_unit, box_pt, problem.num_microbatches)
    ax.add_artist(BoxLabels(np.array(boxes), texts, text_colors, style))
    _draw_copy_lanes(ax, schedule)
    _style_rows(ax, problem)
    style_time_axis(ax, schedule.makespan, time_unit)
    ax.set_title(title if title is not None else schedule_title(schedule, time_unit), fontsize=10)
    strip = problem.num_devices > STRIP_DEVICES
    if strip:
        _idle_strip(ax, schedule)
    ax.legend(
        handles=legend_handles(problem),
        loc="upper left",
        bbox_to_anchor=(1.005 + (STRIP_WIDTH + 0.01 if strip else 0.0), 1.0),
        fontsize=8,
        frameon=False,
    )
    return ax


def _idle_strip(ax: Axes, schedule: Schedule) -> None:
    """Beside the rows of a large chart, each device's idle share of the makespan as a bar
    (the bubble per device at a glance; the number for the most idle one)."""
    idle = compute_metrics(schedule).idle
    makespan = schedule.makespan or 1.0
    shares = [value / makespan for value in idle]
    strip = ax.inset_axes((1.005, 0.0, STRIP_WIDTH, 1.0), sharey=ax)
    strip.barh(range(len(shares)), shares, height=ROW_HEIGHT, color="0.6")
    strip.set_xlim(0.0, max(max(shares), 1e-9) * 1.15)
    strip.set_title(f"idle\n(max {max(shares):.0%})", fontsize=7)
    strip.tick_params(axis="both", length=0, labelleft=False, labelbottom=False)
    for side in ("top", "right", "bottom"):
        strip.spines[side].set_visible(False)


# ------------------------------------------------------------------------ shared helpers


def new_axes(width: float, height: float) -> Axes:
    """One axes on a new Agg-backed figure of ``width`` x ``height`` inches (no pyplot)."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig.add_subplot()


def gantt_size(schedule: Schedule) -> tuple[float, float]:
    """Figure size in inches, within sane bounds: taller with more devices, wider with more
    typical (median-length) boxes fitting in the makespan, so boxes keep a readable width.
    """
    durations = sorted(op.end - op.start for op in schedule.ops())
    slots = schedule.makespan / durations[len(durations) // 2] if durations else 0.0
    width = min(max(4.0 + 0.12 * slots, 9.0), 26.0)
    return width, gantt_height(schedule.problem.num_devices)


def gantt_height(num_devices: int) -> float:
    """Height in inches of a Gantt block (title, rows, time axis) for ``num_devices`` rows."""
    return min(max(1.4 + 0.34 * num_devices, 2.6), 14.0)


def style_time_axis(ax: Axes, end: float, time_unit: str | None) -> None:
    """The time axis every ppopt picture uses: 0 to ``end`` and a margin of 1 % (so what
    happens at the end, such as memory returning to 0, is not hidden by the frame),
    labelled with the user's unit."""
    ax.set_xlim(0.0, (end if end > 0 else 1.0) * (1 + TIME_MARGIN))
    ax.set_xlabel(f"time ({time_unit})" if time_unit else "time")
    ax.grid(axis="x", color="0.85", linewidth=0.6)
    ax.set_axisbelow(True)


def schedule_title(schedule: Schedule, time_unit: str | None = None) -> str:
    """``name: makespan T, bubble rate X.X%`` (bubble rate as in docs/contract.md §5)."""
    metrics = compute_metrics(schedule)
    unit = f" {time_unit}" if time_unit else ""
    flag = " (interrupted: best found so far)" if schedule.interrupted else ""
    return (
        f"{schedule.name}{flag}: makespan {format_time(metrics.makespan)}{unit}, "
        f"bubble rate {metrics.bubble_rate:.1%}"
    )


def format_time(value: float) -> str:
    """A time as a short number: ``33``, ``33.25``, ``1234.6``."""
    return f"{value:.6g}" if abs(value) < 1e6 else f"{value:.4e}"


def chunk_color(kind: str, chunk: int, num_chunks: int) -> tuple[float, float, float]:
    """The kind's colour, mixed towards white for later chunks (chunk 0 is the pure colour).

    An unknown kind (the legend's chunk entries) gets a neutral grey.
    """
    base = to_rgb(KIND_COLORS.get(kind, CHUNK_LEGEND_COLOR))
    share = 0.0 if num_chunks <= 1 else 0.5 * chunk / (num_chunks - 1)
    return (
        base[0] + (1.0 - base[0]) * share,
        base[1] + (1.0 - base[1]) * share,
        base[2] + (1.0 - base[2]) * share,
    )


def legend_handles(problem: Problem) -> list[Patch]:
    """Legend entries: one per kind of the problem, then one per chunk when there are several."""
    names = dict(KIND_NAMES)
    if not problem.is_split:
        names["B"] = "B full backward"
    handles = [Patch(facecolor=KIND_COLORS[k], label=names[k]) for k in problem.kinds]
    if problem.num_chunks > 1:
        for chunk in range(problem.num_chunks):
            handles.append(
                Patch(
                    facecolor=chunk_color("chunk", chunk, problem.num_chunks),
                    hatch=CHUNK_HATCHES[chunk % len(CHUNK_HATCHES)],
                    edgecolor="white",
                    label=_chunk_label(problem, chunk),
                )
            )
    return handles


# ------------------------------------------------------------------------------ drawing


def _groups(schedule: Schedule) -> dict[tuple[str, int], list[Op]]:
    """Ops grouped by (kind, chunk index on their device), so each group is one collection."""
    problem = schedule.problem
    chunk_of = {}
    for device in range(problem.num_devices):
        for chunk, stage in enumerate(problem.stages_on(device)):
            chunk_of[stage] = chunk
    groups: dict[tuple[str, int], list[Op]] = {}
    for op in schedule.ops():
        groups.setdefault((op.kind, chunk_of[op.stage]), []).append(op)
    return groups


def _draw_copy_lanes(ax: Axes, schedule: Schedule) -> None:
    """Each device's copies (:mod:`ppopt.offload`) as a thin bar under its compute row:
    offloads dark grey, reloads light grey."""
    offset, height = COPY_LANE
    for kind in ("O", "L"):
        ops = [op for row in schedule.copy_ops for op in row if op.kind == kind]
        for device in {op.device for op in ops}:
            spans = [(op.start, op.end - op.start) for op in ops if op.device == device]
            ax.broken_barh(spans, (device + offset, height), facecolors=KIND_COLORS[kind])


def _pair_sides(schedule: Schedule) -> dict[Task, int]:
    """An overlapped pair is one box split in two: its forward in one half of the row (-1),
    its backward in the other (+1)."""
    out = {}
    for f, b in schedule.pairs:
        out[Task(*f)], out[Task(*b)] = -1, 1
    return out


def _extent(op: Op, sides: dict[Task, int]) -> tuple[float, float]:
    """The op's box from its row's centre: the whole row, or half of it for a pair's part."""
    half = ROW_HEIGHT / 2
    side = sides.get(op.task, 0) if sides else 0
    return (-half, half) if side == 0 else ((-half, 0.0) if side < 0 else (0.0, half))


def _draw_boxes(
    ax: Axes,
    ops: Sequence[Op],
    color: tuple[float, float, float],
    hatch: str,
    edge: float,
    extents: Sequence[tuple[float, float]] | None = None,
) -> None:
    """One box per op in its device's row, all of one kind and chunk, as one collection;
    ``edge`` is the width in points of the white outline that separates neighbouring boxes.
    """
    if not ops:
        return
    x0 = np.array([op.start for op in ops])
    x1 = np.array([op.end for op in ops])
    y = np.array([op.device for op in ops], dtype=float)
    if extents is None:
        low, high = y - ROW_HEIGHT / 2, y + ROW_HEIGHT / 2
    else:
        low = y + np.array([e[0] for e in extents])
        high = y + np.array([e[1] for e in extents])
    corners = np.stack([np.column_stack(c) for c in
                        ((x0, low), (x0, high), (x1, high), (x1, low))], axis=1)  # fmt: skip
    bars = PolyCollection(
        list(corners), facecolors=color, edgecolors="white", linewidths=edge, hatch=hatch or None
    )
    if hatch:
        bars.set_hatchcolor(_darker(color))
        bars.set_hatch_linewidth(0.6)
    ax.add_collection(bars, autolim=False)


def _edge_width(schedule: Schedule, points_per_unit: float | None) -> float:
    """0.5 pt box outlines, or none when the shortest boxes are under 3 pt wide (the white
    outlines would wash out the colours of a crowded chart).
    """
    shortest = min((op.end - op.start for op in schedule.ops()), default=0.0)
    if points_per_unit is None or shortest * points_per_unit < 3.0:
        return 0.0
    return 0.5


def _points_per_time_unit(ax: Axes, makespan: float) -> float | None:
    """Rough width in points of one time unit, from the axes' current size (before layout)."""
    return _axes_points(ax)[0] / makespan if makespan > 0 else None


def _axes_points(ax: Axes) -> tuple[float, float]:
    """The axes' current width and height in points (before any layout engine runs)."""
    dpi = ax.figure.dpi
    return ax.bbox.width * 72.0 / dpi, ax.bbox.height * 72.0 / dpi


def _style_rows(ax: Axes, problem: Problem) -> None:
    """Device rows: ``device 1`` at the top, no frame clutter."""
    num_devices = problem.num_devices
    ax.set_ylim(num_devices - 0.5, -0.5)
    ax.set_yticks(range(num_devices), [device_label(problem, d) for d in range(num_devices)])
    ax.tick_params(axis="y", length=0, labelsize=8 if num_devices <= 16 else 6)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)


def device_label(problem: Problem, device: int) -> str:
    """``device 1``, and under it the layers its stages hold when the stages were cut from a
    layer profile (``L0-4``, chunks joined by commas)."""
    label = device_name(device)
    if problem.partition is None:
        return label
    ranges = ",".join(problem.partition.range_label(s) for s in problem.stages_on(device))
    return f"{label}\n{ranges}"


def _luminance(color: tuple[float, float, float]) -> float:
    """Perceived brightness 0..1 (Rec. 709 weights), to pick black or white text."""
    r, g, b = color
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _darker(color: tuple[float, float, float]) -> tuple[float, float, float]:
    """The colour at 75% brightness (hatch lines on a shaded box)."""
    return (color[0] * 0.75, color[1] * 0.75, color[2] * 0.75)


def _chunk_label(problem: Problem, chunk: int) -> str:
    """A chunk's legend entry: ``chunk 2``; with two model copies (a device's first chunk is
    copy 1's stage, its second copy 2's) the copy and the device it enters from."""
    if problem.copies == 2:
        entry = 1 if chunk == 0 else problem.num_devices
        return f"copy {chunk + 1} (enters at device {entry})"
    return f"chunk {chunk + 1}"
