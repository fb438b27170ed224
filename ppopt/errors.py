"""Every error ppopt raises on purpose, under one base class, one subclass per cause.

A caller (the CLI, a notebook) catches :class:`PpoptError` for "ppopt refused this" and tells
the causes apart by subclass; the message is always one sentence that names the culprit
(``forward_times[2]: must be > 0, got -1``). :class:`NoScheduleError` is the one error that is
not bad input: the problem is well formed but has no schedule (exit code 1 in the CLI).
"""

from __future__ import annotations


class PpoptError(ValueError):
    """Base class of every error ppopt raises for a reason it can name."""


class ProblemError(PpoptError):
    """An invalid problem; the message starts with the offending config key."""


class ConfigError(PpoptError):
    """Invalid configuration; the message is one line naming the key and/or the file."""


class SolverOptionError(PpoptError):
    """An invalid solver option (``solver.*`` key) or CP-SAT parameter."""


class UnknownScheduleError(PpoptError):
    """A schedule name that is neither ``optimal`` nor a registered baseline."""


class NotApplicableError(ProblemError):
    """A baseline that cannot schedule this problem (e.g. ``1f1b`` with several chunks)."""


class ScheduleFileError(PpoptError):
    """Not a schedule file, another format version, or content inconsistent with its problem."""


class OrderError(PpoptError):
    """Orders that are not a permutation of the problem's tasks on their own devices."""


class DeadlockError(PpoptError):
    """Orders in which some tasks wait on each other forever."""


class NoScheduleError(PpoptError):
    """The problem has no schedule at all, e.g. a memory limit below one micro-batch, or none
    was found within the time limit (the CLI's exit code 1)."""


class ScheduleInvalid(PpoptError):
    """A schedule that breaks the rules; ``violations`` lists every broken rule in words."""

    def __init__(self, name: str, violations: list[str]) -> None:
        self.violations = violations
        shown = "\n".join(f"  {line}" for line in violations)
        super().__init__(f"schedule {name!r} is invalid ({len(violations)} violations):\n{shown}")
