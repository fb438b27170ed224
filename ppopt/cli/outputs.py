"""What the commands write besides the report: output files, checked before any work and
renamed into place together, and the ``wrote``/progress lines on stderr.

Outputs are written through :mod:`ppopt.atomic`: all of a run's files are first written to
temporary names and renamed together at the end, so a failed or interrupted run leaves every
existing output file untouched. The format follows the extension (``.trace.json`` Chrome
trace, ``.json`` schedule file, ``.png``/``.svg``/``.pdf`` picture, ``.html`` interactive page).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from ppopt.atomic import atomic_path
from ppopt.cli.progress import ProgressLine
from ppopt.errors import ConfigError
from ppopt.export.schedule_json import dumps_schedule
from ppopt.export.trace import write_trace
from ppopt.schedule import Schedule
from ppopt.solver import SolveResult

TRACE_SUFFIX = ".trace.json"
HTML_SUFFIX = ".html"  # the interactive page (ppopt.viz.html)
DRAWING_NOTICE_S = 1.0  # a drawing that takes longer says so


@dataclass(frozen=True)
class Outputs:
    """The files one command writes (``None``: not asked for); all are written to temporary
    names, then renamed."""

    picture: str | None = None
    json: str | None = None
    trace: str | None = None

    def write(self, schedule: Schedule, solver: Mapping[str, Any] | None, quiet: bool) -> None:
        """Write every requested output (``solver``: the schedule file's ``solver`` object);
        on any failure none of them is replaced."""
        with contextlib.ExitStack() as stack:
            if self.json is not None:
                tmp = stack.enter_context(atomic_path(self.json))
                tmp.write_text(dumps_schedule(schedule, solver), encoding="utf-8")
            if self.trace is not None:
                write_trace(schedule, stack.enter_context(atomic_path(self.trace)))
            if self.picture is not None:
                target = stack.enter_context(atomic_path(self.picture))
                with drawing_notice(self.picture, quiet):
                    draw_schedule(schedule, target)
        for path in (self.json, self.trace, self.picture):
            if path is not None:
                wrote(path, quiet)


def checked(label: str, path: str | None) -> str | None:
    """``path`` if it can be written (its directory exists); else a :class:`ConfigError`."""
    if path is None:
        return None
    target = Path(path)
    if target.is_dir():
        raise ConfigError(f"{label}: {path} is a directory")
    parent = target.parent
    if not parent.is_dir():
        raise ConfigError(f"{label}: cannot write {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"{label}: cannot write {path}: directory {parent} is not writable")
    if target.exists() and not os.access(target, os.W_OK):
        raise ConfigError(f"{label}: cannot write {path}: file is read-only")
    try:  # os.access says yes to root on a read-only file system or /proc: really try
        with tempfile.TemporaryFile(dir=parent):
            pass
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError(f"{label}: cannot write {path}: {reason}") from None
    return path


def draw_schedule(schedule: Schedule, path: Path) -> None:
    """Draw the Gantt picture (format from the extension; ``.html`` the interactive page),
    with the memory panel under it (every schedule holds activations, baselines without a
    limit too)."""
    if path.suffix.lower() == HTML_SUFFIX:
        from ppopt.viz.html import write_html  # imports matplotlib's colours: only when drawing

        write_html([schedule], path)
        return
    from ppopt.viz.save import render_schedule  # matplotlib: ~0.4 s, only when drawing

    render_schedule(schedule, path, limit=schedule.problem.memory_caps, show_memory=True)


def save_comparison(
    schedules: Sequence[Schedule], path: str, limit: Sequence[float] | None
) -> None:
    """One figure of several schedules on a shared time axis (written atomically); for a
    ``.html`` path the interactive page with one tab per schedule."""
    if Path(path).suffix.lower() == HTML_SUFFIX:
        from ppopt.viz.html import write_html

        write_html(schedules, path, limit)
        return
    from ppopt.viz import plot_comparison, save_figure  # matplotlib: only when drawing

    save_figure(plot_comparison(list(schedules), limit=limit), path)


@contextlib.contextmanager
def drawing_notice(path: str, quiet: bool) -> Iterator[None]:
    """Say on stderr that ``path`` is being drawn once drawing has taken a second (large
    schedules), and how long it took; nothing for a quick drawing or when ``quiet``."""
    start = time.monotonic()
    timer = threading.Timer(DRAWING_NOTICE_S, typer.echo, (f"drawing {path} ...",), {"err": True})
    if not quiet:
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        timer.cancel()
        elapsed = time.monotonic() - start
        if not quiet and elapsed >= DRAWING_NOTICE_S:
            typer.echo(f"drew {path} in {elapsed:.1f} s", err=True)


def progress_printer(quiet: bool) -> ProgressLine | None:
    """The optimizer's progress on stderr (:mod:`ppopt.cli.progress`); none when ``quiet``."""
    return None if quiet else ProgressLine()


def finish_progress(progress: ProgressLine | None, result: SolveResult | None) -> None:
    """End the progress display with the solve's final line (the report's own numbers)."""
    if progress is not None:
        progress.finish(result)


def wrote(path: str, quiet: bool) -> None:
    """Say on stderr that ``path`` was written (unless ``quiet``)."""
    if not quiet:
        typer.echo(f"wrote {path}", err=True)
