"""The Gantt chart: rows, boxes, colours, labels that never overlap or spill, title."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from ppopt.baselines import baseline
from ppopt.problem import Problem
from ppopt.schedule import Schedule
from ppopt.viz import KIND_COLORS, plot_gantt, plot_memory
from ppopt.viz.gantt import BoxLabel, box_labels, gantt_size


def boxes(ax) -> list[tuple[float, float, float, tuple[float, ...], str]]:
    """Every drawn box as (x0, x1, y centre, facecolour, hatch), read back from the axes."""
    out = []
    for coll in ax.collections:
        face = tuple(np.round(coll.get_facecolor()[0], 4))
        for path in coll.get_paths():
            xs, ys = path.vertices[:, 0], path.vertices[:, 1]
            out.append((float(xs.min()), float(xs.max()), float(ys.mean()), face, coll.get_hatch()))
    return out


def kind_at(schedule: Schedule) -> dict[tuple[int, float], str]:
    """(device, start) -> kind of the op there."""
    return {(op.device, op.start): op.kind for op in schedule.ops()}


def rgba(color: str) -> tuple[float, ...]:
    return tuple(np.round(to_rgba(color), 4))


def test_one_row_per_device_device_1_on_top(plain: Schedule) -> None:
    ax = plot_gantt(plain)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["device 1", "device 2", "device 3", "device 4"]
    top, bottom = ax.transData.transform([(0, 0), (0, 3)])[:, 1]
    assert top > bottom  # device 1 (row 0) is drawn above device 4


def test_one_box_per_op_spanning_start_to_end(split: Schedule) -> None:
    ax = plot_gantt(split)
    drawn = sorted((round(x0, 9), round(x1, 9), round(y)) for x0, x1, y, _, _ in boxes(ax))
    expected = sorted((op.start, op.end, op.device) for op in split.ops())
    assert drawn == expected


@pytest.mark.parametrize("name", ["1f1b", "gpipe"])
def test_kind_colours_are_the_module_map_in_every_chart(name: str, split: Schedule) -> None:
    for schedule in (baseline(name, split.problem), baseline(name, split.problem.unsplit())):
        ax = plot_gantt(schedule)
        kinds = kind_at(schedule)
        for x0, _, y, face, _ in boxes(ax):
            assert face == rgba(KIND_COLORS[kinds[(round(y), x0)]])
        legend = {
            t.get_text()[0]: rgba(h.get_facecolor())
            for t, h in zip(
                ax.get_legend().get_texts(), ax.get_legend().legend_handles, strict=True
            )
        }
        assert legend == {k: rgba(KIND_COLORS[k]) for k in schedule.problem.kinds}
    assert len({rgba(c) for c in KIND_COLORS.values()}) == len(KIND_COLORS) == 4  # F, B, W, R apart


def test_chunks_differ_in_shade_and_hatch(chunked: Schedule) -> None:
    ax = plot_gantt(chunked)
    problem = chunked.problem
    style: dict[tuple[str, int], set[tuple[tuple[float, ...], str]]] = {}
    stage_at = {(op.device, op.start): op for op in chunked.ops()}
    for x0, _, y, face, hatch in boxes(ax):
        op = stage_at[(round(y), x0)]
        chunk = problem.stages_on(op.device).index(op.stage)
        style.setdefault((op.kind, chunk), set()).add((face, hatch or ""))
    assert all(len(s) == 1 for s in style.values())  # one look per (kind, chunk)
    for kind in problem.kinds:
        assert style[(kind, 0)] != style[(kind, 1)]
        (face0, hatch0), (face1, hatch1) = *style[(kind, 0)], *style[(kind, 1)]
        assert face0 == rgba(KIND_COLORS[kind]) and hatch0 == "" and hatch1 != ""
        assert sum(face1[:3]) > sum(face0[:3])  # the second chunk is a lighter shade
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "chunk 1" in texts and "chunk 2" in texts


def test_title_names_schedule_makespan_and_bubble_rate(plain: Schedule) -> None:
    ax = plot_gantt(plain)
    # 1F1B closed form: makespan (m+p-1)(f+b) = 33, bubble rate (p-1)/(m+p-1) = 3/11.
    assert ax.get_title() == "1f1b: makespan 33, bubble rate 27.3%"
    assert plot_gantt(plain, title="mine").get_title() == "mine"
    stopped = Schedule(plain.problem, "optimal", plain.device_ops, interrupted=True)
    assert plot_gantt(stopped).get_title().startswith("optimal (interrupted: best found so far):")


@pytest.mark.parametrize(("unit", "label"), [(None, "time"), ("ms", "time (ms)")])
def test_time_axis_in_the_users_unit(plain: Schedule, unit: str | None, label: str) -> None:
    ax = plot_gantt(plain, time_unit=unit)
    assert ax.get_xlabel() == label
    assert ax.get_xlim() == (0.0, 33.0)
    if unit:
        assert "makespan 33 ms" in ax.get_title()


def test_small_chart_shows_every_one_based_microbatch_number(plain: Schedule) -> None:
    ax = plot_gantt(plain)
    ax.figure.canvas.draw()
    labels = box_labels(ax)
    assert labels and all(label.fits for label in labels)
    for device in range(4):
        row = sorted(int(t.get_text()) for t in labels if round(t.get_position()[1]) == device)
        assert row == sorted(list(range(1, 9)) * 2)  # an F and a B for each micro-batch


def drawn_labels(ax) -> list[tuple[BoxLabel, object]]:
    """Draw the figure; the labels that were drawn, each with its rendered window extent."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    return [(t, t.get_window_extent(renderer)) for t in box_labels(ax) if t.fits]


