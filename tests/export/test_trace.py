"""The Chrome trace writer (``ppopt.export.trace``): layout, exact times, no overlaps, CLI.

Every property is checked against the schedule it came from: each op appears once on its
device's compute thread with ``ts = start * 1000`` and ``dur = (end - start) * 1000``; no two
events of one (pid, tid) overlap; the send events are exactly the cross-device dependency
edges (none when ``p2p_time`` is 0), and their lanes number as many as sends ever in flight.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from strategies import problems, timed
from typer.testing import CliRunner

from ppopt.baselines import baseline
from ppopt.cli import app
from ppopt.export.schedule_json import read_schedule
from ppopt.export.trace import US_PER_UNIT, trace_events, write_trace
from ppopt.problem import Problem
from ppopt.schedule import Op, Schedule
from ppopt.tasks import Task

#: Slack for ``ts + dur`` against the next start (float rounding of ``end*1000 - start*1000``).
EPS_US = 1e-6


def complete(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return [event for event in trace["traceEvents"] if event["ph"] == "X"]


def metadata(trace: dict[str, Any], name: str) -> dict[tuple[int, int], Any]:
    """``(pid, tid) -> args`` of the metadata events called ``name``."""
    return {
        (e["pid"], e["tid"]): e["args"]
        for e in trace["traceEvents"]
        if e["ph"] == "M" and e["name"] == name
    }


def compute_events(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in complete(trace) if e["tid"] == 0]


def send_events(trace: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in complete(trace) if e["tid"] != 0]


def cross_edges(schedule: Schedule) -> Counter[tuple[int, str, str, int]]:
    """(sender device, sender name, receiver device) of every edge between two devices."""
    problem = schedule.problem
    edges: Counter[tuple[int, str, str, int]] = Counter()
    for task in problem.tasks():
        for dep in problem.dependencies(task):
            src, dst = problem.device_of(dep.stage), problem.device_of(task.stage)
            if src != dst:
                edges[(src, f"{dep.kind}{dep.microbatch + 1}", "->", dst)] += 1
    return edges


def max_in_flight(intervals: list[tuple[float, float]]) -> int:
    """Largest number of half-open intervals covering one instant (sweep, ends before starts)."""
    points = sorted([(end, -1) for _, end in intervals] + [(start, 1) for start, _ in intervals])
    best = level = 0
    for _, step in points:
        level += step
        best = max(best, level)
    return best


def check_trace(schedule: Schedule, trace: dict[str, Any]) -> None:
    """Every property a trace of ``schedule`` must have (used by the examples and hypothesis)."""
    problem = schedule.problem
    assert json.loads(json.dumps(trace, allow_nan=False)) == trace
    assert trace["displayTimeUnit"] == "ms"
    assert trace["otherData"]["us_per_unit"] == US_PER_UNIT == 1000.0
    # every op once, exact times, names, categories, args
    events = {
        (e["pid"], e["args"]["kind"], e["args"]["stage"], e["args"]["microbatch"]): e
        for e in compute_events(trace)
    }
    assert len(events) == len(compute_events(trace)) == problem.num_tasks
    backward = "backward-input" if problem.is_split else "backward"
    for op in schedule.ops():
        event = events[(op.device, op.kind, op.stage, op.microbatch)]
        chunk = problem.stages_on(op.device).index(op.stage)
        suffix = f" c{chunk + 1}" if problem.num_chunks > 1 else ""
        assert event["name"] == f"{op.kind}{op.microbatch + 1}{suffix}"
        assert event["cat"] == {"F": "forward", "B": backward, "W": "weight"}[op.kind]
        assert event["ts"] == op.start * 1000.0
        assert math.isclose(event["dur"], op.duration * 1000.0, rel_tol=1e-12, abs_tol=EPS_US)
        assert problem.stages_on(op.device)[event["args"]["chunk"]] == op.stage
        assert isinstance(event["ts"], float) and isinstance(event["dur"], float)
    # no overlap on any track
    tracks: dict[tuple[int, int], list[tuple[float, float]]] = defaultdict(list)
    for e in complete(trace):
        assert e["dur"] >= 0
        tracks[(e["pid"], e["tid"])].append((e["ts"], e["ts"] + e["dur"]))
    for track in tracks.values():
        track.sort()
        for (_, end), (start, _) in zip(track, track[1:], strict=False):
            assert end <= start + EPS_US
    # processes and threads named
    names = metadata(trace, "process_name")
    assert names == {(d, 0): {"name": f"device {d + 1}"} for d in range(problem.num_devices)}
    sort = metadata(trace, "process_sort_index")
    assert sort == {(d, 0): {"sort_index": d} for d in range(problem.num_devices)}
    assert set(metadata(trace, "thread_name")) == {(d, 0) for d in range(problem.num_devices)} | {
        key for key in tracks if key[1] != 0
    }
    check_flows(schedule, trace)
    check_memory_counters(schedule, trace)
    # sends: exactly the cross-device edges, from the sender's end, p2p long
    sends = send_events(trace)
    if problem.p2p == 0:
        assert sends == []
        return
    by_task = {op.task: op for op in schedule.ops()}
    seen: Counter[tuple[int, str, str, int]] = Counter()
    for e in sends:
        match = re.fullmatch(r"send ([FBW]\d+)(?: c\d+)? -> device (\d+)", e["name"])
        assert match, e["name"]
        sender, arrow, dst = match[1], "->", int(match[2]) - 1
        seen[(e["pid"], sender, arrow, dst)] += 1
        op = by_task[Task(e["args"]["kind"], e["args"]["from_stage"], e["args"]["microbatch"])]
        assert e["ts"] == op.end * 1000.0
        assert math.isclose(e["dur"], problem.p2p * 1000.0, rel_tol=1e-9, abs_tol=EPS_US)
        assert e["args"]["to_device"] == dst != e["pid"]
    assert seen == cross_edges(schedule)
    # greedy lanes are as few as possible: as many as sends ever in flight on the device
    for device in range(problem.num_devices):
        mine = [(e["ts"], e["ts"] + e["dur"]) for e in sends if e["pid"] == device]
        lanes = {e["tid"] for e in sends if e["pid"] == device}
        assert lanes == set(range(1, max_in_flight(mine) + 1))


def check_flows(schedule: Schedule, trace: dict[str, Any]) -> None:
    """One flow arrow per edge between two devices: its start inside the producer, its end
    inside the consumer, both on the compute threads, one id per pair."""
    problem = schedule.problem
    by_task = {op.task: op for op in schedule.ops()}
    starts = {e["id"]: e for e in trace["traceEvents"] if e["ph"] == "s"}
    ends = {e["id"]: e for e in trace["traceEvents"] if e["ph"] == "f"}
    assert set(starts) == set(ends)
    assert len(starts) == sum(cross_edges(schedule).values())
    pairs = Counter()
    for number, start in starts.items():
        end = ends[number]
        assert end["bp"] == "e" and start["cat"] == end["cat"] == "flow"
        assert start["tid"] == end["tid"] == 0 and start["pid"] != end["pid"]
        sender = op_at(schedule, start["pid"], start["ts"], near="end")
        receiver = op_at(schedule, end["pid"], end["ts"], near="start")
        assert by_task[sender.task] == sender
        assert sender.task in problem.dependencies(receiver.task)
        pairs[(sender.task, receiver.task)] += 1
    assert all(count == 1 for count in pairs.values())


def op_at(schedule: Schedule, device: int, ts: float, near: str) -> Op:
    """The op of ``device`` that encloses ``ts`` within 0.5 us of its ``near`` end."""
    for op in schedule.device_ops[device]:
        start, end = op.start * 1000, op.end * 1000
        if start <= ts <= end and (end - ts if near == "end" else ts - start) <= 0.5:
            return op
    raise AssertionError(f"no op of device {device} encloses {ts} near its {near}")


def check_memory_counters(schedule: Schedule, trace: dict[str, Any]) -> None:
    """Per device a memory counter from 0 back to 0 whose largest value is the device's peak
    (computed here from the ops and the problem's memory rules, not from the trace writer)."""
    problem = schedule.problem
    for device, ops in enumerate(schedule.device_ops):
        counter = sorted(
            (e["ts"], e["args"]["activation"])
            for e in trace["traceEvents"]
            if e["ph"] == "C" and e["pid"] == device and e["name"] == "memory"
        )
        assert counter[0] == (0.0, 0.0) or counter[0][0] == 0.0
        assert counter[-1][1] == pytest.approx(0.0, abs=1e-9)
        level, peak = 0.0, 0.0
        for op in ops:  # one device runs one op at a time: take at start, free at end
            taken, freed = problem.memory_change(op.kind, op.stage)
            peak = max(peak, level + taken)
            level += taken - freed
        assert max(value for _, value in counter) == pytest.approx(peak, abs=1e-9)


# ------------------------------------------------------------------------------ examples


def test_seed_1f1b_without_latency_has_only_compute() -> None:
    schedule = baseline("1f1b", Problem.create(4, 8, forward=1.0, backward=2.0))
    trace = trace_events(schedule)
    check_trace(schedule, trace)
    assert len(compute_events(trace)) == 64
    assert send_events(trace) == []
    # 1F1B, equal stages: makespan (m + p - 1) * (f + b) = 33 units = 33 ms
    assert max(e["ts"] + e["dur"] for e in complete(trace)) == 33_000.0
    first = next(e for e in compute_events(trace) if e["pid"] == 3)
    assert (first["name"], first["ts"], first["dur"]) == ("F1", 3000.0, 1000.0)


def test_latency_gives_one_send_per_cross_device_edge() -> None:
    """1F1B, p=4, m=8: (p-1) forward and (p-1) backward edges per micro-batch."""
    schedule = baseline("1f1b", Problem.create(4, 8, forward=1.0, backward=2.0, p2p=0.5))
    trace = trace_events(schedule)
    check_trace(schedule, trace)
    sends = send_events(trace)
    assert len(sends) == 2 * 3 * 8
    assert {e["tid"] for e in sends} == {1}  # p2p shorter than any op: never two in flight
    first = min(sends, key=lambda e: (e["pid"], e["ts"]))
    assert first["name"] == "send F1 -> device 2"
    assert (first["pid"], first["ts"], first["dur"]) == (0, 1000.0, 500.0)
    assert metadata(trace, "thread_name")[(0, 1)] == {"name": "p2p send"}


def test_overlapping_sends_spread_over_lanes() -> None:
    """p=2, F=1, latency 3: device 1 sends F1..F4 at 1, 2, 3, 4 for 3 each, three in flight."""
    schedule = baseline("gpipe", Problem.create(2, 4, forward=1.0, backward=1.0, p2p=3.0))
    trace = trace_events(schedule)
    check_trace(schedule, trace)
    device0 = sorted((e["ts"], e["tid"], e["name"]) for e in send_events(trace) if e["pid"] == 0)
    assert device0 == [
        (1000.0, 1, "send F1 -> device 2"),
        (2000.0, 2, "send F2 -> device 2"),
        (3000.0, 3, "send F3 -> device 2"),
        (4000.0, 1, "send F4 -> device 2"),  # lane 1 is free again at 4 (touching, no overlap)
    ]
    assert metadata(trace, "thread_name")[(0, 3)] == {"name": "p2p send 3"}


def test_split_and_chunks_categories() -> None:
    problem = Problem.create(2, 4, forward=1.0, backward=1.0, weight=1.0, num_chunks=2, p2p=0.25)
    schedule = baseline("gpipe", problem)
    trace = trace_events(schedule)
    check_trace(schedule, trace)
    assert {e["cat"] for e in compute_events(trace)} == {"forward", "backward-input", "weight"}
    assert {e["args"]["chunk"] for e in compute_events(trace)} == {0, 1}
    assert {e["name"] for e in compute_events(trace) if e["args"]["stage"] == 3} == {
        f"{kind}{mb} c2" for kind in "FBW" for mb in range(1, 5)
    }  # stage 3 is device 2's second chunk


def test_flows_and_memory_counter_of_1f1b() -> None:
    """1F1B p=4 m=8: 2 (p-1) m = 48 arrows; device 1 holds p = 4 activations at its peak,
    device 4 one (docs/contract.md), back to 0 at the end."""
    schedule = baseline("1f1b", Problem.create(4, 8))
    trace = trace_events(schedule)
    check_trace(schedule, trace)
    assert sum(e["ph"] == "s" for e in trace["traceEvents"]) == 48
    counters = [e for e in trace["traceEvents"] if e["ph"] == "C"]
    peaks = [max(e["args"]["activation"] for e in counters if e["pid"] == d) for d in range(4)]
    assert peaks == [4, 3, 2, 1]


@given(timed(problems(max_devices=4, max_microbatches=5)))
def test_random_schedules(schedule: Schedule) -> None:
    check_trace(schedule, trace_events(schedule))


# --------------------------------------------------------------------------------- files


def test_write_trace_is_atomic_and_complete(tmp_path: Path) -> None:
    schedule = baseline("1f1b", Problem.create(3, 4, forward=1.0, backward=2.0, p2p=1.0))
    target = tmp_path / "run.trace.json"
    target.write_text("old")
    write_trace(schedule, target)
    assert [path.name for path in tmp_path.iterdir()] == ["run.trace.json"]
    assert json.loads(target.read_text()) == trace_events(schedule)


def test_write_trace_failure_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "run.trace.json"
    target.write_text("old")
    with pytest.raises(AttributeError):
        write_trace(None, target)  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert [path.name for path in tmp_path.iterdir()] == ["run.trace.json"]


# ----------------------------------------------------------------------------------- CLI


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def test_cli_solve_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("solve", "--schedule", "1f1b", "-s", "4", "-b", "8", "--no-visualization",
                 "--trace", "out.trace.json", "--json", "out.json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "wrote out.trace.json" in result.stderr
    schedule, _ = read_schedule(tmp_path / "out.json")
    trace = json.loads((tmp_path / "out.trace.json").read_text())
    check_trace(schedule, trace)
    assert len(compute_events(trace)) == 64


def test_cli_plot_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    made = run("solve", "--schedule", "1f1b", "-s", "3", "-b", "4", "--p2p-time", "0.5",
               "--no-visualization", "--json", "s.json", "--quiet")  # fmt: skip
    assert made.exit_code == 0, made.stderr
    result = run("plot", "s.json", "-o", "x.trace.json")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "wrote x.trace.json\n"
    schedule, _ = read_schedule(tmp_path / "s.json")
    trace = json.loads((tmp_path / "x.trace.json").read_text())
    assert trace == trace_events(schedule)
    check_trace(schedule, trace)
    assert len(send_events(trace)) == 2 * 2 * 4
    assert sorted(path.name for path in tmp_path.iterdir()) == ["s.json", "x.trace.json"]
