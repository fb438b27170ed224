"""Pictures of schedules: Gantt chart, memory over time, comparisons, saving to files.

Every function draws on a given matplotlib ``Axes`` or, without one, on a new Agg-backed
figure (no display, no pyplot); none of them calls ``plt.show()``.
"""

from ppopt.viz.compare import plot_comparison
from ppopt.viz.gantt import KIND_COLORS, plot_gantt
from ppopt.viz.memory import plot_memory
from ppopt.viz.save import PICTURE_FORMATS, render_schedule, save_figure

__all__ = [
    "KIND_COLORS",
    "PICTURE_FORMATS",
    "plot_comparison",
    "plot_gantt",
    "plot_memory",
    "render_schedule",
    "save_figure",
]
