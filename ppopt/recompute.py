"""Activation recomputation: the ``memory.recompute`` choice (docs/contract.md §1).

A *recomputed* micro-batch ``i`` on virtual stage ``s`` frees its activations when its
forward F(s,i) ends, keeping only the stage's ``checkpoint`` (the memory it needs to redo the
forward, default 0) until its recompute task R(s,i) ends. R(s,i) runs on the stage's device
after F(s,i), takes ``recompute_times[s]`` (default: the forward time), re-allocates the
activations when it starts, and B(s,i) waits for it; the backward (and W) then free them as
usual. ``none``: nothing is recomputed. ``all``: every micro-batch on every stage is (Megatron's
full recomputation). ``auto``: the optimizer chooses per stage and micro-batch; a problem with
``auto`` carries the chosen ``(stage, micro-batch)`` pairs (none until something chose them).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

from ppopt.errors import ProblemError

_E = TypeVar("_E", bound=StrEnum)


class RecomputePer(StrEnum):
    """What an ``auto`` choice is made for: each (stage, micro-batch), or each virtual stage
    as a whole (every micro-batch of a stage or none: what activation checkpointing of a
    stage module in PyTorch can run)."""

    MICROBATCH = "microbatch"
    STAGE = "stage"


class Recompute(StrEnum):
    """Which micro-batches recompute their forward before their backward."""

    NONE = "none"
    ALL = "all"
    AUTO = "auto"


def parse_recompute_per(value: object) -> RecomputePer:
    """The ``memory.recompute_per`` value, or a :class:`ProblemError` naming the choices."""
    return parse_choice(RecomputePer, "memory.recompute_per", value)


def per_stage_closure(pairs: set[tuple[int, int]], num_microbatches: int) -> set[tuple[int, int]]:
    """Every micro-batch of each stage that has one of ``pairs``."""
    return {(s, i) for s in {s for s, _ in pairs} for i in range(num_microbatches)}


def parse_recompute(value: object) -> Recompute:
    """The ``memory.recompute`` value, or a :class:`ProblemError` naming the choices."""
    return parse_choice(Recompute, "memory.recompute", value)


def parse_choice(kind: type[_E], key: str, value: object) -> _E:
    """One of an enum's words, or a :class:`ProblemError` naming ``key`` and the choices."""
    try:
        return kind(str(value))
    except ValueError:
        words = " | ".join(kind)
        raise ProblemError(f"{key}: expected {words}, got {value!r}") from None
