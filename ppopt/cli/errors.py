"""Every error as one ``error: ...`` line on stderr with the contract's exit code
(docs/contract.md §3): 2 bad input, 1 no schedule, 130 Ctrl-C.

:class:`PpoptGroup` handles click's own usage errors (bad option, bad value) instead of its
multi-line usage box; :func:`errors_to_exit_codes` handles what a command raises: every
:class:`~ppopt.errors.PpoptError`, Ctrl-C and file-system errors.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import Any, NoReturn

import typer
from typer.core import TyperGroup

from ppopt.cli.args import implicit_solve, rewrite_list_args
from ppopt.errors import NoScheduleError, PpoptError

EXIT_BAD_INPUT = 2
EXIT_NO_SCHEDULE = 1
EXIT_INTERRUPTED = 130


class PpoptGroup(TyperGroup):
    """The top-level command: argument rewrite, one-line errors, contract exit codes."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Run the command line; exit (or return, when not standalone) with the exit code."""
        argv = rewrite_list_args(implicit_solve(sys.argv[1:] if args is None else list(args)))
        with sigterm_as_interrupt():
            code = self._run(argv, prog_name, complete_var, **extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def _run(
        self, argv: list[str], prog_name: str | None, complete_var: str | None, **extra: Any
    ) -> int:
        """Click's main without its own exit handling; the exit code."""
        try:
            code = super().main(
                args=argv,
                prog_name=prog_name or "ppopt",
                complete_var=complete_var,
                standalone_mode=False,
                **extra,
            )
        except typer.TyperException as error:  # click's usage errors (bad option, bad value)
            if type(error).__name__ != "NoArgsIsHelpError":  # that one has printed the help
                _say_error(error.format_message())
            code = EXIT_BAD_INPUT
        except typer.Abort:
            code = EXIT_INTERRUPTED
        return code if isinstance(code, int) else 0


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While the command runs, SIGTERM (``kill``, a job scheduler's stop) is a Ctrl-C: the
    best schedule so far is written, temporary files are removed, exit code 130. Only the
    main thread can set a signal handler; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _say_error(message: str) -> None:
    """Print ``error: <message>`` as one line on stderr."""
    text = " ".join(str(message).split())
    if text[:1].isupper() and not text[1:2].isupper():
        text = text[0].lower() + text[1:]
    typer.echo(f"error: {text}", err=True)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    """Stop the command with one error line and an exit code."""
    _say_error(message)
    raise typer.Exit(code)


@contextlib.contextmanager
def errors_to_exit_codes() -> Iterator[None]:
    """Map ppopt's exceptions to one error line and the contract's exit codes: every
    :class:`PpoptError` is bad input (2) except "no schedule exists" (1)."""
    try:
        yield
    except PpoptError as error:
        text = str(error)
        if isinstance(error, NoScheduleError):
            prefixed = text if text.startswith("no schedule") else f"no schedule: {text}"
            fail(prefixed, EXIT_NO_SCHEDULE)
        fail(text)
    except KeyboardInterrupt:
        fail("interrupted", EXIT_INTERRUPTED)
    except MemoryError:  # past the size guard (--allow-large): this machine's memory ran out
        fail("out of memory: the problem is too large for this machine")
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        fail(f"{where}{error.strerror or error}")
