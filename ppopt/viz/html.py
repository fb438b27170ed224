"""The interactive page: one self-contained HTML file (no network, no server) per schedule or
comparison.

The page carries the schedules as JSON and draws them on a canvas with its own small script:
wheel to zoom around the pointer, drag to pan, double-click to reset, hover a task for its
kind, stage, micro-batch, start, end and the device's memory after it; a memory view (one
strip per device, the limit dashed) shares the timeline's zoom; several schedules (``compare``)
are tabs on one shared time axis. Only the tasks inside the visible time range are drawn and a
hover is a binary search, so 49k-task schedules stay responsive.

On screen every number is 1-based (device 1 is the first device), as in the pictures; the
schedule file and the exports number from 0.

After drawing, ``<p id="status">`` carries ``data-tasks`` (the tab's task count, from the
embedded data) and ``data-drawn`` (how many of them the first full draw painted), so a
headless browser can check the page really drew every task.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from ppopt.atomic import atomic_path
from ppopt.metrics import compute_metrics, memory_profile
from ppopt.schedule import Schedule
from ppopt.tasks import KIND_SPECS
from ppopt.viz.gantt import KIND_COLORS

#: The page's template (package data beside this module): the style, the drawing script and
#: the ``__TITLE__`` / ``__DATA__`` slots.
TEMPLATE = "page.html"


def write_html(
    schedules: Sequence[Schedule],
    path: str | os.PathLike[str],
    limit: float | Sequence[float] | None = None,
    title: str | None = None,
) -> Path:
    """Write the page for ``schedules`` (one tab each) to ``path`` atomically.

    ``limit`` is the memory limit drawn in the memory view (one value or one per device;
    ``None``: each problem's own, if any)."""
    if not schedules:
        raise ValueError("write_html: no schedules to show")
    target = Path(path)
    with atomic_path(target) as temp:
        temp.write_text(page_html(schedules, limit, title), encoding="utf-8")
    return target


def page_html(
    schedules: Sequence[Schedule],
    limit: float | Sequence[float] | None = None,
    title: str | None = None,
) -> str:
    """The page's text: the template with the schedules' data embedded."""
    heading = title or " vs ".join(s.name for s in schedules)
    data = {
        "title": heading,
        "colors": {str(kind): KIND_COLORS.get(str(kind), "#707070") for kind in KIND_SPECS},
        "kindNames": {str(kind): spec.name for kind, spec in KIND_SPECS.items()},
        "schedules": [schedule_data(s, limit) for s in schedules],
    }
    # "</" inside a script element would end it: JSON allows the escaped form.
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    template = resources.files("ppopt.viz").joinpath(TEMPLATE).read_text(encoding="utf-8")
    return template.replace("__TITLE__", _escape(heading)).replace("__DATA__", payload)


def schedule_data(
    schedule: Schedule, limit: float | Sequence[float] | None = None
) -> dict[str, Any]:
    """One tab's data: per device the ops as columns (start, end, kind, stage, micro-batch,
    chunk on the device, memory after the op) and the memory step profile; the headline
    metrics."""
    problem = schedule.problem
    metrics = compute_metrics(schedule)
    devices = []
    for device, ops in enumerate(schedule.device_ops):
        level, after = 0.0, []
        for op in ops:  # a device's memory changes only at its own ops, which never overlap
            taken, freed = problem.op_memory_change(op.kind, op.stage, op.microbatch)
            level += taken - freed
            after.append(_round(level))
        times, levels = memory_profile(schedule, device)
        chunk_of = {stage: c for c, stage in enumerate(problem.stages_on(device))}
        devices.append(
            {
                "start": [_round(op.start) for op in ops],
                "end": [_round(op.end) for op in ops],
                "kind": "".join(str(op.kind) for op in ops),
                "stage": [op.stage for op in ops],
                "mb": [op.microbatch for op in ops],
                "chunk": [chunk_of[op.stage] for op in ops],
                "mem": after,
                "memT": [_round(t) for t in times],
                "memV": [_round(v) for v in levels],
            }
        )
    caps = problem.memory_caps if limit is None else limit
    if caps is not None and not isinstance(caps, Sequence):
        caps = [caps] * problem.num_devices
    return {
        "name": schedule.name,
        "numDevices": problem.num_devices,
        "numStages": problem.num_stages,
        "numChunks": problem.num_chunks,
        "makespan": _round(metrics.makespan),
        "bubbleRate": metrics.bubble_rate,
        "peak": [_round(v) for v in metrics.peak_memory],
        "limit": None if caps is None else [_round(float(v)) for v in caps],
        "interrupted": schedule.interrupted,
        "devices": devices,
    }


def _round(value: float) -> float:
    """12 significant digits: drops float noise (29.999999999999996) and shortens the file."""
    return float(f"{value:.12g}")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
