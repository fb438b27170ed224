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
  weight gradient, ``B`` full backward (ppopt's ``B`` when the backward is not split);
* an overlapped pair (``overlap_times``) is one cell ``({F cell};{B cell})OVERLAP_F_B``.

PyTorch runs some actions differently from the papers' model (stage 0's ``I`` does nothing,
its ``W`` the whole backward; ``I`` keeps the graph until ``W``): :func:`check_for_torch`
re-times a schedule planned under another runtime as PyTorch will run it.

PyTorch infers which rank holds which stage from the table (every action of a stage sits in its
rank's row), so a V placement or any explicit placement needs no extra setting. The table fixes
only the order of each rank; the times of the schedule are not part of it. Only orders that can
run are written: the timeline engine re-times the orders first and refuses an order that
deadlocks (:class:`~ppopt.timeline.DeadlockError`), which would hang the PyTorch runtime.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from ppopt.atomic import atomic_write_text
from ppopt.errors import NotApplicableError
from ppopt.limits import fits
from ppopt.metrics import peak_memory
from ppopt.recompute import Recompute, RecomputePer
from ppopt.runtime import Runtime
from ppopt.schedule import Op, Schedule
from ppopt.tasks import KIND_SPECS
from ppopt.timeline import compute_timeline

#: PyTorch's action type of an overlapped pair: the cell ``(0F7;7B3)OVERLAP_F_B`` runs its
#: sub-actions one after the other, or together through a function registered with
#: ``_PipelineScheduleRuntime.register_custom_function(OVERLAP_F_B, ...)``.
OVERLAP_F_B = "OVERLAP_F_B"


def torch_action(op: Op, split: bool) -> str:
    """The table cell of one op, ``{stage}{F|I|W|B}{microbatch}`` (e.g. ``2I0``); the action
    types are each kind's declaration (:data:`ppopt.tasks.KIND_SPECS`)."""
    spec = KIND_SPECS[op.kind]
    if not spec.exportable:
        return ""  # no such action: see exportable_schedule
    return f"{op.stage}{spec.torch_split if split else spec.torch_unsplit}{op.microbatch}"


def refuse_two_copies(schedule: Schedule) -> None:
    """PyTorch's schedule table runs one model: a two-copy schedule (``copies: 2``,
    DualPipe) is refused in one line (:class:`NotApplicableError`, exit 2)."""
    if schedule.problem.copies == 2:
        raise NotApplicableError(
            "export: PyTorch's schedule table runs one model copy; a copies: 2 (DualPipe) "
            "schedule cannot be exported as torch (write --format trace or json)"
        )


def checkpointed_stages(schedule: Schedule) -> tuple[int, ...]:
    """The virtual stages whose modules PyTorch must wrap in activation checkpointing for
    a per-stage recompute choice (``recompute_per: stage``): the stages that run R tasks.

    Raises :class:`NotApplicableError` for per-micro-batch choices, which PyTorch's runtime
    cannot express (its table has no recompute action; checkpointing is a property of a
    stage module, the same for every micro-batch), and for any schedule that offloads (the
    table has no copy actions)."""
    problem = schedule.problem
    refuse_two_copies(schedule)
    if problem.num_offloaded:
        raise NotApplicableError(
            "export: PyTorch's schedule table has no copy actions; a schedule that offloads "
            "activations cannot be exported (solve with memory.offload: none)"
        )
    if not problem.num_recomputed:
        return ()
    if problem.recompute == Recompute.AUTO and problem.recompute_per != RecomputePer.STAGE:
        raise NotApplicableError(
            "export: PyTorch's schedule table has no recompute action and checkpointing is "
            "per stage module; a per-micro-batch recompute choice cannot be exported (solve "
            "with --recompute-per stage)"
        )
    return (
        tuple(sorted({s for s, _ in problem.recomputed}))
        if problem.recomputed
        else tuple(range(problem.num_stages))
    )


@dataclass(frozen=True)
class TorchCheck:
    """What a schedule becomes when PyTorch runs it: its orders timed with ``runtime:
    torch`` (:mod:`ppopt.runtime`), against the planned timeline."""

    planned: Schedule
    real: Schedule

    @property
    def faithful(self) -> bool:
        """True when PyTorch runs the plan as planned: it follows PyTorch's semantics, or
        they change nothing in it (a full backward; the same times and memory)."""
        if self.planned.problem.runtime == Runtime.TORCH:
            return True
        same_times = self.real.device_ops == self.planned.device_ops
        return same_times and peak_memory(self.real) == peak_memory(self.planned)

    def warning(self) -> str | None:
        """One line saying how far the plan is from what runs (``None`` when faithful)."""
        if self.faithful:
            return None
        planned, real = self.planned.makespan, self.real.makespan
        change = (real - planned) / planned if planned > 0 else 0.0
        peak, caps = max(peak_memory(self.real)), self.real.problem.memory_caps
        memory = f"; peak memory {peak:.6g}"
        if caps is not None and not fits(peak_memory(self.real), caps):
            memory += f", above the limit {max(caps):.6g}"
        return (
            f"planned with runtime: {self.planned.problem.runtime}; PyTorch runs this order "
            f"in {real:.6g} (planned {planned:.6g}, {change:+.1%}){memory}; "
            f"solve with --runtime torch for a plan PyTorch keeps"
        )


def check_for_torch(schedule: Schedule) -> TorchCheck:
    """The schedule's orders re-timed as PyTorch runs them."""
    refuse_two_copies(schedule)
    problem = schedule.problem.with_runtime(Runtime.TORCH)
    real = compute_timeline(problem, schedule.orders(), schedule.name)
    return TorchCheck(schedule, real)


def torch_rows(schedule: Schedule) -> list[list[str]]:
    """One list of cells per rank (device), in run order.

    Raises :class:`~ppopt.timeline.DeadlockError` (or :class:`~ppopt.timeline.OrderError`)
    when the per-device orders cannot run, so that no table is written that would hang.
    """
    compute_timeline(schedule.problem, schedule.orders(), schedule.name, schedule.pairs)
    checkpointed_stages(schedule)  # refuses what cannot be exported
    split = schedule.problem.is_split
    backs = {b for _, b in schedule.pairs}
    rows = []
    for row in schedule.device_ops:
        cells: list[str] = []
        for op in row:
            cell = torch_action(op, split)
            if op.task in backs:  # right after its forward (the engine checked it)
                cells[-1] = f"({cells[-1]};{cell}){OVERLAP_F_B}"
            elif cell:
                cells.append(cell)
        rows.append(cells)
    return rows


def rows_csv(rows: list[list[str]]) -> str:
    """Table rows as CSV text (``\\n`` line ends; PyTorch's ``csv.reader`` takes any)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(rows)
    return buffer.getvalue()


def dumps_torch_csv(schedule: Schedule) -> str:
    """The table as CSV text."""
    return rows_csv(torch_rows(schedule))


def write_torch_csv(path: str | Path, schedule: Schedule) -> None:
    """Write the table atomically (temporary file in the same directory, then rename)."""
    atomic_write_text(path, dumps_torch_csv(schedule))
