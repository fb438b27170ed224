"""Placements: which device runs each virtual stage (docs/contract.md §1).

``interleaved`` puts stage ``s`` on device ``s mod p`` (Megatron), ``vshape`` (two chunks)
stage ``s`` on device ``s`` for ``s < p`` and on ``2p-1-s`` after (ZB-V, DualPipeV); any list
of device indices works if every device gets ``num_chunks`` stages.
"""

from __future__ import annotations

from collections.abc import Sequence

from ppopt.errors import ProblemError

PLACEMENTS = ("interleaved", "vshape")


def placement_stages(name: str, num_devices: int, num_chunks: int) -> tuple[int, ...]:
    """Device of each virtual stage for a named placement (docs/contract.md §1)."""
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


def check_placement(placement: Sequence[object], num_devices: int, num_chunks: int) -> None:
    """One device index per virtual stage, each device holding ``num_chunks`` stages."""
    n, p = num_devices * num_chunks, num_devices
    if len(placement) != n:
        raise ProblemError(
            f"placement: expected {n} device indices (num_stages * num_chunks), "
            f"got {len(placement)}"
        )
    held = [0] * p
    for s, device in enumerate(placement):
        if isinstance(device, bool) or not isinstance(device, int) or not 0 <= device < p:
            raise ProblemError(f"placement[{s}]: must be a device index 0..{p - 1}, got {device!r}")
        held[device] += 1
    for device, count in enumerate(held):
        if count != num_chunks:
            raise ProblemError(
                f"placement: device index {device} holds {count} stages, expected num_chunks "
                f"= {num_chunks}"
            )
