"""From a layer profile to a pipeline problem: cut the layers into virtual stages.

A :class:`LayeredProblem` is everything of a :class:`~ppopt.problem.Problem` but the stage
times: a :class:`~ppopt.layers.Profile` and the devices, chunks, placement, micro-batches,
latency, memory limit and runtime. :meth:`LayeredProblem.problem` cuts it by a list of layers
per virtual stage (contiguous ranges in model order): a stage's F, B, W times, activation
and parameter memory are the sums over its layers. Nothing else is added per stage
boundary: the hand-off between two stages on different devices is the problem's
``p2p_time`` (one latency per edge, docs/contract.md §1), between two stages on one device
nothing.

Memory is the same for every partition, so partitions compare fairly: an ``Nx`` limit is N
times the 1F1B peak of the *even* split (:func:`even_sizes`), turned into absolute units
once; when the layers give parameter memory, an absolute limit is the device's whole memory
and each device's activations get what its parameters leave.

The partitions ppopt compares against live here too: :func:`even_sizes`, torchtitan's
first/last stage with fewer layers (:func:`fewer_first_last_sizes`) and the classic
balanced-by-time min-max split (:func:`balanced_sizes`). Choosing the best partition is an
optimisation and lives in :mod:`ppopt.solver.partition`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

from ppopt.checks import check_count
from ppopt.errors import ProblemError
from ppopt.layers import Partition, Profile, check_sizes
from ppopt.limits import DEFAULT_LIMIT, MemoryLimit, within
from ppopt.problem import Problem
from ppopt.runtime import Runtime
from ppopt.tasks import device_name

#: ``partition`` words of the config (docs/contract.md §2); a list of layer counts also works.
PARTITION_WORDS = ("even", "auto")


@dataclass(frozen=True)
class LayeredProblem:
    """A problem whose stages are still to be cut from a layer profile (see the module)."""

    profile: Profile
    num_devices: int
    num_microbatches: int
    num_chunks: int = 1
    placement: str | tuple[int, ...] = "interleaved"
    p2p: float = 0.0
    memory_limit: MemoryLimit = DEFAULT_LIMIT
    runtime: Runtime | str = Runtime.ABSTRACT

    def __post_init__(self) -> None:
        check_count("num_stages", self.num_devices)
        check_count("num_batches", self.num_microbatches)
        check_count("num_chunks", self.num_chunks)
        if len(self.profile) < self.num_stages:
            raise ProblemError(
                f"layers: the profile has {len(self.profile)} layers, fewer than the "
                f"{self.num_stages} virtual stages (num_stages x num_chunks); every stage "
                "needs at least one layer"
            )
        self.device_memory  # noqa: B018 - builds, so checks, every setting but the partition

    @property
    def num_stages(self) -> int:
        """Virtual stages ``S = p * v``."""
        return self.num_devices * self.num_chunks

    @cached_property
    def even(self) -> Problem:
        """The even split's problem under the limit as the user wrote it (the unit of ``Nx``)."""
        sizes = even_sizes(len(self.profile), self.num_stages)
        return _cut(self, self.profile, sizes, self.memory_limit)

    @cached_property
    def device_memory(self) -> tuple[float, ...] | None:
        """Each device's memory limit in absolute units, the same for every partition."""
        caps = self.even.memory_caps
        if caps is not None and min(caps) <= 0:
            raise ProblemError(
                f"memory.limit: {self.memory_limit.to_config()} of the even split's 1F1B peak "
                "is 0 (no layer gives activation memory); give an absolute limit or none"
            )
        return caps

    @property
    def has_parameters(self) -> bool:
        """True when parameters count against the limit: some layer gives its parameter
        memory and the limit is absolute (an ``Nx`` limit is in activation units)."""
        return self.memory_limit.values is not None and any(
            layer.parameters is not None for layer in self.profile.layers
        )

    def problem(self, sizes: Sequence[int]) -> Problem:
        """The problem of one partition (``sizes[s]`` layers for virtual stage ``s``).

        Raises :class:`ProblemError` for counts that are not a partition of the layers, and
        when a device's parameters alone exceed its memory limit."""
        sizes = tuple(sizes)
        check_sizes(sizes, len(self.profile), self.num_stages)
        return _cut(self, self.profile, sizes, self._limit(sizes))

    def fits(self, sizes: Sequence[int]) -> bool:
        """Whether every device's parameters leave room for activations under the limit."""
        caps = self.device_memory
        if caps is None or not self.has_parameters:
            return True
        params = self.device_parameters(sizes)
        return all(not within(cap, held) for cap, held in zip(caps, params, strict=True))

    def device_parameters(self, sizes: Sequence[int]) -> tuple[float, ...]:
        """Parameter memory each device holds under a partition."""
        per_stage = [self.profile.sums(a, b + 1).parameters for a, b in _ranges(sizes)]
        placement = self.even.placement
        return tuple(
            sum(per_stage[s] for s in range(self.num_stages) if placement[s] == d)
            for d in range(self.num_devices)
        )

    def _limit(self, sizes: tuple[int, ...]) -> MemoryLimit:
        """The limit on activations: the device's memory less its parameters (absolute)."""
        caps = self.device_memory
        if caps is None:
            return MemoryLimit()
        if not self.has_parameters:
            return MemoryLimit(values=caps)
        left = []
        for d, (cap, held) in enumerate(zip(caps, self.device_parameters(sizes), strict=True)):
            if within(cap, held):
                raise ProblemError(
                    f"memory.limit: {device_name(d)} holds {held:g} parameter memory under this "
                    f"partition, which leaves nothing of its limit {cap:g} for activations"
                )
            left.append(cap - held)
        return MemoryLimit(values=tuple(left))


