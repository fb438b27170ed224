"""Float durations and memory amounts to the integers CP-SAT needs, and back.

CP-SAT works on integers. Times are multiplied by a power of ten when that makes every
duration and the latency whole (then the integer model *is* the float problem and its bound
is a valid bound); otherwise they are rounded at a resolution of ``RESOLUTION`` units for the
longest task, and only orders travel back: the reported timeline is always recomputed in
floats by the timeline engine (docs/contract.md §1).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ppopt.checks import TIME_RESOLUTION
from ppopt.links import map_values, named_values
from ppopt.offload import Offload
from ppopt.problem import Problem
from ppopt.recompute import Recompute
from ppopt.schedule import Op
from ppopt.tasks import Hold, Kind, Task

#: Integer units for the longest task when no power of ten makes the times whole (the problem
#: refuses a positive time below half a unit, :func:`ppopt.checks.check_time_scale`).
RESOLUTION = TIME_RESOLUTION
#: The largest power of ten tried for times (kept small: the horizon grows with it).
MAX_DIGITS = 4
#: The largest power of ten tried for memory amounts (only capacities grow with it).
MAX_MEMORY_DIGITS = 9


@dataclass(frozen=True)
class Scale:
    """How floats map to integers: ``round(x * factor)``; ``exact`` when nothing was rounded."""

    factor: float
    exact: bool

    def to_int(self, value: float) -> int:
        """The nearest integer of a scaled value."""
        return round(value * self.factor)

    def to_float(self, value: float) -> float:
        """A scaled integer back in the user's unit."""
        return value / self.factor


def _decimal_factor(
    values: Sequence[float], limit: float, max_digits: int = MAX_DIGITS
) -> float | None:
    """The smallest power of ten making every value whole, if it keeps values under ``limit``."""
    for digits in range(max_digits + 1):
        factor = 10.0**digits
        if max(values) * factor > limit:
            return None
        if all(abs(v * factor - round(v * factor)) <= 1e-9 * max(1.0, v * factor) for v in values):
            return factor
    return None


def time_scale(problem: Problem) -> Scale:
    """The integer scaling of a problem's times (durations and latency)."""
    durations = [*problem.forward, *problem.backward, *(problem.weight or ())]
    durations += problem.recompute_times or ()
    durations += problem.offload_times or ()
    durations += problem.overlap or ()
    if problem.microbatch_scale is not None:  # every task's own duration must be whole
        durations += [v * c for v in durations for c in set(problem.microbatch_scale)]
    values = durations + [latency for _, latency in named_values(problem.p2p)]
    positive = [v for v in values if v > 0]
    factor = _decimal_factor(positive, limit=10.0 * RESOLUTION)
    if factor is not None:
        return Scale(factor, exact=True)
    return Scale(RESOLUTION / max(positive), exact=False)


def memory_scale(amounts: Sequence[float]) -> Scale:
    """The integer scaling of memory amounts (activations, retained parts, limits)."""
    positive = [v for v in amounts if v > 0 and math.isfinite(v)]
    if not positive:
        return Scale(1.0, exact=True)
    factor = _decimal_factor(positive, limit=1e15, max_digits=MAX_MEMORY_DIGITS)
    if factor is not None:
        return Scale(factor, exact=True)
    return Scale(1e9 / max(positive), exact=False)


def _whole(duration: float, scale: Scale) -> int:
    """A duration in integer units: at least 1, or 0 for a task that runs no work."""
    return max(1, scale.to_int(duration)) if duration > 0 else 0


def scaled_durations(problem: Problem, scale: Scale) -> dict[tuple[str, int], int]:
    """Integer duration of each (kind, stage) of the reference micro-batch: at least 1, or 0
    for a task that runs no work (stage 0's B under ``runtime: torch``)."""
    out: dict[tuple[str, int], int] = {}
    for kind in problem.kinds:
        for s in range(problem.num_stages):
            out[kind, s] = _whole(problem.duration(kind, s), scale)
    return out


def task_durations(problem: Problem, scale: Scale) -> dict[Task, int]:
    """Integer duration of every task (kind, stage, micro-batch): the reference's when the
    micro-batches are uniform, else each task's own scaled duration rounded once."""
    m = problem.num_microbatches
    if problem.microbatch_scale is None:
        per_stage = scaled_durations(problem, scale)
        return {Task(Kind(k), s, i): d for (k, s), d in per_stage.items() for i in range(m)}
    return {
        Task(k, s, i): _whole(problem.duration(k, s, i), scale)
        for k in problem.kinds
        for s in range(problem.num_stages)
        for i in range(m)
    }


