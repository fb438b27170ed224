"""Writing pictures: format from the extension, written atomically, figure closed after."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import matplotlib
from matplotlib.figure import Figure

from ppopt.atomic import atomic_path
from ppopt.schedule import Schedule
from ppopt.view import View
from ppopt.viz.compare import plot_comparison

#: Picture formats by file extension.
PICTURE_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}

#: Drop the creation date so the same schedule gives the same file.
_METADATA: dict[str, dict[str, None]] = {
    "png": {"Software": None},
    "svg": {"Date": None},
    "pdf": {"CreationDate": None},
}


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: float = 150) -> Path:
    """Write ``fig`` to ``path`` in the format its extension names, then close the figure.

    The picture is written to a temporary file beside ``path`` (same extension) and renamed
    over it, so a reader never sees half a file and an error leaves any old picture intact.
    SVG text stays text (searchable); an unknown extension raises ``ValueError``.
    """
    target = Path(path)
    fmt = picture_format(target)
    try:
        # SVG text stays text and its ids are fixed; PDF embeds TrueType fonts.
        with (
            atomic_path(target) as temp,
            matplotlib.rc_context(
                {"svg.fonttype": "none", "svg.hashsalt": "ppopt", "pdf.fonttype": 42}
            ),
        ):
            fig.savefig(temp, format=fmt, dpi=dpi, metadata=_METADATA[fmt])
    finally:
        _close(fig)
    return target


def render_schedule(
    schedule: Schedule,
    path: str | os.PathLike[str],
    limit: float | Sequence[float] | None = None,
    show_memory: bool = False,
    time_unit: str | None = None,
    view: View | None = None,
) -> Path:
    """Draw the schedule's Gantt chart (with its memory panel under it when ``show_memory``)
    and save it to ``path``; the extension is checked before anything is drawn.
    """
    picture_format(Path(path))
    fig = plot_comparison(
        [schedule], limit=limit, show_memory=show_memory, time_unit=time_unit, view=view
    )
    return save_figure(fig, path)


def picture_format(path: Path) -> str:
    """The matplotlib format for a picture path; ``ValueError`` naming an unknown extension."""
    suffix = path.suffix.lower()
    if suffix not in PICTURE_FORMATS:
        known = ", ".join(PICTURE_FORMATS)
        shown = f"'{path.suffix}'" if path.suffix else "no extension"
        raise ValueError(f"{path}: unsupported picture extension {shown} (use {known})")
    return PICTURE_FORMATS[suffix]


def _close(fig: Figure) -> None:
    """Release the figure: drop it from pyplot's registry if pyplot made it."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close(fig)
