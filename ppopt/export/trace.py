"""Chrome trace event JSON (``--trace``, ``ppopt plot FILE -o OUT.trace.json``).

The "JSON Object Format" of the Trace Event Format, which Perfetto (ui.perfetto.dev) and
chrome://tracing open: ``{"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}``.

Layout:

* one process per device: ``pid`` = device index (0-based), named ``device 1``, ``device 2``, …
  (1-based, as in the pictures) and sorted by device;
* thread ``tid 0`` (``compute``) holds one complete event (``ph: "X"``) per op, named like ``F3``
  (kind and 1-based micro-batch; with several chunks per device also the 1-based chunk,
  ``F3 c2``), category per kind (``forward``, ``backward`` for a full backward,
  ``backward-input`` and ``weight`` when the backward is split), with
  ``args = {stage, microbatch (0-based), kind, chunk (0-based)}``; an overlapped F+B pair is
  one event ``F3 & B1`` of category ``overlap`` with its backward under ``args.pair``;
* every dependency edge between two devices is also a flow arrow (``ph: "s"`` at the end of
  the producing op, ``ph: "f"`` with ``bp: "e"`` at the start of the consuming one, category
  ``flow``, one ``id`` per edge), whatever ``p2p_time`` is;
* thread ``tid 1000`` (``copy``) holds the device's offloads and reloads (categories
  ``offload``, ``reload``), when it has any (:mod:`ppopt.offload`);
* a counter track ``memory`` per device (``ph: "C"``, ``args = {"activation": level}``) steps
  at every change of the device's memory (:func:`ppopt.metrics.memory_profile`), from 0 at
  time 0 back to 0 at its end;
* every dependency edge between two devices whose latency is > 0 is a send interval on the
  sender's device, from the sending op's end to that end plus the edge's own latency (one
  ``p2p_time`` for all, or its boundary's or device pair's entry, :mod:`ppopt.links`; also in
  ``args.latency``), named like ``send F3 -> device 2``. Sends of one device can overlap (the
  latency occupies no device), so
  they are spread greedily over threads ``tid 1, 2, …`` (``p2p send``, ``p2p send 2``, …) so that
  no thread holds two overlapping events; the number of threads used is the largest number of
  sends in flight at once on that device.

Times: trace timestamps are microseconds. One time unit of the schedule (the user's unit) is
taken as one millisecond, i.e. ``ts = start * 1000`` and ``dur = end * 1000 - ts``
(:data:`US_PER_UNIT`); ``otherData`` states this mapping, and holds ``p2p_time`` as the
config gives it (a number, the per-boundary list or the per-device-pair matrix).
"""

from __future__ import annotations

import heapq
import json
from pathlib import Path
from typing import Any, NamedTuple

from ppopt.atomic import atomic_write_text
from ppopt.limits import tidy
from ppopt.links import to_config
from ppopt.metrics import memory_profile
from ppopt.schedule import Op, Schedule
from ppopt.tasks import device_name

#: Trace microseconds per schedule time unit (the user's unit is shown as milliseconds).
US_PER_UNIT = 1000.0
COMPUTE_TID = 0
FIRST_COMM_TID = 1
COPY_TID = 1000  # the copy lane's thread (offloads and reloads), after the comm lanes
COPY_CATEGORIES = {"O": "offload", "L": "reload"}
UNSPLIT_CATEGORIES = {"F": "forward", "B": "backward", "R": "recompute"}
SPLIT_CATEGORIES = {"F": "forward", "B": "backward-input", "W": "weight", "R": "recompute"}
COMM_CATEGORY = "p2p"
FLOW_CATEGORY = "flow"
MEMORY_COUNTER = "memory"
#: How far inside its op a flow arrow's end is bound (the op's half when it is shorter).
FLOW_INSET_US = 0.5


class Send(NamedTuple):
    """A cross-device dependency edge as a latency interval on the sender's device."""

    sender: Op
    receiver: Op
    start_us: float
    end_us: float


