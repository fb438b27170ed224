"""The pipeline scheduling problem of CONTRACT §1, as plain data validated on construction.

A problem has ``p`` devices, ``v`` chunks per device (``S = p*v`` virtual stages), ``m``
identical micro-batches and, per virtual stage, forward / backward (/ weight-gradient)
durations and activation-memory amounts. Errors name the config key they come from
(``forward_times[2]: must be > 0, got -1``) so the config loader can pass them straight on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

KINDS = ("F", "B", "W")
PLACEMENTS = ("interleaved", "vshape")


class ProblemError(ValueError):
    """An invalid problem; the message starts with the offending config key."""


class Task(NamedTuple):
    """One pass of one micro-batch through one virtual stage: kind ``F``, ``B`` or ``W``."""

    kind: str
    stage: int
    microbatch: int

    def label(self) -> str:
        """Short human name, 1-based micro-batch as in the pictures: ``F3@s1``."""
        return f"{self.kind}{self.microbatch + 1}@s{self.stage}"


@dataclass(frozen=True)
class MemoryLimit:
    """A per-device activation-memory limit as the user wrote it.

    Exactly one of: nothing (no limit), ``factor`` (N times the peak of the 1F1B baseline on
    its most loaded device, CONTRACT §1) or ``values`` (absolute, one value or one per device).
    """

    factor: float | None = None
    values: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        if self.factor is not None and self.values is not None:
            raise ProblemError("memory.limit: give either a factor (Nx) or absolute values")
        if self.factor is not None:
            _check_positive("memory.limit", self.factor)
        if self.values is not None:
            if not self.values:
                raise ProblemError("memory.limit: empty list")
            for i, value in enumerate(self.values):
                _check_positive(f"memory.limit[{i}]", value)

    @property
    def is_none(self) -> bool:
        """True when there is no limit at all."""
        return self.factor is None and self.values is None

    @classmethod
    def parse(cls, raw: object) -> MemoryLimit:
        """Read ``none``, ``'2x'``, a number or a list of numbers (config or command line)."""
        if raw is None:
            return cls()
        if isinstance(raw, str):
            text = raw.strip().lower()
            if text in ("none", "null", "inf", ""):
                return cls()
            if text.endswith("x"):
                return cls(factor=_parse_number("memory.limit", text[:-1]))
            parts = [part for part in text.replace(",", " ").split() if part]
            return cls(values=tuple(_parse_number("memory.limit", part) for part in parts))
        if isinstance(raw, bool):
            raise ProblemError(f"memory.limit: expected none, Nx or a number, got {raw!r}")
        if isinstance(raw, int | float):
            return cls(values=(float(raw),))
        if isinstance(raw, Sequence):
            return cls(values=tuple(_as_float(f"memory.limit[{i}]", x) for i, x in enumerate(raw)))
        raise ProblemError(f"memory.limit: expected none, Nx or a number, got {raw!r}")

    def to_config(self) -> str | float | list[float]:
        """The value as it would be written in a config file."""
        if self.factor is not None:
            return f"{self.factor:g}x"
        if self.values is not None:
            return self.values[0] if len(self.values) == 1 else list(self.values)
        return "none"


@dataclass(frozen=True)
class Problem:
    """A pipeline-parallel training step to schedule (CONTRACT §1).

    Per-stage tuples have one entry per *virtual* stage. Build one with :meth:`create`, which
    also accepts scalars (same value on every stage) and fills the defaults.
    """

    num_devices: int
    num_microbatches: int
    forward: tuple[float, ...]
    backward: tuple[float, ...]
    weight: tuple[float, ...] | None
    p2p: float
    num_chunks: int
    placement: tuple[int, ...]
    activation: tuple[float, ...]
    retained: tuple[float, ...]
    memory_limit: MemoryLimit = field(default_factory=MemoryLimit)
    placement_name: str = "interleaved"

    def __post_init__(self) -> None:
        _check_count("num_stages", self.num_devices)
        _check_count("num_batches", self.num_microbatches)
        _check_count("num_chunks", self.num_chunks)
        n = self.num_stages
        _check_times("forward_times", self.forward, n)
        _check_times("backward_times", self.backward, n)
        if self.weight is not None:
            _check_times("weight_times", self.weight, n)
        _check_nonnegative("p2p_time", self.p2p)
        self._check_placement()
        _check_lengths("memory.activation", self.activation, n)
        for i, amount in enumerate(self.activation):
            _check_nonnegative(f"memory.activation[{i}]", amount)
        _check_lengths("memory.retained", self.retained, n)
        for i, (kept, amount) in enumerate(zip(self.retained, self.activation, strict=True)):
            _check_nonnegative(f"memory.retained[{i}]", kept)
            if kept > amount:
                raise ProblemError(
                    f"memory.retained[{i}]: must be <= memory.activation[{i}] ({amount:g}), "
                    f"got {kept:g}"
                )
            if kept > 0 and self.weight is None:
                raise ProblemError(
                    f"memory.retained[{i}]: only meaningful with weight_times (split backward)"
                )
        values = self.memory_limit.values
        if values is not None and len(values) not in (1, self.num_devices):
            raise ProblemError(
                f"memory.limit: expected 1 or {self.num_devices} values (one per device), "
                f"got {len(values)}"
            )

    def _check_placement(self) -> None:
        n, p = self.num_stages, self.num_devices
        if len(self.placement) != n:
            raise ProblemError(
                f"placement: expected {n} device indices (num_stages * num_chunks), "
                f"got {len(self.placement)}"
            )
        for s, device in enumerate(self.placement):
            if isinstance(device, bool) or not isinstance(device, int) or not 0 <= device < p:
                raise ProblemError(
                    f"placement[{s}]: must be a device index 0..{p - 1}, got {device!r}"
                )
        for device in range(p):
            held = self.placement.count(device)
            if held != self.num_chunks:
                raise ProblemError(
                    f"placement: device {device} holds {held} stages, expected num_chunks "
                    f"= {self.num_chunks}"
                )

    # ----------------------------------------------------------------------------- building

    @classmethod
    def create(
        cls,
        num_devices: int,
        num_microbatches: int,
        forward: float | Sequence[float] = 1.0,
        backward: float | Sequence[float] = 2.0,
        weight: float | Sequence[float] | None = None,
        p2p: float = 0.0,
        num_chunks: int = 1,
        placement: str | Sequence[int] = "interleaved",
        activation: float | Sequence[float] = 1.0,
        retained: float | Sequence[float] = 0.0,
        memory_limit: MemoryLimit | object = None,
    ) -> Problem:
        """Build a problem from scalars or per-stage sequences, filling the defaults."""
        _check_count("num_stages", num_devices)
        _check_count("num_batches", num_microbatches)
        _check_count("num_chunks", num_chunks)
        n = num_devices * num_chunks
        if isinstance(placement, str):
            name = placement
            stages = placement_stages(placement, num_devices, num_chunks)
        else:
            name = "explicit"
            stages = tuple(placement)
        limit = (
            memory_limit
            if isinstance(memory_limit, MemoryLimit)
            else MemoryLimit.parse(memory_limit)
        )
        return cls(
            num_devices=num_devices,
            num_microbatches=num_microbatches,
            forward=_per_stage("forward_times", forward, n),
            backward=_per_stage("backward_times", backward, n),
            weight=None if weight is None else _per_stage("weight_times", weight, n),
            p2p=_as_float("p2p_time", p2p),
            num_chunks=num_chunks,
            placement=stages,
            activation=_per_stage("memory.activation", activation, n),
            retained=_per_stage("memory.retained", retained, n),
            memory_limit=limit,
            placement_name=name,
        )

    def with_limit(self, limit: MemoryLimit) -> Problem:
        """The same problem under another memory limit."""
        return replace(self, memory_limit=limit)

    def unsplit(self) -> Problem:
        """The classic problem: one full backward of duration B + W, nothing retained."""
        if self.weight is None:
            return self
        full = tuple(b + w for b, w in zip(self.backward, self.weight, strict=True))
        zeros = tuple(0.0 for _ in self.retained)
        return replace(self, backward=full, weight=None, retained=zeros)

    def merged_chunks(self) -> Problem:
        """One stage per device, each the sum of that device's chunks (the ``Nx`` reference)."""
        if self.num_chunks == 1 and self.placement == tuple(range(self.num_devices)):
            return self

        def per_device(values: tuple[float, ...]) -> tuple[float, ...]:
            return tuple(sum(values[s] for s in self.stages_on(d)) for d in range(self.num_devices))

        return Problem(
            num_devices=self.num_devices,
            num_microbatches=self.num_microbatches,
            forward=per_device(self.forward),
            backward=per_device(self.backward),
            weight=None if self.weight is None else per_device(self.weight),
            p2p=self.p2p,
            num_chunks=1,
            placement=tuple(range(self.num_devices)),
            activation=per_device(self.activation),
            retained=per_device(self.retained),
            memory_limit=self.memory_limit,
        )

    # ------------------------------------------------------------------------------ queries

    @property
    def num_stages(self) -> int:
        """Number of virtual stages ``S = p * v``."""
        return self.num_devices * self.num_chunks

    @property
    def is_split(self) -> bool:
        """True when the backward is split into B (input gradient) and W (weight gradient)."""
        return self.weight is not None

    @property
    def kinds(self) -> tuple[str, ...]:
        """The task kinds of this problem: ``F, B`` or ``F, B, W``."""
        return KINDS if self.is_split else KINDS[:2]

    @property
    def num_tasks(self) -> int:
        """Total number of tasks."""
        return len(self.kinds) * self.num_stages * self.num_microbatches

    def device_of(self, stage: int) -> int:
        """The device that runs a virtual stage."""
        return self.placement[stage]

    def stages_on(self, device: int) -> tuple[int, ...]:
        """The virtual stages a device holds, in increasing order."""
        return tuple(s for s, d in enumerate(self.placement) if d == device)

    def duration(self, kind: str, stage: int) -> float:
        """How long a task of this kind runs on this virtual stage."""
        if kind == "F":
            return self.forward[stage]
        if kind == "B":
            return self.backward[stage]
        if kind == "W" and self.weight is not None:
            return self.weight[stage]
        raise KeyError(f"no {kind} tasks in this problem")

    def tasks(self) -> list[Task]:
        """Every task of the problem."""
        return [
            Task(kind, s, i)
            for kind in self.kinds
            for s in range(self.num_stages)
            for i in range(self.num_microbatches)
        ]

    def dependencies(self, task: Task) -> tuple[Task, ...]:
        """The tasks that must end before ``task`` may start (CONTRACT §1)."""
        kind, s, i = task
        if kind == "F":
            return (Task("F", s - 1, i),) if s > 0 else ()
        if kind == "B":
            return (Task("B", s + 1, i),) if s < self.num_stages - 1 else (Task("F", s, i),)
        return (Task("B", s, i),)

    def latency(self, before: Task, after: Task) -> float:
        """Extra wait on a dependency edge: ``p2p`` across devices, nothing on one device."""
        same = self.placement[before.stage] == self.placement[after.stage]
        return 0.0 if same else self.p2p

    def forward_head(self, stage: int) -> float:
        """Earliest start of F(stage, ·): the forward chain before it, latencies included."""
        time = 0.0
        for s in range(stage):
            time += self.forward[s] + self.latency(Task("F", s, 0), Task("F", s + 1, 0))
        return time

    def round_trip(self, stage: int) -> float:
        """From the end of F(stage, i) to the earliest start of B(stage, i): the forward and
        backward chains above the stage, latencies included."""
        time = 0.0
        for s in range(stage + 1, self.num_stages):
            hop = self.latency(Task("F", s - 1, 0), Task("F", s, 0))
            time += 2 * hop + self.forward[s] + self.backward[s]
        return time

    def allocation(self, stage: int) -> float:
        """Memory a forward of this stage allocates when it starts."""
        return self.activation[stage]

    def release(self, kind: str, stage: int) -> float:
        """Memory a backward or weight task of this stage frees when it ends."""
        if kind == "F":
            return 0.0
        if kind == "B":
            return self.activation[stage] - self.retained[stage]
        return self.retained[stage]

    def total_work(self) -> float:
        """Sum of all task durations."""
        per_mb = sum(self.forward) + sum(self.backward) + sum(self.weight or ())
        return per_mb * self.num_microbatches

    def device_work(self, device: int) -> float:
        """Sum of the task durations on one device."""
        kinds = self.kinds
        per_mb = sum(self.duration(k, s) for s in self.stages_on(device) for k in kinds)
        return per_mb * self.num_microbatches


