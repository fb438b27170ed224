"""Part of a picture, as ``ppopt plot --from/--to/--devices`` asks for it.

A plain dataclass without matplotlib, so the command line can build and check one before
anything is drawn; :meth:`View.apply` zooms the drawn axes (:mod:`ppopt.viz`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes


@dataclass(frozen=True)
class View:
    """Part of a picture: times ``start`` to ``end`` (``None``: the whole schedule) and
    devices ``first`` to ``last`` (0-based, inclusive; ``None``: all), for ``ppopt plot``."""

    start: float | None = None
    end: float | None = None
    first: int | None = None
    last: int | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"time window: {self.end:g} is not after {self.start:g}")
        if self.first is not None and self.last is not None and self.last < self.first:
            raise ValueError(f"devices: {self.last + 1} is before {self.first + 1}")

    def apply(self, axes: Sequence[Axes], makespan: float) -> None:
        """Zoom every panel to the window; rows (Gantt rows, heat-map rows) to the devices."""
        low, high = axes[0].get_xlim()
        axes[0].set_xlim(self.start if self.start is not None else low,
                         self.end if self.end is not None else high)  # fmt: skip
        if self.first is None and self.last is None:
            return
        for ax in axes:
            rows = len(ax.get_yticks())
            if ax.get_ylim()[0] <= ax.get_ylim()[1] or rows == 0:
                continue  # a memory line panel (y grows upwards): every device stays
            first = self.first if self.first is not None else 0
            last = min(self.last if self.last is not None else rows - 1, rows - 1)
            ax.set_ylim(last + 0.5, first - 0.5)