def trace_events(schedule: Schedule) -> dict[str, Any]:
    """The Chrome trace (JSON Object Format) of a schedule, as a JSON-ready dict."""
    problem = schedule.problem
    events: list[dict[str, Any]] = []
    for device in range(problem.num_devices):
        events.extend(_process_metadata(device))
    events.extend(_compute_events(schedule))
    for number, (sender, receiver) in enumerate(cross_device_edges(schedule)):
        events.extend(_flow_events(schedule, sender, receiver, number))
    for device in range(problem.num_devices):
        events.extend(_memory_counter(schedule, device))
    for device, row in enumerate(schedule.copy_ops):
        if row:
            events.extend(_thread_metadata(device, COPY_TID, "copy"))
            events.extend(_copy_event(schedule, op) for op in row)
    for device, lanes in enumerate(_send_lanes(schedule)):
        for lane, sends in enumerate(lanes):
            tid = FIRST_COMM_TID + lane
            events.extend(_thread_metadata(device, tid, _comm_thread_name(lane)))
            events.extend(_send_event(schedule, send, tid) for send in sends)
    return {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "generator": "ppopt",
            "schedule": schedule.name,
            "time_mapping": f"1 schedule time unit = {US_PER_UNIT:g} us (shown as 1 ms)",
            "us_per_unit": US_PER_UNIT,
            "devices": problem.num_devices,
            "microbatches": problem.num_microbatches,
            "chunks": problem.num_chunks,
            **({"copies": problem.copies} if problem.copies == 2 else {}),
            "split_backward": problem.is_split,
            "p2p_time": to_config(problem.p2p),
            **(
                {}
                if problem.microbatch_scale is None
                else {"microbatch_scale": list(problem.microbatch_scale)}
            ),
            "makespan": schedule.makespan,
            "interrupted": schedule.interrupted,
        },
    }


def dumps_trace(schedule: Schedule) -> str:
    """The trace as JSON text, one event per line (readable, diff-friendly)."""
    data = trace_events(schedule)
    events = data.pop("traceEvents")
    body = ",\n".join("  " + json.dumps(tidy(event), allow_nan=False) for event in events)
    rest = json.dumps(tidy(data), allow_nan=False)[1:-1]
    return '{"traceEvents": [\n' + body + "\n], " + rest + "}\n"


def write_trace(schedule: Schedule, path: str | Path) -> None:
    """Write the Chrome trace of ``schedule`` to ``path`` atomically (temporary file, rename)."""
    atomic_write_text(path, dumps_trace(schedule))


def op_name(schedule: Schedule, op: Op) -> str:
    """The event name of an op: kind and 1-based micro-batch, ``F3``; with several chunks per
    device also its 1-based chunk, ``F3 c2``; with two model copies its copy, ``F3 copy2``."""
    name = f"{op.kind}{op.microbatch + 1}"
    if schedule.problem.copies == 2:
        name += f" copy{schedule.problem.copy_of_stage(op.stage) + 1}"
    elif schedule.problem.num_chunks > 1:
        name += f" c{_chunk(schedule, op) + 1}"
    return name


def _chunk(schedule: Schedule, op: Op) -> int:
    """The op's chunk on its device (0-based: its stage's place in ``stages_on``)."""
    return schedule.problem.stages_on(op.device).index(op.stage)


def _process_metadata(device: int) -> list[dict[str, Any]]:
    """Name and order the device's process and its compute thread."""
    meta = {"ph": "M", "pid": device, "tid": COMPUTE_TID}
    return [
        {**meta, "name": "process_name", "args": {"name": device_name(device)}},
        {**meta, "name": "process_sort_index", "args": {"sort_index": device}},
        *_thread_metadata(device, COMPUTE_TID, "compute"),
    ]


