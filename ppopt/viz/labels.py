"""The micro-batch numbers inside a Gantt chart's boxes, as one artist with one rule.

The rule: a box shows its (1-based) micro-batch number when, as rendered, it is wide and tall
enough for the *widest* number of the chart at the chart's font size and orientation, with a
margin. It depends only on the box's size, so boxes of one size are all labelled or all not,
whatever their number (no "1" to "9" shown beside an unlabelled "10"). The orientation is
chosen once per chart: across the box when a typical box holds the widest number that way,
else along it (rotated) when boxes are narrow but tall, as in long pipelines.

The numbers are glyph outlines (:class:`matplotlib.textpath.TextPath`, one per distinct
number) drawn as one path collection, so thousands of labels cost one draw call instead of
one text layout each; which boxes fit is decided at draw time from the renderer's own
transform, so it holds for any figure size, layout or dpi.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backend_bases import RendererBase
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.collections import PathCollection
from matplotlib.font_manager import FontProperties
from matplotlib.path import Path
from matplotlib.text import Text
from matplotlib.textpath import TextPath
from matplotlib.transforms import Affine2D

from ppopt.schedule import Op

LABEL_PAD_PX = 1.5  # minimum gap between a label and its box edge, in pixels
DIGIT_EM = 0.64  # width of a digit in em (DejaVu Sans), for the size estimates only
LINE_EM = 0.75  # height of a digit in em (DejaVu Sans), for the size estimates only
MIN_SIZE, MAX_SIZE = 5.0, 8.0  # label sizes in points


@dataclass(frozen=True)
class LabelStyle:
    """One chart's label size (points), orientation and widest number."""

    fontsize: float
    rotated: bool
    widest: str


def choose_style(
    ops: Sequence[Op], points_per_unit: float | None, box_pt: float, num_microbatches: int
) -> LabelStyle:
    """The size and orientation that label the most boxes, estimated from the axes' size:
    across or along the boxes, at the largest size (5 to 8 points) that fits a short
    (25th percentile) or a long (75th percentile) box; ties go to the larger size, then to
    across. ``box_pt`` is a box's height in points. Which boxes really get a label is decided
    at draw time (:class:`BoxLabels`)."""
    widest = "8" * len(str(num_microbatches))
    row_size = min(0.56 * box_pt, MAX_SIZE)
    if not ops or points_per_unit is None:
        return LabelStyle(max(row_size, MIN_SIZE), False, widest)
    # room in each box, less the margins (LABEL_PAD_PX pixels are at most as many points at
    # any dpi >= 72)
    room = np.sort([(op.end - op.start) * points_per_unit for op in ops]) - 2 * LABEL_PAD_PX
    height = box_pt - 2 * LABEL_PAD_PX
    candidates = []
    for rotated in (False, True):
        across_em, along_em = (LINE_EM, DIGIT_EM * len(widest)) if rotated else (
            DIGIT_EM * len(widest), LINE_EM)  # fmt: skip
        for share in (0.25, 0.75):
            typical = room[int(share * (len(room) - 1))]
            size = min(MAX_SIZE, typical / across_em, height / along_em)
            if rotated is False:
                size = min(size, row_size)
            if size < MIN_SIZE:
                continue
            labelled = int(np.count_nonzero(room >= size * across_em))
            candidates.append((labelled, size, not rotated, LabelStyle(size, rotated, widest)))
    if not candidates:
        return LabelStyle(max(row_size, MIN_SIZE), False, widest)
    return max(candidates, key=lambda c: c[:3])[3]