@pytest.mark.parametrize(
    "figsize",
    [None, (12.0, 5.0)],  # the chart's own size, and a cramped one where most labels drop
)
def test_labels_never_overlap_or_leave_their_box_at_p16_m64(figsize) -> None:
    schedule = baseline("1f1b", Problem.create(16, 64))
    ax = None
    if figsize is not None:
        fig = Figure(figsize=figsize, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
    ax = plot_gantt(schedule, ax=ax)
    shown = drawn_labels(ax)
    ops = {(op.device, (op.start + op.end) / 2): op for op in schedule.ops()}
    extents = np.array([[e.x0, e.y0, e.x1, e.y1] for _, e in shown]).reshape(-1, 4)
    for label, extent in shown:
        x, y = label.get_position()
        op = ops[(round(y), x)]
        assert label.get_text() == str(op.microbatch + 1)
        # the op's box (rows are 0.8 high), computed here from the op, in display pixels
        corners = [(op.start, op.device - 0.4), (op.end, op.device + 0.4)]
        xs, ys = ax.transData.transform(corners).T
        assert xs.min() <= extent.x0 and extent.x1 <= xs.max()
        assert ys.min() <= extent.y0 and extent.y1 <= ys.max()
    x0, y0, x1, y1 = extents.T
    overlap = (
        (x0[:, None] < x1[None, :])
        & (x0[None, :] < x1[:, None])
        & (y0[:, None] < y1[None, :])
        & (y0[None, :] < y1[:, None])
    )
    np.fill_diagonal(overlap, False)
    assert not overlap.any()
    if figsize is None:
        # the chart's own size keeps at least the backward numbers (one per device and batch)
        assert len(shown) >= 16 * 64
        assert len(shown) < 2 * 16 * 64  # and did drop the narrow forwards' two-digit numbers


def test_figure_grows_with_devices_and_tasks_within_bounds() -> None:
    small = gantt_size(baseline("1f1b", Problem.create(4, 8)))
    large = gantt_size(baseline("1f1b", Problem.create(16, 64)))
    huge = gantt_size(baseline("1f1b", Problem.create(64, 512)))
    assert small[0] < large[0] and small[1] < large[1]
    assert huge[0] <= 26 and huge[1] <= 14


def test_given_axes_no_new_figure_is_made(monkeypatch, split: Schedule) -> None:
    fig = Figure()
    gantt_ax, memory_ax = fig.subplots(2, 1)
    made = []
    original = Figure.__init__

    def counting_init(self, *args, **kwargs):
        made.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "__init__", counting_init)
    assert plot_gantt(split, ax=gantt_ax) is gantt_ax
    assert plot_memory(split, ax=memory_ax) is memory_ax
    assert made == [] and fig.axes == [gantt_ax, memory_ax]
    plot_gantt(split)
    assert len(made) == 1  # the counter does see figures being made