def _thread_metadata(device: int, tid: int, name: str) -> list[dict[str, Any]]:
    """Name a thread and keep threads in tid order (compute first, then the comm lanes)."""
    meta = {"ph": "M", "pid": device, "tid": tid}
    return [
        {**meta, "name": "thread_name", "args": {"name": name}},
        {**meta, "name": "thread_sort_index", "args": {"sort_index": tid}},
    ]


def _comm_thread_name(lane: int) -> str:
    return "p2p send" if lane == 0 else f"p2p send {lane + 1}"


def _compute_events(schedule: Schedule) -> list[dict[str, Any]]:
    """One event per op; an overlapped pair is one event, ``F3 & B1`` (category ``overlap``,
    its backward's ``stage``, ``microbatch`` and ``kind`` under ``args.pair``)."""
    if not schedule.pairs:
        return [_compute_event(schedule, op) for op in schedule.ops()]
    partner = {f: b for f, b in schedule.pairs}
    backs = {op.task: op for op in schedule.ops() if op.task in set(partner.values())}
    out = []
    for op in schedule.ops():
        if op.task in backs:
            continue
        event = _compute_event(schedule, op)
        if op.task in partner:
            back = backs[partner[op.task]]
            event["name"] += f" & {op_name(schedule, back)}"
            event["cat"] = "overlap"
            event["args"]["pair"] = {
                "stage": back.stage,
                "microbatch": back.microbatch,
                "kind": back.kind,
            }
        out.append(event)
    return out


def _compute_event(schedule: Schedule, op: Op) -> dict[str, Any]:
    """One complete event for one op on its device's compute thread."""
    problem = schedule.problem
    categories = SPLIT_CATEGORIES if problem.is_split else UNSPLIT_CATEGORIES
    ts = op.start * US_PER_UNIT
    return {
        "name": op_name(schedule, op),
        "cat": categories[op.kind],
        "ph": "X",
        "pid": op.device,
        "tid": COMPUTE_TID,
        "ts": ts,
        "dur": op.end * US_PER_UNIT - ts,
        "args": {
            "stage": op.stage,
            "microbatch": op.microbatch,
            "kind": op.kind,
            "chunk": _chunk(schedule, op),
            **_scale_arg(schedule, op),
        },
    }


def _scale_arg(schedule: Schedule, op: Op) -> dict[str, float]:
    """``{"scale": c}``: the micro-batch's ``microbatch_scale`` factor (when they differ)."""
    if not schedule.problem.is_scaled:
        return {}
    return {"scale": schedule.problem.scale_of(op.microbatch)}


def _copy_event(schedule: Schedule, op: Op) -> dict[str, Any]:
    """One complete event for one copy on its device's copy thread."""
    ts = op.start * US_PER_UNIT
    return {
        "name": op_name(schedule, op),
        "cat": COPY_CATEGORIES[op.kind],
        "ph": "X",
        "pid": op.device,
        "tid": COPY_TID,
        "ts": ts,
        "dur": op.end * US_PER_UNIT - ts,
        "args": {"stage": op.stage, "microbatch": op.microbatch, "kind": op.kind},
    }


def _flow_events(schedule: Schedule, sender: Op, receiver: Op, number: int) -> list[dict[str, Any]]:
    """The arrow of one cross-device edge: its start bound to the end of the sending op, its
    end to the start of the receiving one (each inside its op, as the format binds a flow
    point to the slice enclosing it)."""
    flow = {"name": "p2p", "cat": FLOW_CATEGORY, "id": number, "tid": COMPUTE_TID}
    out_us = sender.end * US_PER_UNIT - _inset(sender)
    in_us = receiver.start * US_PER_UNIT + _inset(receiver)
    return [
        {**flow, "ph": "s", "pid": sender.device, "ts": out_us},
        {**flow, "ph": "f", "bp": "e", "pid": receiver.device, "ts": in_us,
         "args": {"from": op_name(schedule, sender), "to": op_name(schedule, receiver)}},
    ]  # fmt: skip


