"""Sweep plots: bubble rate against each grid key, optimal's gain over 1F1B, solve time.

Every plot names its metric and units: the bubble *rate* is the idle share of device time
(``1 - work / (p * makespan)``, docs/contract.md §5), the improvement is the relative
makespan gain of the optimizer over the sweep's own ``1f1b`` run of the same grid point when
it has one, else over the 1F1B reference that ``ppopt solve`` reports (the title says
which). When the other grid keys have few combinations each gets its own line; with many, a
line is their mean and a shaded band their min..max, and the title says so.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, ScalarFormatter

from ppopt.config import OPTIMAL
from ppopt.viz.save import save_figure

Row = dict[str, Any]

#: Up to this many combinations of the other grid keys are drawn as separate lines.
MAX_LINES = 4
UNITS = {
    "num_stages": "devices",
    "num_batches": "micro-batches",
    "num_chunks": "chunks per device",
    "forward_times": "time units",
    "backward_times": "time units",
    "weight_times": "time units",
    "p2p_time": "time units",
    "memory.activation": "memory units",
    "memory.retained": "memory units",
    "solver.time_limit": "s",
}
STYLES = ("-", "--", ":", "-.")
#: One marker per schedule, drawn smaller for later schedules so equal values stay visible.
MARKERS = "osD^vP*X"


class _Style(NamedTuple):
    """How one schedule's lines look."""

    colour: str
    marker: str
    size: float


RATE_LABEL = "bubble rate = idle share of device time (%)"


def make_plots(
    rows: Sequence[Row], grid_keys: Sequence[str], out_dir: Path, label: str = ""
) -> list[Path]:
    """Draw every sweep plot that the results allow into ``out_dir``; return the paths.

    ``label`` (the sweep file's name) is shown over each plot, so a picture copied elsewhere
    still says which sweep it came from."""
    ok = [row for row in rows if row.get("makespan") is not None]
    figures: dict[str, Figure] = {}
    for key in grid_keys:
        if len({_text(row[key]) for row in ok}) > 1:
            name = f"bubble_rate_vs_{key.replace('.', '_')}.png"
            figures[name] = plot_bubble_rate(ok, key, grid_keys)
    optimal = [row for row in ok if row["schedule"] == OPTIMAL]
    own = gains_over_own_1f1b(ok, grid_keys)
    gains = own or [row for row in optimal if row.get("improvement") is not None]
    if gains:
        against = OWN_1F1B if own else REFERENCE_1F1B
        figures["improvement_over_1f1b.png"] = plot_improvement(gains, grid_keys, against)
    if optimal:
        figures["solve_time_vs_tasks.png"] = plot_solve_time(optimal)
    paths = []
    for name, figure in figures.items():
        if label:
            figure.axes[0].set_title(f"sweep {label}", fontsize="small")
        paths.append(save_figure(figure, out_dir / name))
    return paths


def plot_bubble_rate(rows: Sequence[Row], key: str, grid_keys: Sequence[str]) -> Figure:
    """Bubble rate (%) against one grid key, one colour per schedule."""
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.add_subplot()
    others = [k for k in grid_keys if k != key]
    schedules = list(dict.fromkeys(row["schedule"] for row in rows))
    banded = False
    for index, schedule in enumerate(schedules):
        mine = [row for row in rows if row["schedule"] == schedule]
        style = _Style(f"C{index}", MARKERS[index % len(MARKERS)], max(3.0, 9.0 - 1.5 * index))
        banded |= _draw(ax, mine, key, others, "bubble_rate", style, schedule)
    _finish(ax, rows, key, RATE_LABEL)
    title = f"Bubble rate against {key}"
    figure.suptitle(title + (" (line: mean over other grid keys; band: min..max)" * banded))
    return figure


#: What the improvement plot compares with: the sweep's own ``1f1b`` runs when it has them,
#: else each optimizer run's 1F1B reference (the unsplit one ``ppopt solve`` reports).
OWN_1F1B = "the sweep's own 1f1b runs"
REFERENCE_1F1B = "the 1F1B reference of ppopt solve (backward unsplit, chunks merged)"


def gains_over_own_1f1b(rows: Sequence[Row], grid_keys: Sequence[str]) -> list[Row]:
    """The optimizer's rows with ``improvement`` recomputed against the sweep's own ``1f1b``
    run of the same grid point (none when the sweep has no such runs)."""

    def point(row: Row) -> tuple[str, ...]:
        return tuple(_text(row[k]) for k in grid_keys)

    own = {point(row): row["makespan"] for row in rows if row["schedule"] == "1f1b"}
    out = []
    for row in rows:
        reference = own.get(point(row))
        if row["schedule"] == OPTIMAL and reference:
            out.append({**row, "improvement": 1.0 - row["makespan"] / reference})
    return out


