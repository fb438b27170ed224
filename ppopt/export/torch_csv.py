"""PyTorch's pipeline schedule table (``ppopt export FILE --format torch -o schedule.csv``).

``torch.distributed.pipelining`` (PyTorch ≥ 2.7) can run a schedule given as a *compute-only*
CSV table: ``_PipelineScheduleRuntime._load_csv(path)`` reads row ``r`` as the actions of
pipeline rank ``r``, in the order that rank runs them, and lowers them itself to a schedule
with send/receive actions. The format, as that loader parses it (``_Action.from_str``):

* one row per rank (= ppopt device), comma-separated cells, one cell per compute action, in
  the device's run order; no header; an empty cell would mean "nothing" and is never written;
* a cell is ``{stage}{type}{microbatch}``: the *virtual* stage index (0-based), the action type
  and the micro-batch index (0-based), e.g. ``3F0``, ``2I5``, ``0W1``;
* the type is ``F`` forward, ``I`` input gradient (ppopt's ``B`` of a split backward), ``W``
  weight gradient, ``B`` full backward (ppopt's ``B`` when the backward is not split).

PyTorch infers which rank holds which stage from the table (every action of a stage sits in its
rank's row), so a V placement or any explicit placement needs no extra setting. The table fixes
only the order of each rank; the times of the schedule are not part of it. Only orders that can
run are written: the timeline engine re-times the orders first and refuses an order that
deadlocks (:class:`~ppopt.timeline.DeadlockError`), which would hang the PyTorch runtime.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ppopt.atomic import atomic_write_text
from ppopt.schedule import Op, Schedule
from ppopt.timeline import compute_timeline

#: PyTorch's action type for each ppopt kind, by whether the backward is split.
SPLIT_TYPES = {"F": "F", "B": "I", "W": "W"}
UNSPLIT_TYPES = {"F": "F", "B": "B"}


def torch_action(op: Op, split: bool) -> str:
    """The table cell of one op, ``{stage}{F|I|W|B}{microbatch}`` (e.g. ``2I0``)."""
    types = SPLIT_TYPES if split else UNSPLIT_TYPES
    return f"{op.stage}{types[op.kind]}{op.microbatch}"


def torch_rows(schedule: Schedule) -> list[list[str]]:
    """One list of cells per rank (device), in run order.

    Raises :class:`~ppopt.timeline.DeadlockError` (or :class:`~ppopt.timeline.OrderError`)
    when the per-device orders cannot run, so that no table is written that would hang.
    """
    compute_timeline(schedule.problem, schedule.orders(), schedule.name)
    split = schedule.problem.is_split
    return [[torch_action(op, split) for op in row] for row in schedule.device_ops]


def dumps_torch_csv(schedule: Schedule) -> str:
    """The table as CSV text (``\\n`` line ends; PyTorch's ``csv.reader`` takes any)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(torch_rows(schedule))
    return buffer.getvalue()


def write_torch_csv(path: str | Path, schedule: Schedule) -> None:
    """Write the table atomically (temporary file in the same directory, then rename)."""
    atomic_write_text(path, dumps_torch_csv(schedule))
