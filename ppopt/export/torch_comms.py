"""PyTorch's schedule table with its communication (``ppopt export FILE --format torch-comms``).

``_PipelineScheduleRuntime._load_csv(path, format="compute_comms")`` runs each row of the table
exactly as written: no lowering pass inserts sends, receives or the gradient reduction. The
format, as ``_Action.from_str`` parses it (docs/runtime_torch.md, the ``compute_comms``
section):

* one row per rank (= ppopt device), comma-separated cells in the order the rank runs them, no
  header; compute cells as in the compute-only table (:mod:`ppopt.export.torch_csv`):
  ``{stage}{F|I|W|B}{microbatch}``;
* ``{stage}SEND_F{mb}`` on the sender, stage = the *sending* stage: ``dist.isend`` of that
  micro-batch's output (never blocks; every send is waited at the end of ``step``); it must
  precede the micro-batch's ``I``/``B`` (they drop the forward's output);
* ``{stage}RECV_F{mb}`` on the receiver, stage = the *receiving* stage: posts ``dist.irecv``
  into the micro-batch's receive buffer and returns; the consuming ``F`` waits for it, and
  fails (``Computing ... before receiving input``) when no receive was posted before it;
* ``{stage}SEND_B{mb}`` (sending stage, after its ``I``/``B``) and ``{stage}RECV_B{mb}``
  (receiving stage, waited by its ``I``/``B``) for the input gradients;
* ``{stage}REDUCE_GRAD`` once per stage after its last ``W`` (``B`` when the backward is not
  split): divides the gradients by the number of micro-batches; without it they are m times
  too large;
* neighbouring stages on one rank (a V placement) hand tensors over in memory: no cells.

Placement, written here from the plan:

* each SEND right after the action producing it: ``SEND_F`` after an ``F`` whose next stage
  is on another rank, ``SEND_B`` after an ``I``/``B`` whose previous stage is;
* each RECV posted by the time its message is planned to arrive (the producer's planned end
  plus the edge's latency, :meth:`ppopt.problem.Problem.latency`): right before the receiving
  rank's first action planned to end at or after that arrival (so it is posted after the
  actions that end before the message can arrive, and before the one running when it does),
  and never after its consumer;
* then, per pair of ranks, a RECV is moved earlier where needed so that the RECVs a rank posts
  from one peer follow the order in which that peer sends: the messages carry no tag and are
  matched in posting order, so any other order silently swaps tensors of equal shape (this is
  what the runtime's own ``defer_pp_recv=True`` does to a V schedule);
* ``REDUCE_GRAD`` right after each stage's last ``W``/``B`` (after its SEND).

Why not let PyTorch lower the compute-only table: its ``_add_send_recv`` places every RECV
greedily, as soon as the lock-step lowering reaches the producing action, in front of
unrelated sends and computes of the receiving rank, whatever the plan's times. On NCCL, where
the point-to-point operations of a communicator run in order, such a front-loaded receive holds
up the rank's later sends until its data arrives: the head-of-line bubbles of pytorch#172668
and pytorch#188833. Placing the receives from the plan keeps the order the plan assumes on any
backend (on gloo, where receives are posted asynchronously, it measures the same as the
lowering). Only orders that can run are written: the timeline engine re-times the orders first
and raises :class:`~ppopt.timeline.DeadlockError` for an order that would hang.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import NamedTuple

from ppopt.atomic import atomic_write_text
from ppopt.export.torch_csv import checkpointed_stages, rows_csv, torch_action
from ppopt.schedule import Schedule
from ppopt.tasks import Kind, Task
from ppopt.timeline import compute_timeline

#: Two planned times this close are the same instant (the planned times are sums of floats).
_TIME_TOLERANCE = 1e-9


class _Message(NamedTuple):
    """One tensor sent from one rank to another."""

    sender: int  # rank
    position: int  # of the producing action in the sender's row (the send order)
    arrival: float  # planned: producer's end plus the edge's latency
    receiver: int  # rank
    recv: str  # the RECV cell
    consumer: Task


def _messages(schedule: Schedule) -> tuple[dict[tuple[int, int], list[str]], list[_Message]]:
    """The SEND cells after each ``(rank, position)`` and every message, from the dependency
    edges between ranks."""
    problem = schedule.problem
    sends: dict[tuple[int, int], list[str]] = defaultdict(list)
    messages: list[_Message] = []
    for rank, row in enumerate(schedule.device_ops):
        for position, op in enumerate(row):
            for edge in problem.successors[op.kind, op.stage]:
                receiver = problem.device_of(edge.stage)
                if receiver == rank:
                    continue
                way = "F" if edge.stage > op.stage else "B"
                consumer = Task(edge.kind, edge.stage, op.microbatch)
                sends[rank, position].append(f"{op.stage}SEND_{way}{op.microbatch}")
                arrival = op.end + problem.latency(op.task, consumer)
                recv = f"{edge.stage}RECV_{way}{op.microbatch}"
                messages.append(_Message(rank, position, arrival, receiver, recv, consumer))
    return sends, messages


def torch_comms_rows(schedule: Schedule) -> list[list[str]]:
    """One list of cells per rank (device), compute and communication, in run order.

    Raises :class:`~ppopt.timeline.DeadlockError` (or :class:`~ppopt.timeline.OrderError`)
    when the per-device orders cannot run, so that no table is written that would hang.
    """
    problem = schedule.problem
    compute_timeline(problem, schedule.orders(), schedule.name)
    checkpointed_stages(schedule)  # refuses what cannot be exported
    split = problem.is_split
    rows = schedule.device_ops
    where = {op.task: k for row in rows for k, op in enumerate(row)}
    sends, messages = _messages(schedule)

    # Posted right before which action of the receiver's row: from the planned arrival.
    slot: dict[_Message, int] = {}
    for message in messages:
        row, consumer = rows[message.receiver], where[message.consumer]
        arrived = (k for k, op in enumerate(row) if op.end >= message.arrival - _TIME_TOLERANCE)
        slot[message] = min(next(arrived, consumer), consumer)
    # Per (sender, receiver), in send order: never after the next message's RECV.
    by_pair: dict[tuple[int, int], list[_Message]] = defaultdict(list)
    for message in messages:
        by_pair[message.sender, message.receiver].append(message)
    for pair in by_pair.values():
        pair.sort(key=lambda message: message.position)
        for earlier, later in zip(pair[-2::-1], pair[:0:-1], strict=True):
            slot[earlier] = min(slot[earlier], slot[later])
    before: dict[tuple[int, int], list[str]] = defaultdict(list)
    for message in sorted(messages, key=lambda m: (slot[m], m.sender, m.position)):
        before[message.receiver, slot[message]].append(message.recv)

    reduced = Kind.W if split else Kind.B
    last_backward = {
        (op.device, op.stage): k for row in rows for k, op in enumerate(row) if op.kind == reduced
    }
    out: list[list[str]] = []
    for rank, row in enumerate(rows):
        cells: list[str] = []
        for k, op in enumerate(row):
            cells += before.get((rank, k), [])
            cells += [action] if (action := torch_action(op, split)) else []
            cells += sends.get((rank, k), [])
            if last_backward.get((rank, op.stage)) == k:
                cells.append(f"{op.stage}REDUCE_GRAD")
        out.append(cells)
    return out


def dumps_torch_comms_csv(schedule: Schedule) -> str:
    """The table as CSV text."""
    return rows_csv(torch_comms_rows(schedule))


def write_torch_comms_csv(path: str | Path, schedule: Schedule) -> None:
    """Write the table atomically (temporary file in the same directory, then rename)."""
    atomic_write_text(path, dumps_torch_comms_csv(schedule))
