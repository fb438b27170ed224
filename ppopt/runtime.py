"""Runtime semantics: how the runtime that executes a schedule really runs each task kind.

``abstract`` is the model of the papers (docs/contract.md §1): every task runs its own work
and a split B frees the activation less the retained part. ``torch`` is PyTorch's pipelining
runtime (``torch.distributed.pipelining``, measured on 2.13, docs/runtime_torch.md):

* on the first virtual stage the input-gradient action ``I`` does nothing (no input needs a
  gradient) and ``W`` runs the whole backward, so B(0, i) takes no time and W(0, i) takes
  B + W;
* ``I`` keeps the autograd graph (``retain_graph=True``) until ``W``, so a split B frees
  nothing and W frees the whole activation.

Both rules are applied to the problem's data once, on construction
(:meth:`ppopt.problem.Problem`), so every layer (engine, validator, bounds, CP-SAT, list
scheduler) sees what really runs. The transformation is idempotent: a problem written to a
schedule file and read back is the same problem.
"""

from __future__ import annotations

from enum import StrEnum

from ppopt.errors import ProblemError


class Runtime(StrEnum):
    """Which runtime's semantics the problem follows."""

    ABSTRACT = "abstract"
    TORCH = "torch"


def runtime_times(
    runtime: Runtime, backward: tuple[float, ...], weight: tuple[float, ...] | None
) -> tuple[tuple[float, ...], tuple[float, ...] | None]:
    """The backward and weight-gradient durations that run under ``runtime``: under
    ``torch`` with a split backward, stage 0's B takes 0 and its W takes B + W."""
    if runtime != Runtime.TORCH or weight is None or backward[0] == 0:
        return backward, weight
    return (0.0, *backward[1:]), (backward[0] + weight[0], *weight[1:])


def runtime_retained(
    runtime: Runtime, activation: tuple[float, ...], retained: tuple[float, ...], split: bool
) -> tuple[float, ...]:
    """The part of each stage's activation a split B leaves for W: all of it under ``torch``
    (the graph is retained until W), the user's ``retained`` otherwise."""
    if runtime != Runtime.TORCH or not split:
        return retained
    return activation


def check_runtime_retained(
    runtime: Runtime, activation: tuple[float, ...], retained: tuple[float, ...]
) -> None:
    """Under ``torch`` PyTorch decides what a split B keeps (all of it): a ``retained`` part
    the user gave would be a false promise, so it is refused (0 or the whole activation, as a
    schedule file written under ``torch`` says, is accepted)."""
    if runtime != Runtime.TORCH:
        return
    for i, (kept, amount) in enumerate(zip(retained, activation, strict=False)):
        if kept not in (0.0, amount):
            raise ProblemError(
                f"memory.retained[{i}]: not used with runtime: torch (PyTorch keeps the "
                f"whole activation until W, docs/runtime_torch.md); leave it out"
            )
