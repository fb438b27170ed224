"""The optimizer's progress on stderr, as a person reads it.

On a terminal it is one status line rewritten in place (at most ten times a second); written
to a file or a pipe it is a few lines: one whenever the best or the bound changed, at most one
a second. An update that changes nothing is never shown. :meth:`ProgressLine.finish` ends the
display with the solve's final line — status, best and bound taken from the same result the
report prints, so the last progress line and the report always agree.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from ppopt.solver import Progress, SolveResult

#: Seconds between two lines when stderr is not a terminal, and between two redraws on one.
FILE_INTERVAL = 1.0
TERMINAL_INTERVAL = 0.1


class ProgressLine:
    """A :data:`ppopt.solver.ProgressCallback` that draws the solve's progress on ``stream``."""

    def __init__(
        self,
        stream: TextIO | None = None,
        terminal: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.terminal = self.stream.isatty() if terminal is None else terminal
        self.interval = TERMINAL_INTERVAL if self.terminal else FILE_INTERVAL
        self.clock = clock
        self.lines = 0  # lines written (file mode) or redraws (terminal), for the tests
        self._shown: tuple[float | None, float] | None = None  # (best, bound) on screen
        self._pending: Progress | None = None  # a change not shown yet (throttled)
        self._last_time = -float("inf")
        self._open = False  # a terminal line waiting for its newline

    def __call__(self, progress: Progress) -> None:
        if (progress.best, progress.bound) == self._shown:
            return
        self._pending = progress
        if self.clock() - self._last_time >= self.interval:
            self._flush()

    def finish(self, result: SolveResult | None) -> None:
        """End the display: the final line from ``result`` (or the last pending update when
        the solve gave none)."""
        if result is None:
            if self._pending is not None:
                self._flush()
            self._end_line()
            return
        self._pending = None
        status = str(result.status)
        text = (
            f"  {result.wall_time:7.2f} s  {status}  best {result.objective_value:.6g}  "
            f"bound {result.lower_bound:.6g}  gap {100 * result.gap:.2f}%"
        )
        self._write(text)
        self._end_line()

    def _flush(self) -> None:
        progress = self._pending
        assert progress is not None
        self._pending = None
        self._shown = (progress.best, progress.bound)
        self._last_time = self.clock()
        best = "-" if progress.best is None else f"{progress.best:.6g}"
        self._write(f"  {progress.elapsed:7.2f} s  best {best}  bound {progress.bound:.6g}")

    def _write(self, text: str) -> None:
        self.lines += 1
        if self.terminal:
            self.stream.write("\r" + text + "\x1b[K")
            self._open = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def _end_line(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False
