"""The numbering rule (docs/contract.md §4): on screen devices, stages and micro-batches count
from 1, in files from 0. Each check below reads one on-screen output and the schedule file of
the same schedule, so a place that numbers its own way shows up as a disagreement."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

from ppopt.baselines import baseline  # noqa: E402
from ppopt.export.schedule_json import schedule_to_dict  # noqa: E402
from ppopt.export.trace import trace_events  # noqa: E402
from ppopt.problem import Problem  # noqa: E402
from ppopt.schedule import Schedule  # noqa: E402
from ppopt.validate import validate  # noqa: E402
from ppopt.viz.gantt import plot_gantt  # noqa: E402


def _one_f_one_b() -> Schedule:
    return baseline("1f1b", Problem.create(num_stages=3, num_batches=4, p2p_time=0.5))


def _shifted_earlier(schedule: Schedule, device: int, position: int, delay: float) -> Schedule:
    """The schedule with one op moved earlier by ``delay`` (keeping its duration)."""
    rows = [list(row) for row in schedule.device_ops]
    op = rows[device][position]
    rows[device][position] = op._replace(start=op.start - delay, end=op.end - delay)
    return Schedule(schedule.problem, schedule.name, tuple(tuple(row) for row in rows))


def test_a_message_names_the_device_as_the_picture_draws_it() -> None:
    """Device index 1's second forward (micro-batch index 1, stage index 1) moved earlier than
    its input: the message says ``device 2`` and ``F2@s2``, the picture's second row is
    ``device 2``, and the schedule file says device 1, stage 1, micro-batch 1."""
    schedule = _one_f_one_b()
    position = next(k for k, op in enumerate(schedule.device_ops[1]) if op.microbatch == 1)
    broken = _shifted_earlier(schedule, 1, position, 0.25)
    messages = [m for m in validate(broken) if "before its dependency" in m]
    assert messages and messages[0].startswith("device 2: F2@s2 starts at")
    assert "dependency F2@s1 ends" in messages[0]  # the forward of stage index 0, device 1
    ax = plot_gantt(schedule)
    ticks = zip(ax.get_yticks(), ax.get_yticklabels(), strict=True)
    rows = {round(tick): label.get_text() for tick, label in ticks}
    assert rows[1] == "device 2"
    record = schedule_to_dict(broken)
    moved = [op for op in record["ops"] if op["device"] == 1 and op["microbatch"] == 1]
    assert {(op["stage"], op["kind"]) for op in moved} >= {(1, "F")}


def test_trace_names_count_from_one_and_ids_from_zero() -> None:
    """Chrome trace: process ``pid`` is the device index, its name the 1-based device; an event
    named ``F1`` is micro-batch index 0."""
    schedule = _one_f_one_b()
    events = trace_events(schedule)["traceEvents"]
    names = {e["pid"]: e["args"]["name"] for e in events if e.get("name") == "process_name"}
    assert names == {0: "device 1", 1: "device 2", 2: "device 3"}
    first = min((e for e in events if e.get("ph") == "X"), key=lambda e: (e["pid"], e["ts"]))
    assert re.match(r"^F1\b", first["name"]) and first["pid"] == 0