class BoxLabels(Artist):
    """The numbers of one chart's boxes; ``fits`` (one flag per box) is the last draw's
    decision (``None`` before the first draw)."""

    zorder = 3  # above the boxes (collections draw at 1)

    def __init__(
        self,
        boxes: np.ndarray,
        texts: Sequence[str],
        colors: Sequence[str],
        style: LabelStyle,
    ) -> None:
        super().__init__()
        self.boxes = np.asarray(boxes, dtype=float).reshape(-1, 4)  # x0, x1, y0, y1 (data)
        self.texts = list(texts)
        self.colors = np.asarray(colors, dtype=object)
        self.style = style
        self.fits: np.ndarray | None = None
        self._font = FontProperties(size=style.fontsize)
        self._paths: dict[str, Path] = {}  # outlines made when first drawn
        widest = np.asarray(self._centred(style.widest).vertices)
        self._widest = widest.max(axis=0) - widest.min(axis=0)  # width, height in points

    def _centred(self, text: str) -> Path:
        """The number's outline in points, centred on the origin (rotated when along); the
        box of its control points bounds it (cheaper than the exact extents)."""
        path = self._paths.get(text)
        if path is None:
            path = TextPath((0, 0), text, prop=self._font)
            low, high = path.vertices.min(axis=0), path.vertices.max(axis=0)
            shift = Affine2D().translate(*(-(low + high) / 2))
            if self.style.rotated:
                shift = shift.rotate_deg(90)
            path = self._paths[text] = shift.transform_path(path)
        return path

    def box_pixels(self) -> np.ndarray:
        """Each box as ``x0, x1, y0, y1`` in display pixels (x0 < x1, y0 < y1)."""
        assert self.axes is not None
        x0, x1, y0, y1 = self.boxes.T
        low = self.axes.transData.transform(np.column_stack([x0, y0]))
        high = self.axes.transData.transform(np.column_stack([x1, y1]))
        xs, ys = np.sort([low[:, 0], high[:, 0]], axis=0), np.sort([low[:, 1], high[:, 1]], axis=0)
        return np.column_stack([xs[0], xs[1], ys[0], ys[1]])

    def needed_pixels(self, renderer: RendererBase) -> tuple[float, float]:
        """The width and height a box needs for the widest number, margins included."""
        scale = _pixels_per_point(renderer)
        return (
            float(self._widest[0]) * scale + 2 * LABEL_PAD_PX,
            float(self._widest[1]) * scale + 2 * LABEL_PAD_PX,
        )

    def draw(self, renderer: RendererBase) -> None:
        if not self.get_visible() or self.axes is None or not self.texts:
            return
        pixels = self.box_pixels()
        need_w, need_h = self.needed_pixels(renderer)
        self.fits = (pixels[:, 1] - pixels[:, 0] >= need_w) & (
            pixels[:, 3] - pixels[:, 2] >= need_h
        )
        chosen = np.flatnonzero(self.fits)
        if chosen.size == 0:
            return
        centres = np.column_stack(
            [(self.boxes[chosen, 0] + self.boxes[chosen, 1]) / 2,
             (self.boxes[chosen, 2] + self.boxes[chosen, 3]) / 2]
        )  # fmt: skip
        if not isinstance(renderer, RendererAgg):  # SVG, PDF: real text, searchable
            self._draw_text(renderer, chosen, centres)
            return
        collection = PathCollection(
            [self._centred(self.texts[i]) for i in chosen],
            offsets=centres,
            offset_transform=self.axes.transData,
            facecolors=list(self.colors[chosen]),
            edgecolors="none",
            linewidths=0,
        )
        collection.set_transform(Affine2D().scale(_pixels_per_point(renderer)))
        collection.set_figure(self.figure)
        collection.set_clip_box(self.axes.bbox)
        collection.draw(renderer)

    def _draw_text(self, renderer: RendererBase, chosen: np.ndarray, centres: np.ndarray) -> None:
        """The chosen labels as text objects (vector formats keep them as text)."""
        assert self.axes is not None
        for i, (x, y) in zip(chosen, centres, strict=True):
            text = Text(
                x, y, self.texts[i], ha="center", va="center", clip_on=True,
                rotation=90 if self.style.rotated else 0,
                fontsize=self.style.fontsize, color=self.colors[i],
            )  # fmt: skip
            text.set_figure(self.figure)
            text.set_transform(self.axes.transData)
            text.set_clip_box(self.axes.bbox)
            text.draw(renderer)


def _pixels_per_point(renderer: RendererBase) -> float:
    return float(renderer.points_to_pixels(1.0))  # type: ignore[arg-type]


def chart_labels(ax: Axes) -> BoxLabels | None:
    """The chart's label artist (``None`` when it has none)."""
    found = [a for a in ax.artists if isinstance(a, BoxLabels)]
    return found[0] if found else None
