"""A timed schedule: for each device, its tasks in order with their start and end times."""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from ppopt.problem import Problem
from ppopt.tasks import Kind, Task

#: Per-device task orders: ``orders[d]`` is the sequence of tasks device ``d`` runs.
Orders = Sequence[Sequence[Task]]


class Op(NamedTuple):
    """One task placed in time on its device (a named tuple: cheap at 100k+ tasks)."""

    device: int
    kind: Kind
    stage: int
    microbatch: int
    start: float
    end: float

    @property
    def task(self) -> Task:
        """The task this op runs."""
        return Task(self.kind, self.stage, self.microbatch)

    @property
    def duration(self) -> float:
        """End minus start."""
        return self.end - self.start


@dataclass(frozen=True)
class Schedule:
    """A named schedule of a problem: ``device_ops[d]`` are device ``d``'s ops in run order.

    ``interrupted`` marks a best-so-far schedule returned because the user stopped a solve.
    ``copy_ops[d]`` are device ``d``'s copy-lane ops (offloads and reloads, :mod:`ppopt.offload`)
    in run order; empty when nothing is offloaded. ``device_ops`` holds the compute lane only.
    ``pairs`` are the overlapped ``(F, B)`` pairs (docs/contract.md §1): both ops of a pair are
    in their device's row one after the other, F first, each with the pair's start and end.
    """

    problem: Problem
    name: str
    device_ops: tuple[tuple[Op, ...], ...]
    interrupted: bool = field(default=False)
    copy_ops: tuple[tuple[Op, ...], ...] = field(default=())
    pairs: frozenset[tuple[Task, Task]] = field(default=frozenset())

    def __post_init__(self) -> None:
        if len(self.device_ops) != self.problem.num_devices:
            raise ValueError(
                f"schedule has {len(self.device_ops)} device rows, "
                f"problem has {self.problem.num_devices} devices"
            )

    def ops(self) -> Iterator[Op]:
        """Every op, device by device, each device in run order."""
        for row in self.device_ops:
            yield from row

    def all_ops(self) -> Iterator[Op]:
        """Every op of both lanes: the compute ops (as :meth:`ops`), then the copies."""
        yield from self.ops()
        for row in self.copy_ops:
            yield from row

    def orders(self) -> list[list[Task]]:
        """The per-device task orders (what the timeline engine takes), copies merged in."""
        if not self.copy_ops:
            return [[op.task for op in row] for row in self.device_ops]
        return [
            merged_order(row, copies)
            for row, copies in zip(self.device_ops, self.copy_ops, strict=True)
        ]

    @property
    def makespan(self) -> float:
        """End of the last task; the schedule starts at 0."""
        return max((row[-1].end for row in self.device_ops if row), default=0.0)

    def renamed(self, name: str) -> Schedule:
        """The same schedule under another name."""
        return Schedule(
            self.problem, name, self.device_ops, self.interrupted, self.copy_ops, self.pairs
        )

    def pair_time(self) -> tuple[float, ...]:
        """Per device, the time its pairs run (counted once per pair, not per part)."""
        paired = {f for f, _ in self.pairs}
        out = [0.0] * len(self.device_ops)
        for op in self.ops():
            if op.task in paired:
                out[op.device] += op.end - op.start
        return tuple(out)

    def busy(self) -> tuple[float, ...]:
        """Per device, the time it computes (a pair counted once)."""
        plain = tuple(sum(op.end - op.start for op in row) for row in self.device_ops)
        if not self.pairs:
            return plain
        return tuple(b - extra for b, extra in zip(plain, self.pair_time(), strict=True))

    def pair_saving(self) -> float:
        """Time the pairs save against running their parts apart (sum over pairs)."""
        problem = self.problem
        return sum(
            problem.duration(f.kind, f.stage)
            + problem.duration(b.kind, b.stage)
            - problem.pair_duration(f.stage, b.stage)
            for f, b in self.pairs
        )


def merged_order(compute: Sequence[Op], copies: Sequence[Op]) -> list[Task]:
    """One device's task order with its copies placed among its compute tasks so that the
    engine's lane rules (:mod:`ppopt.offload`) hold for these times: an offload right after
    the last compute task that starts before the offload ends, a reload right after the last
    compute task that ends by the reload's start; copies keep their lane order."""
    starts = [op.start for op in compute]
    ends = [op.end for op in compute]
    after: list[list[Task]] = [[] for _ in range(len(compute) + 1)]
    place = 0
    for op in copies:
        if op.kind == Kind.O:
            here = bisect.bisect_left(starts, op.end)
        else:
            here = bisect.bisect_right(ends, op.start)
        place = max(place, here)
        after[place].append(op.task)
    out = list(after[0])
    for op, tail in zip(compute, after[1:], strict=True):
        out.append(op.task)
        out += tail
    return out