def _inset(op: Op) -> float:
    return min(FLOW_INSET_US, op.duration * US_PER_UNIT / 2)


def _memory_counter(schedule: Schedule, device: int) -> list[dict[str, Any]]:
    """The device's memory as counter steps (the level from each time on)."""
    times, levels = memory_profile(schedule, device)
    return [
        {"name": MEMORY_COUNTER, "ph": "C", "pid": device, "ts": time * US_PER_UNIT,
         "args": {"activation": level}}
        for time, level in zip(times, levels, strict=True)
    ]  # fmt: skip


def _send_event(schedule: Schedule, send: Send, tid: int) -> dict[str, Any]:
    """One complete event for one cross-device edge on the sender's comm lane ``tid``."""
    sender, receiver = send.sender, send.receiver
    return {
        "name": f"send {op_name(schedule, sender)} -> {device_name(receiver.device)}",
        "cat": COMM_CATEGORY,
        "ph": "X",
        "pid": sender.device,
        "tid": tid,
        "ts": send.start_us,
        "dur": send.end_us - send.start_us,
        "args": {
            "from_stage": sender.stage,
            "to_stage": receiver.stage,
            "microbatch": sender.microbatch,
            "kind": sender.kind,
            "to": op_name(schedule, receiver),
            "to_device": receiver.device,
            "latency": schedule.problem.latency(sender.task, receiver.task),
        },
    }


def cross_device_edges(schedule: Schedule) -> list[tuple[Op, Op]]:
    """Every dependency edge between two devices as (sending op, receiving op)."""
    problem = schedule.problem
    by_task = {op.task: op for op in schedule.ops()}
    edges = []
    for receiver in schedule.ops():
        for dep in problem.dependencies(receiver.task):
            sender = by_task.get(dep)
            if sender is not None and sender.device != receiver.device:
                edges.append((sender, receiver))
    return edges


def cross_device_sends(schedule: Schedule) -> list[Send]:
    """Every dependency edge between two devices with a latency as a send interval, each as
    long as its own link's latency (:meth:`Problem.latency`; none on a link of latency 0)."""
    problem = schedule.problem
    if problem.max_latency <= 0:
        return []
    sends = []
    for sender, receiver in cross_device_edges(schedule):
        latency = problem.latency(sender.task, receiver.task)
        if latency > 0:
            start = sender.end * US_PER_UNIT
            sends.append(Send(sender, receiver, start, (sender.end + latency) * US_PER_UNIT))
    return sends


def _send_lanes(schedule: Schedule) -> list[list[list[Send]]]:
    """Per device, its sends split into lanes with no two overlapping sends in one lane.

    Greedy in start order, each send takes the lowest-numbered lane free at its start (a lane
    is free once its last send has ended; touching intervals do not overlap). Interval
    partitioning in start order uses exactly as many lanes as sends are ever in flight at once.
    """
    per_device: list[list[Send]] = [[] for _ in range(schedule.problem.num_devices)]
    for send in cross_device_sends(schedule):
        per_device[send.sender.device].append(send)
    return [_partition(sorted(sends, key=lambda s: (s.start_us, s.end_us))) for sends in per_device]


def _partition(sends: list[Send]) -> list[list[Send]]:
    """Assign start-sorted intervals to the lowest free lane (see :func:`_send_lanes`)."""
    lanes: list[list[Send]] = []
    busy: list[tuple[float, int]] = []  # (end, lane) of each lane's last send
    free: list[int] = []
    for send in sends:
        while busy and busy[0][0] <= send.start_us:
            heapq.heappush(free, heapq.heappop(busy)[1])
        if free:
            lane = heapq.heappop(free)
        else:
            lane = len(lanes)
            lanes.append([])
        lanes[lane].append(send)
        heapq.heappush(busy, (send.end_us, lane))
    return lanes
