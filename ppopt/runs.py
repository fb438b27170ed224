"""Running a config: the optimizer or a baseline, beside the 1F1B reference (docs/contract.md §1,
§3, §5).

:func:`run_schedule` is the one place that turns a :class:`~ppopt.config.RunConfig` into a
schedule; ``ppopt solve`` and every run of a sweep call it, and ``ppopt compare`` calls
:func:`compare_schedules`, which shares its code. The same config therefore gives the same
schedule, makespan and improvement over 1F1B wherever it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property

from ppopt.baselines import BASELINES, applicable_baselines, baseline
from ppopt.config import OPTIMAL, RunConfig
from ppopt.errors import ConfigError
from ppopt.metrics import improvement
from ppopt.problem import Problem
from ppopt.report import reference_schedule
from ppopt.schedule import Schedule
from ppopt.solver import Objective, ProgressCallback, SolveResult, solve
from ppopt.solver.floor import objective_value
from ppopt.solver.partition import PartitionResult, solve_partition


@dataclass(frozen=True)
class Outcome:
    """One schedule of a run, beside the reference every report compares it with.

    ``schedule`` is the chosen schedule (the optimizer's best, marked interrupted after
    Ctrl-C, or the baseline); ``result`` is the optimizer's :class:`SolveResult` (``None`` for
    a baseline); ``reference`` is the classic 1F1B of docs/contract.md §1: the problem with its
    backward unsplit and each device's chunks merged into one stage. ``partition`` is the
    search that chose the partition (``partition: auto``), else ``None``.
    """

    schedule: Schedule
    result: SolveResult | None
    reference: Schedule
    partition: PartitionResult | None = None

    @property
    def objective(self) -> Objective:
        """What the improvement measures: the optimizer's objective; makespan for a baseline."""
        return Objective.MAKESPAN if self.result is None else self.result.objective

    @cached_property
    def reference_value(self) -> float:
        """The reference's makespan (its largest per-device span when the objective is span)."""
        return objective_value(self.reference, self.objective)

    @cached_property
    def improvement(self) -> float:
        """The relative gain over the reference in the objective, ``(ref - value) / ref``."""
        return improvement(self.reference_value, objective_value(self.schedule, self.objective))


@dataclass(frozen=True)
class Comparison:
    """Several schedules of one problem: one outcome per name that ran, in the order asked,
    and the baselines ``left_out`` because they do not apply to the problem."""

    outcomes: tuple[Outcome, ...]
    left_out: tuple[str, ...] = ()
    partition: PartitionResult | None = None

    @property
    def problem(self) -> Problem:
        """The problem every schedule compared solves (with ``partition: auto``, the chosen
        partition's)."""
        return self.outcomes[0].schedule.problem

    @property
    def schedules(self) -> list[Schedule]:
        """The schedules, in the order asked."""
        return [outcome.schedule for outcome in self.outcomes]

    @property
    def results(self) -> list[SolveResult]:
        """The optimizer's results (one per ``optimal`` asked)."""
        return [outcome.result for outcome in self.outcomes if outcome.result is not None]


def run_schedule(
    run: RunConfig,
    name: str | None = None,
    progress: ProgressCallback | None = None,
    *,
    check_fits: bool = True,
) -> Outcome:
    """Schedule the run's problem with ``name`` (default: the run's ``schedule``).

    ``optimal`` runs the optimizer with the run's solver options, reporting to ``progress``;
    any other name is a baseline (:data:`ppopt.baselines.BASELINES`). The outcome carries the
    1F1B reference and the improvement over it. Errors: :class:`~ppopt.errors.NoScheduleError`
    when no schedule exists (the optimizer found none, or, with ``check_fits``, a memory limit
    below one micro-batch for a baseline too: a baseline ignores the limit, so the CLI refuses
    a limit that nothing can meet); :class:`~ppopt.errors.NotApplicableError` for a baseline
    not defined for the problem; :class:`~ppopt.errors.UnknownScheduleError` for an unknown
    name. A sweep passes ``check_fits=False`` to measure baselines whatever the limit.
    """
    name = name or run.schedule
    if run.auto_partition and run.layered is not None:
        if name != OPTIMAL:
            raise ConfigError(
                f"partition: auto chooses the partition with the optimizer; give schedule: "
                f"optimal, or an even or explicit partition for {name}"
            )
        search = solve_partition(run.layered, run.solver, progress)
        chosen = search.result.schedule.problem
        return Outcome(search.result.schedule, search.result, reference_schedule(chosen), search)
    if check_fits and name != OPTIMAL:
        run.problem.check_one_microbatch_fits()
    return _outcome(run, name, reference_schedule(run.problem), progress)


def compare_schedules(
    run: RunConfig,
    names: Sequence[str],
    progress: ProgressCallback | None = None,
    *,
    skip_inapplicable: bool = False,
) -> Comparison:
    """Run each of ``names`` on the run's problem, as :func:`run_schedule` would, in order.

    The reference and, with ``skip_inapplicable``, the applicable baselines are computed once
    for all names; a baseline that does not apply is then named in ``left_out`` instead of
    raising :class:`~ppopt.errors.NotApplicableError`. With ``partition: auto`` the optimizer
    chooses the partition once (as ``ppopt solve`` does) and every other name runs on it.
    """
    if run.auto_partition and run.layered is not None:
        return _compare_on_chosen_partition(run, names, progress, skip_inapplicable)
    has_baselines = any(name != OPTIMAL for name in names)
    if has_baselines:
        run.problem.check_one_microbatch_fits()
    reference = reference_schedule(run.problem)
    applicable = applicable_baselines(run.problem) if skip_inapplicable and has_baselines else {}
    outcomes: list[Outcome] = []
    left_out: list[str] = []
    for name in names:
        if name in applicable:
            outcomes.append(Outcome(applicable[name], None, reference))
        elif skip_inapplicable and name in BASELINES:
            left_out.append(name)
        else:  # the optimizer, a baseline asked for by name, or an unknown name (an error)
            outcomes.append(_outcome(run, name, reference, progress))
    return Comparison(tuple(outcomes), tuple(left_out))


def _compare_on_chosen_partition(
    run: RunConfig,
    names: Sequence[str],
    progress: ProgressCallback | None,
    skip_inapplicable: bool,
) -> Comparison:
    """:func:`compare_schedules` for ``partition: auto``: the partition search's schedule is
    the optimizer's entry, and the other names run on the partition it chose."""
    if OPTIMAL not in names:
        raise ConfigError(
            "partition: auto chooses the partition with the optimizer: add optimal to the "
            "schedules compared, or fix the partition (even or a list of layers per virtual "
            "stage)"
        )
    searched = run_schedule(run, OPTIMAL, progress)
    chosen = replace(run, problem=searched.schedule.problem, auto_partition=False)
    others = [name for name in names if name != OPTIMAL]
    rest = compare_schedules(chosen, others, progress, skip_inapplicable=skip_inapplicable)
    by_name = iter(rest.outcomes)
    outcomes = [
        replace(searched, partition=None) if name == OPTIMAL else next(by_name)
        for name in names
        if name == OPTIMAL or name not in rest.left_out
    ]
    return Comparison(tuple(outcomes), rest.left_out, searched.partition)


def _outcome(
    run: RunConfig, name: str, reference: Schedule, progress: ProgressCallback | None
) -> Outcome:
    """The optimizer's or the named baseline's schedule of the run's problem."""
    if name == OPTIMAL:
        result = solve(run.problem, run.solver, progress=progress)
        return Outcome(result.schedule, result, reference)
    return Outcome(baseline(name, run.problem), None, reference)
