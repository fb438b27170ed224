"""The Gantt chart: rows, boxes, colours, labels that never overlap or spill, title."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextPath

from ppopt.baselines import baseline
from ppopt.problem import Problem
from ppopt.schedule import Schedule
from ppopt.viz import KIND_COLORS, plot_gantt, plot_memory
from ppopt.viz.gantt import gantt_size
from ppopt.viz.labels import BoxLabels, chart_labels


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
    assert (
        len({rgba(c) for c in KIND_COLORS.values()}) == len(KIND_COLORS) == 6
    )  # F, B, W, R, O, L apart


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
    assert ax.get_xlim() == (0.0, 33.0 * 1.01)  # 1 % after the end
    if unit:
        assert "makespan 33 ms" in ax.get_title()


def test_small_chart_shows_every_one_based_microbatch_number(plain: Schedule) -> None:
    ax = plot_gantt(plain)
    ax.figure.canvas.draw()
    labels = chart_labels(ax)
    assert labels is not None and labels.fits is not None and labels.fits.all()
    for device in range(4):
        row = sorted(
            int(text)
            for text, box in zip(labels.texts, labels.boxes, strict=True)
            if round((box[2] + box[3]) / 2) == device
        )
        assert row == sorted(list(range(1, 9)) * 2)  # an F and a B for each micro-batch


def drawn_extents(ax, labels: BoxLabels, dpi: float) -> list[tuple[int, np.ndarray]]:
    """Draw the figure at ``dpi``; each drawn label's index and pixel extent, rebuilt here
    from the glyph outline of its text at the chart's size and orientation, centred on its
    box (independent of the artist's own geometry)."""
    fig = ax.figure
    fig.set_dpi(dpi)
    fig.canvas.draw()
    assert labels.fits is not None
    font = FontProperties(size=labels.style.fontsize)
    out = []
    for i in np.flatnonzero(labels.fits):
        extent = TextPath((0, 0), labels.texts[i], prop=font).get_extents()
        w, h = extent.width * dpi / 72, extent.height * dpi / 72
        if labels.style.rotated:
            w, h = h, w
        x0, x1, y0, y1 = labels.boxes[i]
        cx, cy = ax.transData.transform([((x0 + x1) / 2, (y0 + y1) / 2)])[0]
        out.append((int(i), np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])))
    return out


@pytest.mark.parametrize(
    ("figsize", "dpi"),
    [(None, 100), (None, 150), ((12.0, 5.0), 100)],  # own size at two dpi, and a cramped one
)
def test_labels_inside_their_box_never_overlapping_and_consistent_at_p16_m64(figsize, dpi) -> None:
    schedule = baseline("1f1b", Problem.create(16, 64))
    ax = None
    if figsize is not None:
        fig = Figure(figsize=figsize, layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
    ax = plot_gantt(schedule, ax=ax)
    labels = chart_labels(ax)
    assert labels is not None
    shown = drawn_extents(ax, labels, dpi)
    ops = {(op.device, op.start): op for op in schedule.ops()}
    pixels = ax.transData.transform
    for i, (x0, y0, x1, y1) in shown:
        start, end, low, high = labels.boxes[i]
        op = ops[(round((low + high) / 2), start)]
        assert labels.texts[i] == str(op.microbatch + 1) and end == op.end
        # the op's box (rows are 0.8 high), computed here from the op, in display pixels
        xs, ys = pixels([(op.start, op.device - 0.4), (op.end, op.device + 0.4)]).T
        assert xs.min() <= x0 and x1 <= xs.max() and ys.min() <= y0 and y1 <= ys.max()
    extents = np.array([e for _, e in shown]).reshape(-1, 4)
    a0, b0, a1, b1 = extents.T
    overlap = (
        (a0[:, None] < a1[None, :])
        & (a0[None, :] < a1[:, None])
        & (b0[:, None] < b1[None, :])
        & (b0[None, :] < b1[:, None])
    )
    np.fill_diagonal(overlap, False)
    assert not overlap.any()
    # one rule: boxes of one length are all labelled or all not, whatever their number
    assert labels.fits is not None
    by_length: dict[float, set[bool]] = {}
    for (start, end, _, _), fits in zip(labels.boxes, labels.fits, strict=True):
        by_length.setdefault(round(end - start, 9), set()).add(bool(fits))
    assert all(len(decisions) == 1 for decisions in by_length.values())
    if figsize is None:  # the chart's own size labels every backward, two-digit numbers too
        assert labels.fits.sum() >= 16 * 64


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


def test_large_chart_has_an_idle_strip_with_each_devices_share() -> None:
    """p=12 1F1B (F=1, B=2, m=24): device d idles (p-1)(f+b) = 33 of the makespan
    (m+p-1)(f+b) = 105, the same on every device; a p=4 chart has no strip."""
    schedule = baseline("1f1b", Problem.create(12, 24))
    ax = plot_gantt(schedule)
    (strip,) = ax.child_axes
    widths = [patch.get_width() for patch in strip.patches]
    assert widths == pytest.approx([33 / 105] * 12)
    assert plot_gantt(baseline("1f1b", Problem.create(4, 8))).child_axes == []
