"""The pipeline scheduling problem of docs/contract.md §1, as plain data validated on construction.

A problem has ``p`` devices, ``v`` chunks per device (``S = p*v`` virtual stages), ``m``
identical micro-batches and, per virtual stage, forward / backward (/ weight-gradient)
durations and activation-memory amounts. Errors name the config key they come from
(``forward_times[2]: must be > 0, got -1``) so the config loader can pass them straight on.

The rules of the tasks live here, once: :meth:`Problem.edges` (what each task waits for, and
the latency of each wait), :meth:`Problem.holds` (the memory each micro-batch holds from which
task to which) and :meth:`Problem.duration`. The timeline engine, the validator, the CP-SAT
model and the list scheduler all read them from here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property

from ppopt.checks import (
    check_count,
    check_lengths,
    check_memory_scale,
    check_nonnegative,
    check_time_scale,
    check_times,
    per_stage,
)
from ppopt.errors import NoScheduleError, ProblemError
from ppopt.layers import Partition
from ppopt.limits import DEFAULT_LIMIT, MemoryLimit, per_device, within
from ppopt.links import P2P, check_p2p, is_matrix, named_values, parse_p2p
from ppopt.microbatches import parse_microbatch_scale
from ppopt.offload import Offload, parse_offload
from ppopt.placement import check_placement, placement_stages
from ppopt.recompute import Recompute, RecomputePer, parse_recompute, parse_recompute_per
from ppopt.runtime import Runtime, check_runtime_retained, runtime_retained, runtime_times
from ppopt.tasks import COPY_KINDS, PASS_KINDS, Edge, Hold, Kind, Task, device_name

#: ``(kind, stage)`` of a task with the micro-batch left out: rules are the same for all.
StageKind = tuple[Kind, int]


@dataclass(frozen=True)
class Problem:
    """A pipeline-parallel training step to schedule (docs/contract.md §1).

    Per-stage tuples have one entry per *virtual* stage. Build one with :meth:`create`, which
    also accepts scalars (same value on every stage), the config file's names, and fills the
    defaults (memory limit ``1x``, as the optimizer's default in the CLI).
    """

    num_devices: int
    num_microbatches: int
    forward: tuple[float, ...]
    backward: tuple[float, ...]
    weight: tuple[float, ...] | None
    #: ``p2p_time``: one latency, one per stage boundary or one per device pair (ppopt.links)
    p2p: P2P
    num_chunks: int
    placement: tuple[int, ...]
    activation: tuple[float, ...]
    retained: tuple[float, ...]
    memory_limit: MemoryLimit = field(default=DEFAULT_LIMIT)
    placement_name: str = "interleaved"
    runtime: Runtime = Runtime.ABSTRACT
    #: The layers each virtual stage holds, when the stages were cut from a layer profile
    #: (:mod:`ppopt.partition`); it only names the stages, their times are the fields above.
    partition: Partition | None = None
    recompute: Recompute = Recompute.NONE  # see ppopt.recompute
    recompute_times: tuple[float, ...] | None = None  # None: the forward times
    checkpoint: tuple[float, ...] | None = None  # None: 0 on every stage
    recomputed: frozenset[tuple[int, int]] = frozenset()  # auto: the chosen (stage, mb)
    recompute_per: RecomputePer = RecomputePer.MICROBATCH  # auto: what one choice covers
    #: Per micro-batch, the factor of all its durations and memory (None: all 1, uniform);
    #: see :mod:`ppopt.microbatches`.
    microbatch_scale: tuple[float, ...] | None = None
    offload: Offload = Offload.NONE  # see ppopt.offload
    offload_times: tuple[float, ...] | None = None  # None: the forward times
    offloaded: frozenset[tuple[int, int]] = frozenset()  # auto: the chosen (stage, mb)
    #: ``overlap_times``: per virtual stage, an overlapped F+B pair's duration (None: no pairs)
    overlap: tuple[float, ...] | None = None
    #: ``copies``: 1, or 2 for DualPipe's two model copies (see :meth:`_check_copies`)
    copies: int = 1

    def __post_init__(self) -> None:
        check_count("num_stages", self.num_devices)
        check_count("num_batches", self.num_microbatches)
        check_count("num_chunks", self.num_chunks)
        self._check_copy_counts()
        n = self.num_stages
        check_times("forward_times", self.forward, n)
        object.__setattr__(
            self,
            "microbatch_scale",
            parse_microbatch_scale(self.microbatch_scale, self.num_microbatches),
        )
        self._apply_runtime()
        if self.runtime == Runtime.TORCH and self.weight is not None:
            check_lengths("backward_times", self.backward, n)
            check_nonnegative("backward_times[0]", self.backward[0])  # 0: see ppopt.runtime
            check_times("backward_times", self.backward[1:], n - 1, first=1)
        else:
            check_times("backward_times", self.backward, n)
        if self.weight is not None:
            check_times("weight_times", self.weight, n)
        object.__setattr__(self, "p2p", parse_p2p(self.p2p))
        check_p2p(self.p2p, n, self.num_devices)
        self._check_time_scale()
        check_placement(self.placement, self.num_devices, self.num_chunks)
        self._check_memory()
        if self.partition is not None and len(self.partition.sizes) != n:
            raise ProblemError(
                f"partition: expected {n} layer counts (one per virtual stage), "
                f"got {len(self.partition.sizes)}"
            )
        self._check_recompute()
        self._check_offload()
        self._check_overlap()
        self._check_copies()

    def _check_copy_counts(self) -> None:
        """``copies`` is 1 or 2; with 2, ``p`` and ``m`` even (:meth:`_check_copies`)."""
        if isinstance(self.copies, bool) or self.copies not in (1, 2):
            raise ProblemError(f"copies: must be 1 or 2, got {self.copies!r}")
        p, m = self.num_devices, self.num_microbatches
        if self.copies == 2 and (p % 2 or m % 2):
            key, n = ("num_stages", p) if p % 2 else ("num_batches", m)
            raise ProblemError(f"{key}: copies 2 needs an even {key} (DualPipe), got {n}")

    def _check_copies(self) -> None:
        """``copies: 2`` (DualPipe, docs/contract.md §1): the ``2p`` virtual stages of two
        chunks on the V placement are two copies of a ``p``-stage model, copy 0 its stages
        ``0..p-1`` on devices ``0..p-1`` and copy 1 its stage ``j`` as virtual stage ``p+j``
        on device ``p-1-j``; micro-batches ``0..m/2-1`` run through copy 0, the rest through
        copy 1. Both counts even, as DualPipe's own; the levers whose rules are per
        micro-batch and stage of one chain are refused."""
        if self.copies == 1:
            return
        p = self.num_devices
        if self.num_chunks != 2 or self.placement != placement_stages("vshape", p, 2):
            raise ProblemError(
                "copies: 2 runs copy 1 on the devices in reverse (placement vshape, 2 chunks); "
                f"got placement {self.placement_name} with num_chunks {self.num_chunks}"
            )
        refused = [
            ("memory.recompute", self.recompute != Recompute.NONE),
            ("memory.offload", self.offload != Offload.NONE),
            ("microbatch_scale", self.microbatch_scale is not None),
            ("runtime: torch", self.runtime != Runtime.ABSTRACT),
            ("layers", self.partition is not None),
        ]
        for name, given in refused:
            if given:
                raise ProblemError(f"copies: 2 cannot be combined with {name} yet")

    def _check_overlap(self) -> None:
        """``overlap_times[s]`` lies between ``max(F_s, B_s)`` (a pair is never shorter than
        either part) and ``F_s + B_s`` (never longer than running them apart); a pair is an
        F and a B run as one task, which an R between them would break."""
        if self.overlap is None:
            return
        check_times("overlap_times", self.overlap, self.num_stages)
        for s, (both, f, b) in enumerate(
            zip(self.overlap, self.forward, self.backward, strict=True)
        ):
            if not max(f, b) <= both <= f + b:
                raise ProblemError(
                    f"overlap_times[{s}]: must be between max(forward, backward) = {max(f, b):g} "
                    f"and forward + backward = {f + b:g}, got {both:g}"
                )
        if self.recompute != Recompute.NONE:
            raise ProblemError("overlap_times: cannot be combined with memory.recompute")
        if self.offload != Offload.NONE:
            raise ProblemError("overlap_times: cannot be combined with memory.offload yet")
        if self.microbatch_scale is not None:
            raise ProblemError("overlap_times: cannot be combined with microbatch_scale yet")

    def _check_time_scale(self) -> None:
        """Every time and every sum of them representable, none below the solver's resolution."""
        named = [
            (f"{key}[{s}]", value)
            for key, values in (
                ("forward_times", self.forward),
                ("backward_times", self.backward),
                ("weight_times", self.weight or ()),
            )
            for s, value in enumerate(values)
        ]
        named += [(f"offload_times[{s}]", t) for s, t in enumerate(self.offload_times or ())]
        latencies = named_values(self.p2p)
        per_microbatch = sum(value for _, value in [*named, *latencies])
        per_microbatch += 2 * self.num_stages * self.max_latency
        scales = self.microbatch_scale or (1.0,)
        low, high = min(scales), max(scales)
        if self.microbatch_scale is not None:  # the shortest and longest tasks really run
            named = [(k, v * c) for k, v in named for c in (low, high)]
        named += latencies
        check_time_scale(named, per_microbatch * high * self.num_microbatches * self.num_devices)

    def _apply_runtime(self) -> None:
        """Replace the durations and retained parts by what the runtime really runs
        (:mod:`ppopt.runtime`; idempotent, a no-op for ``abstract``)."""
        try:
            runtime = Runtime(self.runtime)
        except ValueError:
            words = ", ".join(Runtime)
            raise ProblemError(f"runtime: expected one of {words}, got {self.runtime!r}") from None
        check_lengths("backward_times", self.backward, self.num_stages)
        if self.weight is not None:
            check_lengths("weight_times", self.weight, self.num_stages)
        if self.weight is not None:
            check_runtime_retained(runtime, self.activation, self.retained)
        backward, weight = runtime_times(runtime, self.backward, self.weight)
        retained = runtime_retained(runtime, self.activation, self.retained, self.is_split)
        for name, value in (("runtime", runtime), ("backward", backward), ("weight", weight)):
            object.__setattr__(self, name, value)
        if len(retained) == len(self.activation):
            object.__setattr__(self, "retained", retained)

    def _check_memory(self) -> None:
        n = self.num_stages
        check_lengths("memory.activation", self.activation, n)
        for i, amount in enumerate(self.activation):
            check_nonnegative(f"memory.activation[{i}]", amount)
        check_lengths("memory.retained", self.retained, n)
        for i, (kept, amount) in enumerate(zip(self.retained, self.activation, strict=True)):
            check_nonnegative(f"memory.retained[{i}]", kept)
            if kept > amount:
                raise ProblemError(
                    f"memory.retained[{i}]: must be <= memory.activation[{i}] ({amount:g}), "
                    f"got {kept:g}"
                )
            if kept > 0 and self.weight is None:
                raise ProblemError(
                    f"memory.retained[{i}]: only meaningful with weight_times (split backward)"
                )
        check_memory_scale("memory.activation", self.activation, self.num_microbatches)
        if self.memory_limit.values is not None:
            per_device("memory.limit", self.memory_limit.values, self.num_devices)

    def _check_recompute(self) -> None:
        object.__setattr__(self, "recompute", parse_recompute(self.recompute))
        object.__setattr__(self, "recompute_per", parse_recompute_per(self.recompute_per))
        n = self.num_stages
        if self.recompute_times is not None:
            check_times("recompute_times", self.recompute_times, n)
        if self.checkpoint is not None:
            check_lengths("memory.checkpoint", self.checkpoint, n)
            for i, amount in enumerate(self.checkpoint):
                check_nonnegative(f"memory.checkpoint[{i}]", amount)
        if self.recomputed and self.recompute != Recompute.AUTO:
            raise ProblemError("recomputed: only a recompute: auto problem lists its choices")
        for s, i in self.recomputed:
            if not (0 <= s < n and 0 <= i < self.num_microbatches):
                raise ProblemError(f"recomputed: ({s}, {i}) is not a stage and micro-batch")
        if self.recompute_per == RecomputePer.STAGE:
            stages = {s for s, _ in self.recomputed}
            if len(self.recomputed) != len(stages) * self.num_microbatches:
                raise ProblemError(
                    "recomputed: with recompute_per stage a stage recomputes all of its "
                    "micro-batches or none"
                )

    def _check_offload(self) -> None:
        object.__setattr__(self, "offload", parse_offload(self.offload))
        if self.offload_times is not None:
            check_times("offload_times", self.offload_times, self.num_stages)
        if self.offload != Offload.NONE and self.recompute != Recompute.NONE:
            raise ProblemError(
                "memory.offload: cannot be combined with memory.recompute on one problem "
                "(choose one)"
            )
        if self.offload != Offload.NONE and self.microbatch_scale is not None:
            raise ProblemError(
                "memory.offload: cannot be combined with microbatch_scale on one problem yet "
                "(the offload model holds uniform micro-batches)"
            )
        if self.offloaded and self.offload != Offload.AUTO:
            raise ProblemError("offloaded: only an offload: auto problem lists its choices")
        for s, i in self.offloaded:
            if not (0 <= s < self.num_stages and 0 <= i < self.num_microbatches):
                raise ProblemError(f"offloaded: ({s}, {i}) is not a stage and micro-batch")

    # ----------------------------------------------------------------------------- building

    @classmethod
    def create(
        cls,
        num_devices: int | None = None,
        num_microbatches: int | None = None,
        forward: float | Sequence[float] = 1.0,
        backward: float | Sequence[float] = 2.0,
        weight: float | Sequence[float] | None = None,
        p2p: float | Sequence[float] | Sequence[Sequence[float]] = 0.0,
        num_chunks: int = 1,
        placement: str | Sequence[int] = "interleaved",
        activation: float | Sequence[float] = 1.0,
        retained: float | Sequence[float] = 0.0,
        memory_limit: MemoryLimit | object = DEFAULT_LIMIT,
        runtime: Runtime | str = Runtime.ABSTRACT,
        recompute: Recompute | str = Recompute.NONE,
        recompute_times: float | Sequence[float] | None = None,
        checkpoint: float | Sequence[float] | None = None,
        recompute_per: RecomputePer | str = RecomputePer.MICROBATCH,
        microbatch_scale: object = None,
        offload: Offload | str = Offload.NONE,
        offload_times: float | Sequence[float] | None = None,
        overlap: float | Sequence[float] | None = None,
        copies: int = 1,
        **config_names: object,
    ) -> Problem:
        """Build a problem from scalars or per-stage sequences, filling the defaults.

        The config file's names work too (``num_stages``, ``num_batches``, ``forward_times``,
        ``backward_times``, ``weight_times``, ``p2p_time``), so
        ``Problem.create(num_stages=4, num_batches=8, forward_times=1.0)`` is the problem of
        that config. ``memory_limit`` takes what ``memory.limit`` takes (default ``1x``);
        ``recompute``, ``recompute_times`` and ``checkpoint`` are ``memory.recompute``,
        ``recompute_times`` and ``memory.checkpoint`` (:mod:`ppopt.recompute`);
        ``offload`` and ``offload_times`` are ``memory.offload`` and ``offload_times``
        (:mod:`ppopt.offload`). ``microbatch_scale`` takes what the config key takes
        (:mod:`ppopt.microbatches`).

        ``copies=2`` (DualPipe) builds the two-copy layout: 2 chunks on the V placement
        (``num_chunks`` 1 or 2 and ``placement`` ``interleaved`` or ``vshape`` are taken as
        that), per-stage values one per *model* stage (``p`` values, copy 1's stage ``j``
        reusing stage ``j``'s) or one per virtual stage (``2p``, as the schedule file writes
        them), a ``p2p_time`` list one per link between devices ``d`` and ``d+1`` (``p-1``
        values, both copies crossing it) or ``2p-1`` per virtual-stage boundary.
        """
        given = {
            "num_devices": num_devices,
            "num_microbatches": num_microbatches,
            **_from_config_names(config_names),
        }
        devices, batches = given.get("num_devices"), given.get("num_microbatches")
        if devices is None or batches is None:
            missing = "num_stages" if devices is None else "num_batches"
            raise ProblemError(f"{missing}: missing")
        forward = given.get("forward", forward)  # type: ignore[assignment]
        backward = given.get("backward", backward)  # type: ignore[assignment]
        weight = given.get("weight", weight)  # type: ignore[assignment]
        p2p = given.get("p2p", p2p)  # type: ignore[assignment]
        overlap = given.get("overlap", overlap)  # type: ignore[assignment]
        check_count("num_stages", devices)
        check_count("num_batches", batches)
        check_count("num_chunks", num_chunks)
        assert isinstance(devices, int) and isinstance(batches, int)
        if copies == 2:
            num_chunks, placement, per = _two_copy_layout(num_chunks, placement, devices)
            p2p = _two_copy_links(p2p, devices)
        else:
            per = per_stage
        n = devices * num_chunks
        if isinstance(placement, str):
            name = placement
            stages = placement_stages(placement, devices, num_chunks)
        else:
            name = "explicit"
            stages = tuple(placement)
        return cls(
            num_devices=devices,
            num_microbatches=batches,
            forward=per("forward_times", forward, n),
            backward=per("backward_times", backward, n),
            weight=None if weight is None else per("weight_times", weight, n),
            p2p=parse_p2p(p2p),
            num_chunks=num_chunks,
            placement=stages,
            activation=per("memory.activation", activation, n),
            retained=per("memory.retained", retained, n),
            memory_limit=MemoryLimit.parse(memory_limit),
            placement_name=name,
            runtime=runtime,  # type: ignore[arg-type]  # checked on construction
            recompute=recompute,  # type: ignore[arg-type]  # checked on construction
            recompute_times=_optional_per_stage("recompute_times", recompute_times, n),
            checkpoint=_optional_per_stage("memory.checkpoint", checkpoint, n),
            recompute_per=recompute_per,  # type: ignore[arg-type]  # checked on construction
            microbatch_scale=microbatch_scale,  # type: ignore[arg-type]  # parsed on construction
            offload=offload,  # type: ignore[arg-type]  # checked on construction
            offload_times=_optional_per_stage("offload_times", offload_times, n),
            overlap=None if overlap is None else per("overlap_times", overlap, n),
            copies=copies,
        )

    def with_limit(self, limit: MemoryLimit | object) -> Problem:
        """The same problem under another memory limit (anything ``memory.limit`` takes)."""
        return replace(self, memory_limit=MemoryLimit.parse(limit))

    def with_runtime(self, runtime: Runtime | str) -> Problem:
        """The same problem under another runtime's semantics. From ``abstract`` to ``torch``
        only: the torch rules replace durations and retained parts, which cannot be undone."""
        if Runtime(runtime) == self.runtime:
            return self
        if self.runtime != Runtime.ABSTRACT:
            raise ProblemError(f"runtime: a {self.runtime} problem cannot become {runtime}")
        # PyTorch runs an OVERLAP_F_B action's parts one after the other (unless the user
        # registers an overlapping function for it): no pairs under its semantics
        return replace(self, runtime=Runtime(runtime), overlap=None)

    def with_recompute(
        self,
        recompute: Recompute | str,
        recompute_times: float | Sequence[float] | None = None,
        checkpoint: float | Sequence[float] | None = None,
    ) -> Problem:
        """The same problem with another ``memory.recompute`` (and, when given, R times and
        checkpoints: one number or one per virtual stage); no choice made yet."""
        n = self.num_stages
        return replace(
            self,
            recompute=parse_recompute(recompute),
            recomputed=frozenset(),
            recompute_times=self.recompute_times
            if recompute_times is None
            else per_stage("recompute_times", recompute_times, n),
            checkpoint=self.checkpoint
            if checkpoint is None
            else per_stage("memory.checkpoint", checkpoint, n),
        )

    def with_recomputed(self, pairs: object) -> Problem:
        """The ``auto`` problem with its choice made: ``pairs`` of (stage, micro-batch)."""
        if self.recompute != Recompute.AUTO:
            raise ProblemError(f"recomputed: the problem has recompute {self.recompute}, not auto")
        return replace(self, recomputed=frozenset((int(s), int(i)) for s, i in pairs))  # type: ignore[attr-defined]

    def with_offload(
        self, offload: Offload | str, offload_times: float | Sequence[float] | None = None
    ) -> Problem:
        """The same problem with another ``memory.offload`` (and, when given, copy times: one
        number or one per virtual stage); no choice made yet."""
        times = self.offload_times
        if offload_times is not None:
            times = per_stage("offload_times", offload_times, self.num_stages)
        return replace(
            self, offload=parse_offload(offload), offloaded=frozenset(), offload_times=times
        )

    def with_offloaded(self, pairs: object) -> Problem:
        """The ``auto`` problem with its choice made: ``pairs`` of (stage, micro-batch)."""
        if self.offload != Offload.AUTO:
            raise ProblemError(f"offloaded: the problem has offload {self.offload}, not auto")
        return replace(self, offloaded=frozenset((int(s), int(i)) for s, i in pairs))  # type: ignore[attr-defined]

    def without_offload(self) -> Problem:
        """The same problem with nothing offloaded (``offload: none``)."""
        if self.offload == Offload.NONE:
            return self
        return replace(self, offload=Offload.NONE, offloaded=frozenset())

    def without_recompute(self) -> Problem:
        """The same problem with nothing recomputed (``recompute: none``)."""
        if self.recompute == Recompute.NONE:
            return self
        return replace(self, recompute=Recompute.NONE, recomputed=frozenset())

    def unsplit(self) -> Problem:
        """The classic problem: one full backward of duration B + W, nothing retained."""
        if self.weight is None:
            return self
        full = tuple(b + w for b, w in zip(self.backward, self.weight, strict=True))
        zeros = tuple(0.0 for _ in self.retained)
        overlap = self.overlap
        if overlap is not None:  # a pair's B becomes the full backward: W joins the pair
            overlap = tuple(o + w for o, w in zip(overlap, self.weight, strict=True))
        return replace(self, backward=full, weight=None, retained=zeros, overlap=overlap)

    def merged_chunks(self) -> Problem:
        """One stage per device, each the sum of that device's chunks (the ``Nx`` reference);
        with two copies, one copy (:meth:`one_copy`: a micro-batch meets one chunk a device)."""
        if self.copies == 2:
            return self.one_copy()
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
            p2p=self._merged_p2p(),
            num_chunks=1,
            placement=tuple(range(self.num_devices)),
            activation=per_device(self.activation),
            retained=per_device(self.retained),
            memory_limit=self.memory_limit,
            microbatch_scale=self.microbatch_scale,
        )

    def _merged_p2p(self) -> P2P:
        """The latencies of :meth:`merged_chunks`: a number or a matrix as they are; a list
        of stage boundaries becomes a device matrix holding, for each pair of devices, the
        largest latency of a boundary between them (in either direction)."""
        if not isinstance(self.p2p, tuple) or is_matrix(self.p2p):
            return self.p2p
        p = self.num_devices
        rows = [[0.0] * p for _ in range(p)]
        for s, latency in enumerate(self.p2p):
            a, b = self.placement[s], self.placement[s + 1]
            if a != b:
                rows[a][b] = rows[b][a] = max(rows[a][b], float(latency))  # type: ignore[arg-type]
        return tuple(tuple(row) for row in rows)

    # ------------------------------------------------------------------------------ queries

    @cached_property
    def max_latency(self) -> float:
        """The longest wait any edge can have (``p2p_time`` itself when it is one number)."""
        if isinstance(self.p2p, float):
            return self.p2p
        return max((value for _, value in named_values(self.p2p)), default=0.0)

    @property
    def uniform_latency(self) -> bool:
        """True when ``p2p_time`` is one number (every cross-device edge alike)."""
        return isinstance(self.p2p, float)

    @property
    def num_stages(self) -> int:
        """Number of virtual stages ``S = p * v``."""
        return self.num_devices * self.num_chunks

    @property
    def is_split(self) -> bool:
        """True when the backward is split into B (input gradient) and W (weight gradient)."""
        return self.weight is not None

    @property
    def kinds(self) -> tuple[Kind, ...]:
        """The task kinds of this problem: ``F, B`` or ``F, B, W``, and ``R`` when it may
        recompute (:attr:`recompute` not ``none``)."""
        passes = PASS_KINDS if self.is_split else PASS_KINDS[:2]
        if self.offload != Offload.NONE:
            return (*passes, *COPY_KINDS)
        return passes if self.recompute == Recompute.NONE else (*passes, Kind.R)

    @property
    def pass_kinds(self) -> tuple[Kind, ...]:
        """The kinds every micro-batch runs on every stage (``kinds`` without ``R``)."""
        return PASS_KINDS if self.is_split else PASS_KINDS[:2]

    @property
    def num_tasks(self) -> int:
        """Total number of tasks."""
        passes = len(self.pass_kinds) * self.num_stages * self.num_microbatches // self.copies
        return passes + self.num_recomputed + len(COPY_KINDS) * self.num_offloaded

    @property
    def num_offloaded(self) -> int:
        """How many (stage, micro-batch) pairs are offloaded (each runs an O and an L)."""
        if self.offload == Offload.ALL:
            return self.num_stages * self.num_microbatches
        return len(self.offloaded)

    @property
    def offloads(self) -> bool:
        """Whether any micro-batch may be offloaded (``memory.offload`` is not ``none``)."""
        return self.offload != Offload.NONE

    def is_offloaded(self, stage: int, microbatch: int) -> bool:
        """Whether micro-batch ``microbatch`` copies its activation to host on ``stage``."""
        if self.offload == Offload.NONE:
            return False
        return self.offload == Offload.ALL or (stage, microbatch) in self.offloaded

    def offload_time(self, stage: int) -> float:
        """How long one copy (O or L) takes on a stage: ``offload_times``, else the forward."""
        times = self.offload_times
        return self.forward[stage] if times is None else times[stage]

    @property
    def num_recomputed(self) -> int:
        """How many (stage, micro-batch) pairs run an R task."""
        if self.recompute == Recompute.ALL:
            return self.num_stages * self.num_microbatches
        return len(self.recomputed)

    def is_recomputed(self, stage: int, microbatch: int) -> bool:
        """Whether micro-batch ``microbatch`` recomputes its forward on ``stage``."""
        if self.recompute == Recompute.NONE:
            return False
        return self.recompute == Recompute.ALL or (stage, microbatch) in self.recomputed

    def has_task(self, task: Task) -> bool:
        """Whether a task (kind, stage, micro-batch in range) is one of this problem's."""
        kind, s, i = task
        if kind == Kind.R:
            return self.is_recomputed(s, i)
        if kind in COPY_KINDS:
            return self.is_offloaded(s, i)
        return (
            kind in self.pass_kinds
            and 0 <= s < self.num_stages
            and 0 <= i < self.num_microbatches
            and self.copy_of_stage(s) == self.copy_of_microbatch(i)
        )

    def recompute_time(self, stage: int) -> float:
        """How long R takes on a stage: ``recompute_times``, else the forward time."""
        times = self.recompute_times
        return self.forward[stage] if times is None else times[stage]

    def checkpoint_of(self, stage: int) -> float:
        """Memory a recomputed micro-batch keeps from its F's start to its R's end."""
        return 0.0 if self.checkpoint is None else self.checkpoint[stage]

    # ------------------------------------------------------------------ two model copies

    @cached_property
    def copy_segments(self) -> tuple[tuple[int, int], ...]:
        """Per model copy, its first and last virtual stage: ``((0, S-1),)`` with one copy,
        ``((0, p-1), (p, 2p-1))`` with two (a micro-batch's chain runs inside one)."""
        if self.copies == 1:
            return ((0, self.num_stages - 1),)
        p = self.num_devices
        return ((0, p - 1), (p, 2 * p - 1))

    def copy_of_stage(self, stage: int) -> int:
        """The model copy a virtual stage belongs to (0 with one copy)."""
        return 0 if self.copies == 1 else stage // self.num_devices

    def copy_of_microbatch(self, microbatch: int) -> int:
        """The copy a micro-batch runs through: with two, the first half copy 0."""
        return 0 if self.copies == 1 else int(microbatch >= self.num_microbatches // 2)

    def microbatches_of(self, stage: int) -> range:
        """The micro-batches that have tasks on a virtual stage, in increasing order."""
        if self.copies == 1:
            return range(self.num_microbatches)
        half = self.num_microbatches // 2
        return range(half) if self.copy_of_stage(stage) == 0 else range(half, 2 * half)

    def model_stage(self, stage: int) -> int:
        """The model's stage a virtual stage runs (with two copies, copy 1's ``p+j`` is ``j``)."""
        return stage if self.copies == 1 else stage % self.num_devices

    def one_copy(self) -> Problem:
        """Copy 0 alone as a one-copy problem of ``p`` stages running all ``m`` micro-batches
        (the memory unit's 1F1B and the report's reference)."""
        if self.copies == 1:
            return self
        p = self.num_devices
        p2p = self.p2p
        if isinstance(p2p, tuple) and not is_matrix(p2p):
            p2p = p2p[: p - 1]
        return Problem(
            num_devices=p,
            num_microbatches=self.num_microbatches,
            forward=self.forward[:p],
            backward=self.backward[:p],
            weight=None if self.weight is None else self.weight[:p],
            p2p=p2p,
            num_chunks=1,
            placement=tuple(range(p)),
            activation=self.activation[:p],
            retained=self.retained[:p],
            memory_limit=self.memory_limit,
            overlap=None if self.overlap is None else self.overlap[:p],
        )

    def device_of(self, stage: int) -> int:
        """The device that runs a virtual stage."""
        return self.placement[stage]

    def stages_on(self, device: int) -> tuple[int, ...]:
        """The virtual stages a device holds, in increasing order."""
        return self._stages_by_device[device]

    @cached_property
    def _stages_by_device(self) -> tuple[tuple[int, ...], ...]:
        rows: list[list[int]] = [[] for _ in range(self.num_devices)]
        for s, d in enumerate(self.placement):
            rows[d].append(s)
        return tuple(tuple(row) for row in rows)

    def duration(self, kind: str, stage: int, microbatch: int | None = None) -> float:
        """How long a task of this kind runs on this virtual stage: the reference
        micro-batch's time, times ``microbatch``'s scale when one is given."""
        return self._base_duration(kind, stage) * self.scale_of(microbatch)

    def _base_duration(self, kind: str, stage: int) -> float:
        if kind == Kind.F:
            return self.forward[stage]
        if kind == Kind.B:
            return self.backward[stage]
        if kind == Kind.W and self.weight is not None:
            return self.weight[stage]
        if kind == Kind.R and self.recompute != Recompute.NONE:
            return self.recompute_time(stage)
        if kind in COPY_KINDS and self.offload != Offload.NONE:
            return self.offload_time(stage)
        raise KeyError(f"no {kind} tasks in this problem")

    def scale_of(self, microbatch: int | None) -> float:
        """The factor of a micro-batch's durations and memory (1 when uniform or ``None``)."""
        if microbatch is None or self.microbatch_scale is None:
            return 1.0
        return self.microbatch_scale[microbatch]

    @property
    def is_scaled(self) -> bool:
        """Whether micro-batches differ (``microbatch_scale`` given, not all 1)."""
        return self.microbatch_scale is not None

    @cached_property
    def identical_groups(self) -> tuple[tuple[int, ...], ...]:
        """The micro-batches in classes of equal scale and copy, each in increasing order:
        the micro-batches a symmetry break may order (one class when uniform, one per copy
        with two copies: their tasks are on different stages)."""
        classes: dict[tuple[int, float], list[int]] = {}
        for i in range(self.num_microbatches):
            classes.setdefault((self.copy_of_microbatch(i), self.scale_of(i)), []).append(i)
        return tuple(tuple(group) for group in classes.values())

    def previous_identical(self, microbatch: int) -> int | None:
        """The largest earlier micro-batch of the same scale (``None``: none)."""
        return self._previous_identical[microbatch]

    @cached_property
    def _previous_identical(self) -> tuple[int | None, ...]:
        out: list[int | None] = [None] * self.num_microbatches
        for group in self.identical_groups:
            for before, after in zip(group, group[1:], strict=False):
                out[after] = before
        return tuple(out)

    def reordered(self, order: Sequence[int]) -> Problem:
        """The problem with micro-batch ``k`` being this one's ``order[k]`` (for a baseline
        that runs micro-batches in index order; without recomputation choices). An ``Nx``
        limit is kept as its absolute values: the unit is this problem's 1F1B peak."""
        if self.microbatch_scale is None:
            return self
        scales = tuple(self.microbatch_scale[i] for i in order)
        caps = self.memory_caps
        limit = self.memory_limit if caps is None else MemoryLimit.parse(list(caps))
        return replace(self, microbatch_scale=scales, recomputed=frozenset(), memory_limit=limit)

    def scaled_uniform(self, factor: float) -> Problem:
        """The uniform problem whose every micro-batch has this scale (bounds use it)."""

        def times(values: tuple[float, ...]) -> tuple[float, ...]:
            return tuple(v * factor for v in values)

        def maybe(values: tuple[float, ...] | None) -> tuple[float, ...] | None:
            return None if values is None else times(values)

        return replace(
            self,
            forward=times(self.forward),
            backward=times(self.backward),
            weight=maybe(self.weight),
            recompute_times=maybe(self.recompute_times),
            activation=times(self.activation),
            retained=times(self.retained),
            checkpoint=maybe(self.checkpoint),
            microbatch_scale=None,
        )

    # --------------------------------------------------------------- overlapped F+B pairs

    def overlap_saving(self, stage: int) -> float:
        """What an overlapped pair of this stage's F and B saves: ``F_s + B_s - overlap_s``."""
        assert self.overlap is not None
        return self.forward[stage] + self.backward[stage] - self.overlap[stage]

    def pair_duration(self, forward_stage: int, backward_stage: int) -> float:
        """The pair rule (docs/contract.md §1): F on stage ``s`` and B on stage ``s'`` run as one
        task of ``F_s + B_s' - min(saving_s, saving_s')``; on one stage that is
        ``overlap_times[s]``. Each part hides at most what its own stage's pair hides, so a pair
        is never shorter than either part (``saving_s <= min(F_s, B_s)``)."""
        saving = min(self.overlap_saving(forward_stage), self.overlap_saving(backward_stage))
        return self.forward[forward_stage] + self.backward[backward_stage] - saving

    def pair_fault(self, forward: Task, backward: Task) -> str | None:
        """Why two tasks cannot be a pair (``None``: they can): a pair is a forward and a
        backward (``B``) of different micro-batches on one device, in a problem with
        ``overlap_times``. It starts when both parts' dependencies are met, ends after
        :meth:`pair_duration`, and both parts' successors wait for its end; F allocates at its
        start and B frees at its end (the usual holds of both parts, timed by the pair)."""
        if self.overlap is None:
            return "the problem has no overlap_times"
        if forward.kind != Kind.F or backward.kind != Kind.B:
            return "a pair is a forward and a backward (B)"
        if forward.microbatch == backward.microbatch:
            return "a pair's forward and backward are of different micro-batches"
        if self.device_of(forward.stage) != self.device_of(backward.stage):
            return "a pair's forward and backward run on one device"
        return None

    def tasks(self) -> list[Task]:
        """Every task of the problem (R only for the recomputed micro-batches; with two
        copies a micro-batch's tasks only on its copy's stages)."""
        S, m = self.num_stages, self.num_microbatches
        out = [
            Task(kind, s, i)
            for kind in self.pass_kinds
            for s in range(S)
            for i in self.microbatches_of(s)
        ]
        if self.recompute != Recompute.NONE:
            out += [
                Task(Kind.R, s, i) for s in range(S) for i in range(m) if self.is_recomputed(s, i)
            ]
        if self.offload != Offload.NONE:
            out += [
                Task(kind, s, i)
                for kind in COPY_KINDS
                for s in range(S)
                for i in range(m)
                if self.is_offloaded(s, i)
            ]
        return out

    # -------------------------------------------------------------------------- the rules

    @cached_property
    def edges(self) -> dict[StageKind, tuple[Edge, ...]]:
        """Every dependency rule (docs/contract.md §1), per ``(kind, stage)``: F(s,i) after
        F(s-1,i); B(S-1,i) after F(S-1,i); B(s,i) after B(s+1,i); W(s,i) after B(s,i). With
        two copies each copy is such a chain of its own (:attr:`copy_segments`): F of a
        copy's first stage waits for nothing, B of its last stage for its F. With
        recomputation R(s,i) after F(s,i), and B(s,i) after R(s,i) *when micro-batch i is
        recomputed on s* (an edge to a task the problem does not have is void, see
        :meth:`dependencies`). An edge between two devices waits ``p2p`` more; edges on one
        device wait nothing."""
        firsts = {first for first, _ in self.copy_segments}
        lasts = {last for _, last in self.copy_segments}
        table: dict[StageKind, tuple[Edge, ...]] = {}
        for s in range(self.num_stages):
            befores: dict[Kind, list[StageKind]] = {
                Kind.F: [(Kind.F, s - 1)] if s not in firsts else [],
                Kind.B: [(Kind.B, s + 1)] if s not in lasts else [(Kind.F, s)],
                Kind.W: [(Kind.B, s)],
                Kind.R: [(Kind.F, s)],
                Kind.O: [(Kind.F, s)],
                Kind.L: [(Kind.O, s)],
            }
            if self.recompute != Recompute.NONE:
                befores[Kind.B].append((Kind.R, s))
            if self.offload != Offload.NONE:
                befores[Kind.B].append((Kind.L, s))
            for kind in self.kinds:
                table[kind, s] = tuple(Edge(dk, ds, self.hop(ds, s)) for dk, ds in befores[kind])
        return table

    @cached_property
    def successors(self) -> dict[StageKind, tuple[Edge, ...]]:
        """The edges reversed: per ``(kind, stage)``, the tasks waiting on it (same micro-batch)
        and the latency of each wait."""
        out: dict[StageKind, list[Edge]] = {key: [] for key in self.edges}
        for (kind, s), edges in self.edges.items():
            for edge in edges:
                out[edge.kind, edge.stage].append(Edge(kind, s, edge.latency))
        return {key: tuple(value) for key, value in out.items()}

    def hop(self, before: int, after: int) -> float:
        """The wait of an edge from a task of virtual stage ``before`` to one of ``after``
        (adjacent or equal stages), the one place ``p2p_time`` becomes a latency
        (docs/contract.md §1): nothing on one device; else the number, the boundary's entry
        of a list (boundary ``min(before, after)``) or the matrix's ``[device][device]``."""
        a, b = self.placement[before], self.placement[after]
        if a == b:
            return 0.0
        p2p = self.p2p
        if isinstance(p2p, float):
            return p2p
        if isinstance(p2p[0], tuple):
            return p2p[a][b]
        return p2p[min(before, after)]

    def dependencies(self, task: Task) -> tuple[Task, ...]:
        """The tasks that must end before ``task`` may start."""
        i = task.microbatch
        deps = (Task(e.kind, e.stage, i) for e in self.edges[task[0], task[1]])
        if self.recompute == Recompute.NONE and self.offload == Offload.NONE:
            return tuple(deps)
        return tuple(dep for dep in deps if self.has_task(dep))

    def latency(self, before: Task, after: Task) -> float:
        """Extra wait on a dependency edge (:meth:`hop` of the two tasks' stages)."""
        return self.hop(before.stage, after.stage)

    def holds(
        self,
        stage: int,
        recomputed: bool = False,
        microbatch: int | None = None,
        offloaded: bool = False,
    ) -> tuple[Hold, ...]:
        """The memory rule (docs/contract.md §1): what one micro-batch holds on the stage's
        device. F allocates the activation when it starts; an unsplit B frees it when it
        ends; a split B frees all but the retained part, which W frees when it ends. A
        ``recomputed`` micro-batch holds the activation for its F only and the checkpoint
        from F to R; R re-allocates the activation, which B (and W) free as usual. An
        ``offloaded`` one holds the whole activation from F's start to its offload O's end,
        and from its reload L's start the usual holds of B (and W) (:mod:`ppopt.offload`).
        Every amount is that of the reference micro-batch times ``microbatch``'s scale."""
        c = self.scale_of(microbatch)
        act, kept = self.activation[stage] * c, self.retained[stage] * c
        source = Kind.R if recomputed else Kind.L if offloaded else Kind.F
        usual = (
            (Hold(source, Kind.B, act),)
            if not self.is_split
            else (Hold(source, Kind.B, act - kept), Hold(source, Kind.W, kept))
        )
        if offloaded:
            return (Hold(Kind.F, Kind.O, act), *usual)
        if not recomputed:
            return usual
        ckpt = self.checkpoint_of(stage) * c
        return (Hold(Kind.F, Kind.F, act), Hold(Kind.F, Kind.R, ckpt), *usual)

    def allocation(self, stage: int) -> float:
        """Memory a forward of this stage allocates when it starts."""
        return self.memory_change(Kind.F, stage)[0]

    def memory_change(
        self, kind: str, stage: int, recomputed: bool = False, offloaded: bool = False
    ) -> tuple[float, float]:
        """What a task of this kind and stage takes when it starts and frees when it ends
        (for a micro-batch that is ``recomputed`` or ``offloaded`` on the stage, or not)."""
        if offloaded:
            return self._offload_changes[kind, stage]
        return self._memory_changes[kind, stage, recomputed]

    def op_memory_change(self, kind: str, stage: int, microbatch: int) -> tuple[float, float]:
        """:meth:`memory_change` of one task (times its micro-batch's scale)."""
        if self.offload != Offload.NONE and self.is_offloaded(stage, microbatch):
            taken, freed = self._offload_changes[kind, stage]
        else:
            taken, freed = self._memory_changes[kind, stage, self.is_recomputed(stage, microbatch)]
        if self.microbatch_scale is None:
            return taken, freed
        c = self.microbatch_scale[microbatch]
        return taken * c, freed * c

    @cached_property
    def _memory_changes(self) -> dict[tuple[str, int, bool], tuple[float, float]]:
        """:meth:`memory_change` of every ``(kind, stage, recomputed)``, summed from the holds
        once (it is asked per op by the metrics and the tabu search)."""
        table: dict[tuple[str, int, bool], tuple[float, float]] = {}
        for s in range(self.num_stages):
            for recomputed in (False, True):
                for kind, change in _changes(self.holds(s, recomputed)).items():
                    table[kind, s, recomputed] = change
        return table

    @cached_property
    def _offload_changes(self) -> dict[tuple[str, int], tuple[float, float]]:
        """:meth:`memory_change` of every ``(kind, stage)`` of an offloaded micro-batch."""
        return {
            (kind, s): change
            for s in range(self.num_stages)
            for kind, change in _changes(self.holds(s, offloaded=True)).items()
        }

    def release(self, kind: str, stage: int) -> float:
        """Memory a task of this kind and stage frees when it ends."""
        return self.memory_change(kind, stage)[1]

    def microbatch_memory(self, device: int) -> float:
        """Memory one micro-batch's forwards take on a device (all of its stages). With
        recomputation, the most a lone micro-batch holds there (:meth:`_lone_peak`): with
        ``all`` when every stage recomputes, with ``auto`` under its most frugal choice.
        With scaled micro-batches, the largest one's."""
        return self._reference_microbatch_memory(device) * max(self.microbatch_scale or (1.0,))

    def _reference_microbatch_memory(self, device: int) -> float:
        stages = self.stages_on(device)
        if self.copies == 2:  # a micro-batch meets one of the device's two stages
            return max(self.allocation(s) for s in stages)
        if self.offload != Offload.NONE:  # each earlier stage's activation may be on host
            return max(self.allocation(s) for s in stages)
        if self.recompute == Recompute.NONE:
            return sum(self.allocation(s) for s in stages)
        if self.recompute == Recompute.ALL or len(stages) > 10:
            return self._lone_peak(stages, (True,) * len(stages))
        choices = itertools.product((False, True), repeat=len(stages))
        return min(self._lone_peak(stages, choice) for choice in choices)

    def _lone_peak(self, stages: Sequence[int], recomputed: Sequence[bool]) -> float:
        """Peak of one micro-batch alone on a device: at the F (or R) of its j-th stage there
        it holds that activation (and its checkpoint, if recomputed), and of each earlier
        stage the checkpoint if recomputed, else the activation."""
        peak = kept = 0.0
        for s, again in zip(stages, recomputed, strict=True):
            ckpt = self.checkpoint_of(s) if again else 0.0
            peak = max(peak, kept + self.activation[s] + ckpt)
            kept += ckpt if again else self.activation[s]
        return peak

    # ----------------------------------------------------------------------------- memory

    def reference_peak(self) -> float:
        """The unit of an ``Nx`` limit: 1F1B's peak memory on its most loaded device, with
        each device's chunks merged into one stage (:meth:`merged_chunks`).

        The memory of a device depends on its own order only. 1F1B's position ``s`` runs
        ``min(S-s-1, m)`` warm-up forwards, then one forward and one backward (with its W
        at once), so it holds at most ``min(S-s, m)`` micro-batches' activations at a time
        (tests cross-check this against the 1F1B baseline's measured peak). With two copies
        the unit is 1F1B of one copy (:meth:`one_copy`) running all ``m`` micro-batches, the
        README's reference of DualPipe's ``PP + 1``. With scaled
        micro-batches, 1F1B in the given order holds ``min(S-s, m)`` *consecutive*
        micro-batches at its peak: the unit is the largest sum of scales over such a window,
        times the stage's allocation, which is again the 1F1B baseline's real peak."""
        merged = self.merged_chunks()
        p, m = merged.num_devices, merged.num_microbatches
        scales = self.microbatch_scale or (1.0,) * m
        return max(_widest_window(scales, min(p - s, m)) * merged.allocation(s) for s in range(p))

    @cached_property
    def memory_caps(self) -> tuple[float, ...] | None:
        """The memory limit in absolute units, one value per device (``None``: no limit)."""
        peak = self.reference_peak() if self.memory_limit.factor is not None else 0.0
        return self.memory_limit.absolute(self.num_devices, peak)

    def check_one_microbatch_fits(self) -> None:
        """Raise :class:`NoScheduleError` when a device cannot hold even one micro-batch."""
        caps = self.memory_caps
        if caps is None:
            return
        for d in range(self.num_devices):
            need = self.microbatch_memory(d)
            if not within(need, caps[d]):
                factor = self.memory_limit.factor
                unit = (
                    ""
                    if factor is None
                    else f" ({factor:g}x of the 1F1B peak {caps[d] / factor:g})"
                )
                raise NoScheduleError(
                    f"no schedule: {device_name(d)} needs {need:g} memory for one micro-batch, "
                    f"the limit is {caps[d]:g}{unit}"
                )

    # ------------------------------------------------------------------------------- sums

    def forward_head(self, stage: int) -> float:
        """Earliest start of F(stage, ·): the forward chain before it, latencies included."""
        return self._chains[0][stage]

    def round_trip(self, stage: int) -> float:
        """From the end of F(stage, i) to the earliest start of B(stage, i): the forward and
        backward chains above the stage, latencies included."""
        return self._chains[1][stage]

    def backward_chain(self, stage: int) -> float:
        """From the end of B(stage, i) to the end of B(0, i) (of its copy's first stage): the
        backward chain below the stage, latencies included."""
        return self._chains[2][stage]

    @cached_property
    def _chains(self) -> tuple[list[float], list[float], list[float]]:
        """:meth:`forward_head`, :meth:`round_trip` and :meth:`backward_chain` of every stage,
        as running sums computed once: asked per stage, a sum each would be quadratic in the
        stages (the lower bound of 20,000 stages took minutes)."""
        n = self.num_stages
        heads, trips, below = [0.0] * n, [0.0] * n, [0.0] * n
        for first, last in self.copy_segments:  # each copy's chain (the one chain if one)
            for s in range(first + 1, last + 1):
                heads[s] = heads[s - 1] + self.forward[s - 1] + self.hop(s - 1, s)
                below[s] = below[s - 1] + self.hop(s, s - 1) + self.backward[s - 1]
            for s in range(last - 1, first - 1, -1):  # down and back up: a matrix's two ways
                there_and_back = self.hop(s, s + 1) + self.hop(s + 1, s)
                trips[s] = trips[s + 1] + there_and_back + self.forward[s + 1]
                trips[s] += self.backward[s + 1]
        return heads, trips, below

    def total_work(self) -> float:
        """Sum of all task durations."""
        per_mb = sum(self.forward) + sum(self.backward) + sum(self.weight or ())
        per_copy = self._scale_sum / self.copies  # each stage runs its copy's micro-batches
        return per_mb * per_copy + self._recompute_work(range(self.num_stages))

    @property
    def _scale_sum(self) -> float:
        """Sum of the micro-batches' scales (``m`` when uniform)."""
        scales = self.microbatch_scale
        return float(self.num_microbatches) if scales is None else sum(scales)

    def device_work(self, device: int) -> float:
        """Sum of the task durations on one device."""
        kinds = self.pass_kinds
        stages = self.stages_on(device)
        per_mb = sum(self.duration(k, s) for s in stages for k in kinds)
        return per_mb * self._scale_sum / self.copies + self._recompute_work(stages)

    def _recompute_work(self, stages: Sequence[int]) -> float:
        """Sum of the R durations on these stages."""
        if self.recompute == Recompute.NONE:
            return 0.0
        m = self.num_microbatches
        return sum(
            self.recompute_time(s)
            * sum(self.scale_of(i) for i in range(m) if self.is_recomputed(s, i))
            for s in stages
        )


#: The config file's names of :meth:`Problem.create`'s arguments.
CONFIG_NAMES = {
    "num_stages": "num_devices",
    "num_batches": "num_microbatches",
    "forward_times": "forward",
    "backward_times": "backward",
    "weight_times": "weight",
    "p2p_time": "p2p",
    "overlap_times": "overlap",
}


def _widest_window(values: Sequence[float], width: int) -> float:
    """The largest sum of ``width`` consecutive values."""
    window = best = sum(values[:width])
    for k in range(width, len(values)):
        window += values[k] - values[k - width]
        best = max(best, window)
    return best


def _changes(holds: Sequence[Hold]) -> dict[Kind, tuple[float, float]]:
    """Per kind, what its task takes when it starts and frees when it ends under ``holds``."""
    return {
        kind: (
            sum(h.amount for h in holds if h.alloc == kind),
            sum(h.amount for h in holds if h.free == kind),
        )
        for kind in (*PASS_KINDS, Kind.R, *COPY_KINDS)
    }


def _optional_per_stage(key: str, value: object, n: int) -> tuple[float, ...] | None:
    """:func:`per_stage`, with ``None`` kept as "not given"."""
    return None if value is None else per_stage(key, value, n)


def _from_config_names(given: dict[str, object]) -> dict[str, object]:
    """Keyword arguments under the config file's names, renamed (unknown names refused)."""
    out = {}
    for name, value in given.items():
        if name not in CONFIG_NAMES:
            known = ", ".join(CONFIG_NAMES)
            raise ProblemError(f"{name}: unknown argument (config names known here: {known})")
        out[CONFIG_NAMES[name]] = value
    return out


def _two_copy_layout(
    num_chunks: int, placement: str | Sequence[int], devices: int
) -> tuple[int, str | Sequence[int], _PerStage]:
    """``copies: 2``'s chunks, placement and per-stage reader (:meth:`Problem.create`): two
    chunks on the V placement (``num_chunks`` 1, the model's, or 2; ``placement`` the
    default, ``vshape`` or its list: anything else is left for the problem to refuse), and
    ``p`` values per model stage given twice over."""
    if num_chunks not in (1, 2):
        raise ProblemError(
            "copies: 2 runs copy 1 on the devices in reverse, one chunk of each copy per "
            f"device (num_chunks 1 or 2), got num_chunks {num_chunks}"
        )
    num_chunks = 2
    vee = placement_stages("vshape", devices, 2)
    if placement == "interleaved" or (not isinstance(placement, str) and tuple(placement) == vee):
        placement = "vshape"

    def per(key: str, value: object, n: int) -> tuple[float, ...]:
        values = per_stage(key, value, n)
        return values * 2 if len(values) == devices else values

    return num_chunks, placement, per


def _two_copy_links(p2p: _Links, devices: int) -> _Links:
    """A ``p2p_time`` list of ``p-1`` links (entry ``d``: devices ``d`` and ``d+1``) as the
    ``2p-1`` virtual-stage boundaries of two copies: copy 0's boundary ``s`` crosses link
    ``s``, copy 1's boundary ``p+j`` (its stages ``j``, ``j+1`` on devices ``p-1-j``,
    ``p-2-j``) link ``p-2-j``; boundary ``p-1`` joins no two stages of one copy (0)."""
    if isinstance(p2p, str | bytes) or not isinstance(p2p, Sequence):
        return p2p
    if len(p2p) != devices - 1 or any(isinstance(x, Sequence) for x in p2p):
        return p2p
    links: list[float] = list(p2p)  # type: ignore[arg-type]  # no rows: checked above
    return [*links, 0.0, *(links[devices - 2 - j] for j in range(devices - 1))]


#: ``p2p_time`` as :meth:`Problem.create` takes it.
_Links = float | Sequence[float] | Sequence[Sequence[float]]
#: Reads one per-stage key: ``(key, value, number of virtual stages) -> values``.
_PerStage = Callable[[str, object, int], tuple[float, ...]]