def _cut(
    layered: LayeredProblem, profile: Profile, sizes: tuple[int, ...], limit: MemoryLimit
) -> Problem:
    """The problem of ``profile`` cut by ``sizes`` under ``limit``."""
    stages = [profile.sums(a, b + 1) for a, b in _ranges(sizes)]
    problem = Problem.create(
        num_devices=layered.num_devices,
        num_microbatches=layered.num_microbatches,
        forward=[s.forward for s in stages],
        backward=[s.backward for s in stages],
        weight=[s.weight or 0.0 for s in stages] if profile.is_split else None,
        p2p=layered.p2p,
        num_chunks=layered.num_chunks,
        placement=layered.placement,
        activation=[s.activation for s in stages],
        memory_limit=limit,
        runtime=layered.runtime,
    )
    return replace(problem, partition=Partition(profile.names, sizes))


def _ranges(sizes: Sequence[int]) -> Iterator[tuple[int, int]]:
    start = 0
    for size in sizes:
        yield start, start + size - 1
        start += size


def stage_partition(problem: Problem) -> Partition:
    """The problem's partition; refused (one line) when its stages were not cut from layers."""
    if problem.partition is None:
        raise ProblemError(
            "this schedule has no partition: its stages were not cut from layers (give "
            "layers: in the config)"
        )
    return problem.partition


# ------------------------------------------------------------------- baseline partitions


def even_sizes(num_layers: int, num_stages: int) -> tuple[int, ...]:
    """As equal layer counts as can be; the first ``num_layers mod S`` stages get one more."""
    base, extra = divmod(num_layers, num_stages)
    return tuple(base + (1 if s < extra else 0) for s in range(num_stages))


def fewer_first_last_sizes(
    num_layers: int, num_stages: int, first: int, last: int
) -> tuple[int, ...] | None:
    """torchtitan's split with the first stage ``first`` and the last ``last`` layers
    lighter (its ``pipeline_parallel_first/last_stage_less_layers``, i.e. the embedding and
    the output counted as extra layers): the layers plus ``first + last`` phantom ones are
    split evenly, then the phantoms are taken off the ends. ``None`` when a stage would be
    left empty."""
    sizes = list(even_sizes(num_layers + first + last, num_stages))
    sizes[0] -= first
    sizes[-1] -= last
    return tuple(sizes) if min(sizes) >= 1 else None


def fewer_first_last_offsets(num_layers: int, num_stages: int) -> list[tuple[int, int]]:
    """Every ``(first, last)`` offset pair that leaves no stage empty."""
    top = num_layers // num_stages
    return [
        (a, b)
        for a in range(top)
        for b in range(top)
        if fewer_first_last_sizes(num_layers, num_stages, a, b) is not None
    ]


def balanced_sizes(profile: Profile, num_stages: int) -> tuple[int, ...]:
    """The classic balanced-by-time split: contiguous ranges minimising the largest stage's
    F + B + W per micro-batch (a min-max dynamic program over cut points, O(S n^2))."""
    step = profile.prefix("step")
    return bottleneck_partition(len(profile), num_stages, lambda _s, a, b: step[b] - step[a])[1]


#: The cost of one stage in :func:`bottleneck_partition`: ``(stage, start, stop)`` to a number.
StageCost = Callable[[int, int, int], float]


def bottleneck_partition(
    num_layers: int, num_stages: int, cost: StageCost
) -> tuple[float, tuple[int, ...]]:
    """Contiguous ranges minimising ``max_s cost(s, start, stop)`` over every partition of
    ``num_layers`` layers into ``num_stages`` non-empty ranges (``start..stop-1``; an exact
    dynamic program over cut points): the smallest maximum and its layer counts."""
    n, big = num_layers, float("inf")
    # best[s][j]: the least max cost of stages 0..s-1 holding layers 0..j-1
    best = [[big] * (n + 1) for _ in range(num_stages + 1)]
    cut = [[0] * (n + 1) for _ in range(num_stages + 1)]
    best[0][0] = 0.0
    for s in range(1, num_stages + 1):
        for j in range(s, n - (num_stages - s) + 1):
            for i in range(s - 1, j):
                if best[s - 1][i] == big:
                    continue
                value = max(best[s - 1][i], cost(s - 1, i, j))
                if value < best[s][j]:
                    best[s][j], cut[s][j] = value, i
    sizes, j = [], n
    for s in range(num_stages, 0, -1):
        i = cut[s][j]
        sizes.append(j - i)
        j = i
    return best[num_stages][n], tuple(reversed(sizes))