def integer_problem(problem: Problem, scale: Scale) -> Problem:
    """The problem with every time in the solver's integer units (as floats)."""
    durations = scaled_durations(problem, scale)

    def column(kind: str) -> tuple[float, ...]:
        return tuple(float(durations[(kind, s)]) for s in range(problem.num_stages))

    forward, backward = column("F"), column("B")
    overlap = None
    if problem.overlap is not None:  # rounded, then kept within the rule's range
        overlap = tuple(
            float(min(f + b, max(f, b, scale.to_int(o))))
            for o, f, b in zip(problem.overlap, forward, backward, strict=True)
        )
    return replace(
        problem,
        overlap=overlap,
        forward=forward,
        backward=backward,
        weight=column("W") if problem.is_split else None,
        p2p=map_values(problem.p2p, lambda latency: float(scale.to_int(latency))),
        recompute_times=(
            column("R")
            if problem.recompute_times is not None and problem.recompute != Recompute.NONE
            else problem.recompute_times  # unused without recomputation
        ),
        offload_times=column("O") if problem.offload != Offload.NONE else problem.offload_times,
    )


@dataclass(frozen=True)
class IntMemory:
    """The memory rules in integer units: per stage, each of the problem's holds
    (:meth:`Problem.holds`) with its amount rounded, and the capacity of each device."""

    holds: tuple[tuple[Hold, ...], ...]
    capacity: tuple[int, ...]
    #: False when amounts were rounded up and capacities down: the integer model is then
    #: stricter than the problem, and its bound no bound of the problem.
    exact: bool = True
    recomputed_holds: tuple[tuple[Hold, ...], ...] = ()  # per stage, of a recomputed micro-batch
    #: With scaled micro-batches, the holds of each (stage, recomputed, micro-batch).
    scaled_holds: dict[tuple[int, bool, int], tuple[Hold, ...]] | None = None
    offloaded_holds: tuple[tuple[Hold, ...], ...] = ()  # per stage, of an offloaded micro-batch

    def holds_of(
        self, stage: int, recomputed: bool, microbatch: int = 0, offloaded: bool = False
    ) -> tuple[Hold, ...]:
        """A stage's holds for a micro-batch that is ``recomputed`` (or ``offloaded``) there,
        or neither (offload is not combined with scaled micro-batches)."""
        if offloaded:
            return self.offloaded_holds[stage]
        if self.scaled_holds is not None:
            return self.scaled_holds[stage, recomputed, microbatch]
        return self.recomputed_holds[stage] if recomputed else self.holds[stage]

    def held(self, stage: int, alloc: str | None = None, free: str | None = None) -> int:
        """Total amount of a stage's holds taken by ``alloc`` and/or freed by ``free``."""
        return sum(
            int(h.amount)
            for h in self.holds[stage]
            if (alloc is None or h.alloc == alloc) and (free is None or h.free == free)
        )


def memory_data(problem: Problem, limit: tuple[float, ...] | None) -> IntMemory | None:
    """The integer memory rules (``None`` without a limit), rounded so the model never
    exceeds the true limit (amounts up, capacity down) when the scaling is not exact."""
    if limit is None:
        return None
    stages = range(problem.num_stages)
    again = problem.recompute != Recompute.NONE
    amounts = [h.amount for s in stages for r in (False, again) for h in problem.holds(s, r)]
    factors = sorted(set(problem.microbatch_scale or ()))
    amounts += [
        h.amount * c
        for s in stages
        for r in (False, again)
        for h in problem.holds(s, r)
        for c in factors
    ]
    away = problem.offload != Offload.NONE
    scale = memory_scale([*problem.activation, *amounts, *limit])
    # exact only if every scaled value is whole up to float noise: the decimal search's
    # relative tolerance passes e.g. 3.7123089870894113 at 1e8 units (0.3 units off)
    exact = scale.exact and all(
        abs(x * scale.factor - round(x * scale.factor)) <= 1e-6 for x in [*amounts, *limit]
    )

    def up(x: float) -> int:
        return round(x * scale.factor) if exact else math.ceil(x * scale.factor)

    def rounded(recomputed: bool, offloaded: bool = False) -> tuple[tuple[Hold, ...], ...]:
        return tuple(
            tuple(
                h._replace(amount=up(h.amount))
                for h in problem.holds(s, recomputed, offloaded=offloaded)
            )
            for s in stages
        )

    def scaled() -> dict[tuple[int, bool, int], tuple[Hold, ...]]:
        return {
            (s, r, i): tuple(h._replace(amount=up(h.amount)) for h in problem.holds(s, r, i))
            for s in stages
            for r in {False, again}
            for i in range(problem.num_microbatches)
        }

    holds = rounded(False)
    per_microbatch = scaled() if problem.microbatch_scale is not None else None
    if exact:
        capacity = tuple(round(c * scale.factor) for c in limit)
    else:
        capacity = tuple(math.floor(c * scale.factor) for c in limit)
    offloaded = rounded(False, True) if away else ()
    return IntMemory(
        holds, capacity, exact, rounded(True) if again else (), per_microbatch, offloaded
    )