def plot_improvement(
    rows: Sequence[Row], grid_keys: Sequence[str], against: str = REFERENCE_1F1B
) -> Figure:
    """Optimal's makespan gain over 1F1B (%) against the grid key with the most values;
    ``against`` says which 1F1B (the title shows it)."""
    key = max(grid_keys, key=lambda k: (_is_numeric(rows, k), len({_text(r[k]) for r in rows})))
    others = [k for k in grid_keys if k != key]
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.add_subplot()
    banded = _draw(ax, rows, key, others, "improvement", _Style("C2", "o", 6.0), OPTIMAL)
    ax.axhline(0.0, color="grey", linewidth=0.8)
    _finish(ax, rows, key, "makespan gain over 1F1B (%)")
    figure.suptitle(
        "Optimal vs 1F1B: (1F1B makespan - optimal makespan) / 1F1B makespan"
        + f"\n(1F1B: {against})"
        + ("\n(line: mean over other grid keys; band: min..max)" * banded)
    )
    return figure


def plot_solve_time(rows: Sequence[Row]) -> Figure:
    """The solver's wall time of each optimizer run against its task count, by status."""
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    ax = figure.add_subplot()
    by_status: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_status[str(row.get("status"))].append(row)
    for index, (status, group) in enumerate(sorted(by_status.items())):
        ax.scatter(
            [row["num_tasks"] for row in group],
            [row["solve_time"] for row in group],
            label=status,
            marker="os^vD"[index % 5],
            color=f"C{index}",
        )
    tasks = sorted({row["num_tasks"] for row in rows})
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(tasks if len(tasks) <= 10 else tasks[:: len(tasks) // 8 + 1])
    ax.set_xlabel("tasks in the problem (F, B and W passes; log scale)")
    ax.set_ylabel("CP-SAT solve wall time (s)")
    ax.grid(True, alpha=0.3)
    ax.legend(title="solver status")
    figure.suptitle("Optimizer solve time against problem size")
    return figure


# ------------------------------------------------------------------------------ helpers


def _draw(
    ax: Axes,
    rows: Sequence[Row],
    key: str,
    others: Sequence[str],
    metric: str,
    look: _Style,
    label: str,
) -> bool:
    """Draw ``metric`` (as %) against ``key``: a line per combination of the ``others`` when
    there are few, else their mean with a min..max band. Returns whether it drew a band."""
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        groups[", ".join(f"{k}={_text(row[k])}" for k in others)].append(row)
    positions = _positions(rows, key)
    if len(groups) <= MAX_LINES:
        for style, (name, group) in zip(STYLES, groups.items(), strict=False):
            xs, columns = _columns(group, key, metric, positions)
            ys = [sum(c) / len(c) for c in columns]
            line_label = f"{label}, {name}" if name else label
            ax.plot(
                xs,
                ys,
                linestyle=style,
                marker=look.marker,
                markersize=look.size,
                color=look.colour,
                label=line_label,
            )
        return False
    xs, columns = _columns(rows, key, metric, positions)
    lows, highs = [min(c) for c in columns], [max(c) for c in columns]
    ax.fill_between(xs, lows, highs, color=look.colour, alpha=0.2)
    means = [sum(c) / len(c) for c in columns]
    ax.plot(xs, means, marker=look.marker, markersize=look.size, color=look.colour, label=label)
    return True


def _columns(
    rows: Sequence[Row], key: str, metric: str, positions: dict[str, float]
) -> tuple[list[float], list[list[float]]]:
    """Per distinct x position (sorted), the metric values (%) of the rows there."""
    values: dict[float, list[float]] = defaultdict(list)
    for row in rows:
        values[positions[_text(row[key])]].append(100.0 * row[metric])
    xs = sorted(values)
    return xs, [values[x] for x in xs]


def _positions(rows: Sequence[Row], key: str) -> dict[str, float]:
    """x position of each value: the number itself, or 0, 1, … for non-numeric values."""
    if _is_numeric(rows, key):
        return {_text(row[key]): float(row[key]) for row in rows}
    labels = list(dict.fromkeys(_text(row[key]) for row in rows))
    return {label: float(index) for index, label in enumerate(labels)}


def _finish(ax: Axes, rows: Sequence[Row], key: str, ylabel: str) -> None:
    """Axis labels with units, categorical ticks, grid and legend."""
    unit = UNITS.get(key)
    ax.set_xlabel(f"{key} ({unit})" if unit else key)
    ax.set_ylabel(ylabel)
    positions = _positions(rows, key)
    if _is_numeric(rows, key):
        ax.set_xticks(sorted(set(positions.values())))
    else:
        ax.set_xticks(list(positions.values()), list(positions))
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")


def _is_numeric(rows: Sequence[Row], key: str) -> bool:
    """Whether every value of ``key`` is a plain number."""
    return all(isinstance(row[key], int | float) and not isinstance(row[key], bool) for row in rows)


def _text(value: object) -> str:
    """A grid value as text (lists as JSON)."""
    return json.dumps(value) if isinstance(value, list | dict) else str(value)
