"""Activation offload: the ``memory.offload`` choice (docs/contract.md §1).

An *offloaded* micro-batch ``i`` on virtual stage ``s`` copies its whole activation (the
retained part too: W needs it after B) to host memory with an offload task O(s,i) and back with
a reload task L(s,i), both on the device's **copy lane**, which runs one copy at a time in
parallel with the compute lane. O starts no earlier than F(s,i)'s end; L no earlier than O's
end; B(s,i) waits for L's end. Each copy takes ``offload_times[s]`` (default: the forward
time). Memory: the activation is held from F's start to O's end, and again from L's start to
B's end (W's for the retained part); between O's end and L's start it is on the host.

``none``: nothing is offloaded. ``all``: every micro-batch on every stage (PipeOffload-style,
for the baselines). ``auto``: the optimizer chooses per stage and micro-batch; the problem then
carries the chosen pairs. Offload does not combine with recomputation on one problem.

In a device's task order the copies sit between its compute tasks, and the order says how the
two lanes synchronise (the engine's rules, :mod:`ppopt.timeline`): a compute task starts no
earlier than the *end* of an offload listed before it and the *start* of a reload listed
before it; a reload starts no earlier than the end of the compute task listed before it. Those
waits make a device's memory at every allocation no more than what its order implies, so the
engine's earliest timing of an order never holds more memory than any other timing of it.
"""

from __future__ import annotations

from enum import StrEnum

from ppopt.recompute import parse_choice


class Offload(StrEnum):
    """Which micro-batches copy their activations to host between F and B."""

    NONE = "none"
    ALL = "all"
    AUTO = "auto"


def parse_offload(value: object) -> Offload:
    """The ``memory.offload`` value, or a :class:`ProblemError` naming the choices."""
    return parse_choice(Offload, "memory.offload", value)
