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
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from ppopt.atomic import atomic_path, is_special, write_target
from ppopt.baselines import BASELINES
from ppopt.cli.progress import ProgressLine
from ppopt.errors import ConfigError
from ppopt.export.schedule_json import dumps_schedule
from ppopt.export.trace import write_trace
from ppopt.schedule import Schedule
from ppopt.solver import SolveResult
from ppopt.view import View

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
    view: View | None = None  # the picture's time window and devices (ppopt plot)
    memory: bool = True  # the picture's memory panel

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
                    draw_schedule(schedule, target, self.view, self.memory)
        for path in (self.json, self.trace, self.picture):
            if path is not None:
                wrote(path, quiet)
        if self.picture is not None and not quiet:
            hint = misnamed_picture(self.picture, schedule.name)
            if hint:
                typer.echo(hint, err=True)


def checked(label: str, path: str | None) -> str | None:
    """``path`` if it can be written (its directory exists); else a :class:`ConfigError`.
    A symbolic link is checked as the file it names; a FIFO or device node (written in place)
    only for write permission."""
    if path is None:
        return None
    target = write_target(path)
    if is_special(target):
        if not os.access(target, os.W_OK):
            raise ConfigError(f"{label}: cannot write {path}: not writable")
        return path
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


def check_distinct(
    inputs: Sequence[tuple[str, str | os.PathLike[str] | None]],
    outputs: Sequence[tuple[str, str | None]],
) -> None:
    """No output is an input or another output, by any spelling or link: ``inputs`` are
    ``(noun, path)`` (``config file``), ``outputs`` ``(label, path)`` (``--json``); the later
    of two that are one file is named (``--json: c.json is also the config file``). Streams
    (``/dev/null``) may repeat."""
    seen: dict[tuple[object, ...], str] = {}
    named = [(noun, path, noun) for noun, path in inputs]
    named += [(label, path, f"{label} output") for label, path in outputs]
    for label, path, noun in named:
        if path is None:
            continue
        target = write_target(path)
        if is_special(target):
            continue
        identity = _identity(target)
        if identity in seen:
            raise ConfigError(
                f"{label}: {path} is also the {seen[identity]}; give each output its own path"
            )
        seen[identity] = noun


def _identity(path: Path) -> tuple[object, ...]:
    """What makes two paths one file: device and inode when it exists, else the full path."""
    try:
        info = path.stat()
    except OSError:
        return ("path", os.path.abspath(path))
    return ("inode", info.st_dev, info.st_ino)


def draw_schedule(
    schedule: Schedule, path: Path, view: View | None = None, memory: bool = True
) -> None:
    """Draw the Gantt picture (format from the extension; ``.html`` the interactive page),
    with the memory panel under it (every schedule holds activations, baselines without a
    limit too) unless ``memory`` is false; ``view`` zooms the picture (not the page, which
    zooms itself)."""
    if path.suffix.lower() == HTML_SUFFIX:
        from ppopt.viz.html import write_html  # imports matplotlib's colours: only when drawing

        write_html([schedule], path)
        return
    from ppopt.viz.save import render_schedule  # matplotlib: ~0.4 s, only when drawing

    limit = schedule.problem.memory_caps
    render_schedule(schedule, path, limit=limit, show_memory=memory, view=view)


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


def misnamed_picture(path: str, schedule: str) -> str | None:
    """A one-line note when a picture's file name names another schedule than the one drawn:
    the seed's ``sample_config.json`` writes ``pipeline_1f1b_custom.png``, but ppopt's default
    schedule is ``optimal`` (docs/contract.md §2), so its picture is not 1F1B's."""
    words = set(re.split(r"[^a-z0-9-]+", Path(path).stem.lower()))
    named = sorted(words & set(BASELINES) - {schedule})
    if not named:
        return None
    return (
        f"note: {path} shows the {schedule} schedule, not {named[0]} as its name says "
        f"(the default schedule is optimal; --schedule {named[0]} draws {named[0]})"
    )


def wrote(path: str, quiet: bool) -> None:
    """Say on stderr that ``path`` was written (unless ``quiet``)."""
    if not quiet:
        typer.echo(f"wrote {path}", err=True)