def bound_ratio(problem: Problem, scale: Scale, memory: IntMemory | None) -> float:
    """How far the integer problem's times may exceed the float problem's, as the factor
    ``r <= 1`` that turns a lower bound of the integer problem into one of the float problem:
    ``bound_int * r / factor``.

    Every true duration and latency ``t`` is at least ``r * int(t) / factor``. Stretch a float
    schedule by ``factor / r``: each task then lasts at least its integer duration and each wait
    at least its integer latency, so shrinking the tasks back to their integer durations (same
    starts) gives a schedule of the integer problem (memory is held no longer than before).
    Hence ``T * factor / r >= OPT_int >= bound_int``. ``r = 1`` when every time scaled exactly
    (a rounded-up tiny time, e.g. ``1e-12`` -> 1 unit, makes ``r`` tiny and the bound weak but
    true). ``r = 0`` (no bound) when memory was rounded (``memory.exact`` false): the integer
    model then forbids schedules the problem allows."""
    if memory is not None and not memory.exact:
        return 0.0
    pairs = [(problem.duration(*task), whole) for task, whole in _distinct(problem, scale).items()]
    pairs += [(latency, scale.to_int(latency)) for _, latency in named_values(problem.p2p)]
    ratio = 1.0
    for value, whole in pairs:
        if whole <= 0:
            continue  # a zero integer time is never longer than the true one
        scaled = value * scale.factor
        if abs(scaled - whole) <= 1e-9 * whole:
            continue
        ratio = min(ratio, scaled / whole)
    return ratio


def _distinct(problem: Problem, scale: Scale) -> dict[Task, int]:
    """One task of each distinct integer duration class (every task when scaled)."""
    if problem.microbatch_scale is None:
        return {Task(Kind(k), s, 0): d for (k, s), d in scaled_durations(problem, scale).items()}
    return task_durations(problem, scale)


def integer_timeline(
    problem: Problem,
    schedule_ops: Sequence[Sequence[Op]],
    durations: dict[Task, int],
    links: Problem,
) -> tuple[tuple[Op, ...], ...] | None:
    """A valid float schedule's orders re-timed tight in integer units (each task at the
    latest of its device's previous end and each dependency's end plus the integer latency),
    for hinting a model whose durations no integer :class:`Problem` holds. Tasks are timed
    in order of their float start, which puts every dependency and device predecessor first
    (``None`` if a zero-length tie breaks that). ``links`` is :func:`integer_problem`: its
    latencies are the integer ones."""
    end: dict[Task, int] = {}
    device_end = [0] * problem.num_devices
    rows: list[list[Op]] = [[] for _ in range(problem.num_devices)]
    flat = sorted((op.start, op.end, k, op) for row in schedule_ops for k, op in enumerate(row))
    for _, _, _, op in flat:
        task = op.task
        start = device_end[op.device]
        for dep in problem.dependencies(task):
            if dep not in end:
                return None
            start = max(start, end[dep] + int(links.latency(dep, task)))
        end[task] = start + durations[task]
        device_end[op.device] = end[task]
        rows[op.device].append(op._replace(start=float(start), end=float(end[task])))
    return tuple(tuple(row) for row in rows)


def rounding_floor(problem: Problem, scale: Scale) -> float:
    """The factor ``r' <= 1`` with every integer time at least ``r' * t * factor``: an
    integer schedule shrunk by ``r' * factor`` is a float one, so ``r' * factor`` times a
    float lower bound is a lower bound of the integer model (0 when a time rounds to 0)."""
    pairs = [(problem.duration(*t), whole) for t, whole in _distinct(problem, scale).items()]
    pairs += [(latency, scale.to_int(latency)) for _, latency in named_values(problem.p2p)]
    ratio = 1.0
    for value, whole in pairs:
        if value > 0:
            ratio = min(ratio, whole / (value * scale.factor))
    return max(0.0, ratio)
