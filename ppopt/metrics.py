"""The numbers of docs/contract.md §5, computed from a timed schedule.

bubble rate = idle share of device time, ``1 - work / (p * T)``; bubble ratio = idle over
compute, ``(p * T - work) / work`` (Megatron's ``(p-1)/m``); the zero-bubble paper's bubble
is ``(span - per-device work) / span`` on the device with the largest span.
Memory follows the problem's holds (docs/contract.md §1): a hold is allocated when its task
starts and freed when its task ends; at one instant frees are applied before allocations.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ppopt.problem import Problem
from ppopt.schedule import Op, Schedule


class Objective(StrEnum):
    """What the optimizer minimises: the makespan, or the largest per-device span (first
    start to last end on one device), the period of back-to-back steps (docs/contract.md §5)."""

    MAKESPAN = "makespan"
    SPAN = "span"


@dataclass(frozen=True)
class Metrics:
    """Every metric of a schedule (docs/contract.md §5)."""

    makespan: float
    span: float
    bubble_rate: float
    bubble_ratio: float
    zb_bubble: float
    busy: tuple[float, ...]
    idle: tuple[float, ...]
    peak_memory: tuple[float, ...]

    def to_dict(self) -> dict[str, object]:
        """The ``metrics`` object of the schedule file (docs/contract.md §4)."""
        return {
            "makespan": self.makespan,
            "span": self.span,
            "bubble_rate": self.bubble_rate,
            "bubble_ratio": self.bubble_ratio,
            "zb_bubble": self.zb_bubble,
            "busy": list(self.busy),
            "idle": list(self.idle),
            "peak_memory": list(self.peak_memory),
        }


def compute_metrics(schedule: Schedule) -> Metrics:
    """All metrics of a schedule."""
    p = schedule.problem.num_devices
    makespan = schedule.makespan
    busy = schedule.busy()
    work = sum(busy)
    spans = device_spans(schedule)
    widest = max(range(p), key=lambda d: spans[d])
    span = spans[widest]
    return Metrics(
        makespan=makespan,
        span=span,
        bubble_rate=1.0 - work / (p * makespan) if makespan > 0 else 0.0,
        bubble_ratio=(p * makespan - work) / work if work > 0 else 0.0,
        # busy sums float durations, which can exceed the span by a rounding error
        zb_bubble=max(0.0, span - busy[widest]) / span if span > 0 else 0.0,
        busy=busy,
        idle=tuple(makespan - b for b in busy),
        peak_memory=peak_memory(schedule),
    )


def device_spans(schedule: Schedule) -> tuple[float, ...]:
    """Per device: first start to last end (0 for a device with no task)."""
    return tuple(row[-1].end - row[0].start if row else 0.0 for row in schedule.device_ops)


def memory_events(problem: Problem, ops: tuple[Op, ...]) -> list[tuple[float, int, float]]:
    """A device's memory changes as ``(time, order, delta)``, sorted; frees sort first. A
    task takes its holds' memory (:meth:`Problem.holds`) when it starts and frees what they
    end when it ends."""
    events = []
    for op in ops:
        taken, freed = problem.op_memory_change(op.kind, op.stage, op.microbatch)
        if taken:
            events.append((op.start, 1, taken))
        if freed:
            events.append((op.end, 0, -freed))
    events.sort()
    return events


def memory_profile(schedule: Schedule, device: int) -> tuple[list[float], list[float]]:
    """Step function of one device's memory: level ``levels[k]`` holds from ``times[k]`` on."""
    times, levels = [0.0], [0.0]
    level = 0.0
    for time, _, delta in memory_events(schedule.problem, device_memory_ops(schedule, device)):
        level += delta
        if time == times[-1]:
            levels[-1] = level
        else:
            times.append(time)
            levels.append(level)
    return times, levels


def device_memory_ops(schedule: Schedule, device: int) -> tuple[Op, ...]:
    """The ops whose holds count on a device: its compute ops and its copies."""
    row = schedule.device_ops[device]
    return row + schedule.copy_ops[device] if schedule.copy_ops else row


def peak_memory(schedule: Schedule) -> tuple[float, ...]:
    """The largest memory each device holds at any instant."""
    peaks = []
    for d in range(schedule.problem.num_devices):
        level = peak = 0.0
        for _, _, delta in memory_events(schedule.problem, device_memory_ops(schedule, d)):
            level += delta
            peak = max(peak, level)
        peaks.append(peak)
    return tuple(peaks)


def improvement(before: float, after: float) -> float:
    """The relative gain of ``after`` over ``before``, ``(before - after) / before`` (0 when
    ``before`` is 0): how the report, the sweep and :mod:`ppopt.runs` state an improvement."""
    return (before - after) / before if before > 0 else 0.0