def placement_stages(name: str, num_devices: int, num_chunks: int) -> tuple[int, ...]:
    """Device of each virtual stage for a named placement (CONTRACT §1)."""
    n = num_devices * num_chunks
    if name == "interleaved":
        return tuple(s % num_devices for s in range(n))
    if name == "vshape":
        if num_chunks != 2:
            raise ProblemError(f"placement: vshape needs num_chunks = 2, got {num_chunks}")
        return tuple(s if s < num_devices else 2 * num_devices - 1 - s for s in range(n))
    raise ProblemError(
        f"placement: expected one of {', '.join(PLACEMENTS)} or a list of device indices, "
        f"got {name!r}"
    )


# ---------------------------------------------------------------------------------- checks


def _parse_number(key: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ProblemError(f"{key}: expected a number, got {text!r}") from None
    return _as_float(key, value)


def _as_float(key: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProblemError(f"{key}: expected a number, got {value!r}")
    if not math.isfinite(value):
        raise ProblemError(f"{key}: must be finite, got {value}")
    return float(value)


def _per_stage(key: str, value: object, n: int) -> tuple[float, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        return (_as_float(key, value),) * n
    return tuple(_as_float(f"{key}[{i}]", x) for i, x in enumerate(value))


def _check_count(key: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProblemError(f"{key}: expected a whole number >= 1, got {value!r}")
    if value < 1:
        raise ProblemError(f"{key}: must be >= 1, got {value}")


def _check_lengths(key: str, values: tuple[float, ...], n: int) -> None:
    if len(values) != n:
        raise ProblemError(f"{key}: expected {n} values (one per virtual stage), got {len(values)}")


def _check_times(key: str, values: tuple[float, ...], n: int) -> None:
    _check_lengths(key, values, n)
    for i, value in enumerate(values):
        _check_positive(f"{key}[{i}]", value)


def _check_positive(key: str, value: float) -> None:
    _as_float(key, value)
    if value <= 0:
        raise ProblemError(f"{key}: must be > 0, got {value:g}")


def _check_nonnegative(key: str, value: float) -> None:
    _as_float(key, value)
    if value < 0:
        raise ProblemError(f"{key}: must be >= 0, got {value:g}")
