"""Task kinds and tasks: the vocabulary every layer shares (see docs/contract.md §1).

A task is one pass of one micro-batch through one virtual stage. Its *kind* is declared here
once, with what every layer needs to know about it beyond the problem's numbers: which lane of
its device it occupies and how PyTorch's schedule table spells it. What a kind depends on and
what memory it takes or frees depend on the problem, and are declared once in
:class:`ppopt.problem.Problem` (``edges``, ``holds``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple


class Kind(StrEnum):
    """A task kind. ``B`` is the input gradient on a split problem (PyTorch's ``I``) and the
    full backward otherwise (PyTorch's ``B``); ``W`` is the weight gradient; ``R`` recomputes
    a forward's activations before its backward (:mod:`ppopt.recompute`)."""

    F = "F"
    B = "B"
    W = "W"
    R = "R"

    # Enum hashes in Python (``hash(self._name_)``); the str hash is the same number in C,
    # which keeps dict look-ups keyed by kinds as fast as with plain strings (engine, validator).
    __hash__ = str.__hash__


class Lane(StrEnum):
    """The resource of a device that a task occupies (one task at a time per lane)."""

    COMPUTE = "compute"


@dataclass(frozen=True)
class KindSpec:
    """What is fixed about a kind, whatever the problem."""

    kind: Kind
    name: str  # in words, for legends and messages
    lane: Lane
    torch_split: str  # PyTorch's action type on a split problem
    torch_unsplit: str | None  # ... on an unsplit problem (None: the kind does not occur)
    exportable: bool = True  # False: PyTorch's schedule table has no such action


#: Every kind's declaration, in the order tasks are numbered (forward first).
KIND_SPECS: dict[Kind, KindSpec] = {
    Kind.F: KindSpec(Kind.F, "forward", Lane.COMPUTE, "F", "F"),
    Kind.B: KindSpec(Kind.B, "backward", Lane.COMPUTE, "I", "B"),
    Kind.W: KindSpec(Kind.W, "weight gradient", Lane.COMPUTE, "W", None),
    Kind.R: KindSpec(Kind.R, "recompute", Lane.COMPUTE, "", "", exportable=False),
}

#: All kinds, in numbering order.
KINDS: tuple[Kind, ...] = tuple(KIND_SPECS)
#: The kinds every problem has (``W`` only when split), before any recomputation.
PASS_KINDS: tuple[Kind, ...] = (Kind.F, Kind.B, Kind.W)


class Task(NamedTuple):
    """One pass of one micro-batch through one virtual stage."""

    kind: Kind
    stage: int
    microbatch: int

    def label(self) -> str:
        """Short human name, 1-based as on every screen (:func:`device_name`): ``F3@s2`` is
        micro-batch index 2 on virtual stage index 1."""
        return f"{self.kind}{self.microbatch + 1}@s{self.stage + 1}"


def device_name(device: int) -> str:
    """A device as people read it. The numbering rule (docs/contract.md §4): on screen every
    device, stage, chunk and micro-batch counts from 1 (``device 1`` is the pictures' first row);
    in files (schedule file, config lists, traces' ids) indices count from 0."""
    return f"device {device + 1}"


def stage_name(stage: int) -> str:
    """A virtual stage as people read it, 1-based (:func:`device_name`)."""
    return f"stage {stage + 1}"


class Edge(NamedTuple):
    """A dependency of every task of one ``(kind, stage)``: the task of ``kind``/``stage``
    of the same micro-batch must end ``latency`` before it starts."""

    kind: Kind
    stage: int
    latency: float


class Hold(NamedTuple):
    """Memory one micro-batch holds on a stage's device: ``amount`` from the start of its
    ``alloc`` task to the end of its ``free`` task."""

    alloc: Kind
    free: Kind
    amount: float
