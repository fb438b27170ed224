"""PyTorch's ``compute_comms`` table (``ppopt export --format torch-comms``): content, PyTorch's
parser, and real runs.

* the table itself, without PyTorch: the worked example of docs/runtime_torch.md, hypothesis
  properties over random problems and orders (every compute action once in run order, SENDs
  right after their producers, RECVs before their consumers and in each peer's send order,
  one REDUCE_GRAD per stage after its last W/B; RECVs at the planned arrival), refusal of
  deadlocking orders;
* PyTorch's own parser reads every cell back and its validator infers our placement (no
  processes; skipped without torch);
* real runs: an optimal split schedule solved for ``runtime: torch`` and a ZB-V schedule run
  on CPU with gloo by ``_PipelineScheduleRuntime._load_csv(path, format="compute_comms")``,
  exactly as written; gradients and losses equal the unpipelined model's (skipped without
  torch).
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from importlib.util import find_spec
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from strategies import problems, timed

from ppopt.baselines import baseline
from ppopt.errors import DeadlockError
from ppopt.export.torch_comms import dumps_torch_comms_csv, torch_comms_rows, write_torch_comms_csv
from ppopt.export.torch_csv import torch_rows
from ppopt.problem import Problem
from ppopt.schedule import Schedule

REPO = Path(__file__).resolve().parents[2]
CELL = re.compile(r"(\d+)(F|I|W|B|SEND_F|RECV_F|SEND_B|RECV_B|REDUCE_GRAD)(\d*)")
COMPUTE = {"F", "I", "W", "B"}
SENTINEL = "old table, must survive\n"
#: docs/runtime_torch.md, the compute_comms section: p=2, m=2, split backward, 1F1B order.
WORKED_EXAMPLE = (
    "0F0,0SEND_F0,0F1,0SEND_F1,0RECV_B0,0I0,0W0,0RECV_B1,0I1,0W1,0REDUCE_GRAD\n"
    "1RECV_F0,1RECV_F1,1F0,1I0,1SEND_B0,1W0,1F1,1I1,1SEND_B1,1W1,1REDUCE_GRAD\n"
)

Cell = tuple[int, str, int | None]  # stage, type, micro-batch (None for REDUCE_GRAD)


#: CI installs the CPU build ``torch==2.13.0``.
needs_torch = pytest.mark.skipif(find_spec("torch") is None, reason="torch is not installed")


def parse_table(text: str) -> list[list[Cell]]:
    """The cells of a table, one list per rank (our reading: the regular expression of
    PyTorch's ``_Action.from_str``, independent of the writer)."""
    rows = []
    for row in csv.reader(text.splitlines()):
        cells: list[Cell] = []
        for cell in row:
            match = CELL.fullmatch(cell)
            assert match, f"bad cell {cell!r}"
            cells.append((int(match[1]), match[2], int(match[3]) if match[3] else None))
        rows.append(cells)
    return rows


# ----------------------------------------------------------------------- the table itself


def test_worked_example_of_the_docs_comes_out_exactly() -> None:
    """Split 1F1B, p=2, m=2: rank 1 posts both receives first (each arrives by the end of the
    action it is posted before), every send follows its producer, REDUCE_GRAD ends each row."""
    schedule = baseline("1f1b", Problem.create(2, 2, weight=1.0))
    assert dumps_torch_comms_csv(schedule) == WORKED_EXAMPLE
    docs = (REPO / "docs" / "runtime_torch.md").read_text(encoding="utf-8")
    assert all(row in docs for row in WORKED_EXAMPLE.splitlines())


def test_unsplit_table_sends_input_gradients_after_full_backwards() -> None:
    schedule = baseline("1f1b", Problem.create(2, 2))
    assert dumps_torch_comms_csv(schedule) == (
        "0F0,0SEND_F0,0F1,0SEND_F1,0RECV_B0,0B0,0RECV_B1,0B1,0REDUCE_GRAD\n"
        "1RECV_F0,1RECV_F1,1F0,1B0,1SEND_B0,1F1,1B1,1SEND_B1,1REDUCE_GRAD\n"
    )


def test_neighbours_on_one_rank_exchange_nothing() -> None:
    """zb-v on p=2: stages 1→2 (rank 1) and 3→... hand over in memory; only the four
    rank-crossing edges 0↔1 and 2↔3 carry messages."""
    problem = Problem.create(2, 3, weight=1.0, num_chunks=2, placement="vshape")
    rows = parse_table(dumps_torch_comms_csv(baseline("zb-v", problem)))
    kinds = {(s, t) for row in rows for s, t, _ in row if t not in COMPUTE}
    assert kinds == {
        (0, "SEND_F"), (1, "RECV_F"), (2, "SEND_F"), (3, "RECV_F"),
        (3, "SEND_B"), (2, "RECV_B"), (1, "SEND_B"), (0, "RECV_B"),
        (0, "REDUCE_GRAD"), (1, "REDUCE_GRAD"), (2, "REDUCE_GRAD"), (3, "REDUCE_GRAD"),
    }  # fmt: skip


def test_receives_are_moved_earlier_to_follow_the_send_order() -> None:
    """Times that say rank 1's second input gradient arrives before its first (stale
    times, not these orders' own): posting by arrival would swap the two messages, so the
    first RECV moves up beside the second."""
    schedule = baseline("1f1b", Problem.create(2, 2, weight=1.0))
    rank0, rank1 = schedule.device_ops
    retimed = tuple(
        op._replace(start=-1.0, end=-1.0) if (op.kind, op.microbatch) == ("B", 1) else op
        for op in rank1
    )
    stale = Schedule(schedule.problem, "stale", (rank0, retimed))
    assert torch_comms_rows(stale)[0] == [
        "0RECV_B0", "0RECV_B1", "0F0", "0SEND_F0", "0F1", "0SEND_F1",
        "0I0", "0W0", "0I1", "0W1", "0REDUCE_GRAD",
    ]  # fmt: skip


def _message(cell: Cell) -> tuple[int, str, int | None]:
    """A message as (receiving stage, direction, micro-batch), from its SEND or RECV cell."""
    stage, kind, mb = cell
    if kind == "SEND_F":
        return stage + 1, "F", mb
    if kind == "SEND_B":
        return stage - 1, "B", mb
    return stage, kind[-1], mb


def _check_table(schedule: Schedule) -> list[list[Cell]]:
    """The properties every table has, whatever the times of the schedule say."""
    problem = schedule.problem
    split, last = problem.is_split, problem.num_stages - 1
    rows = parse_table(dumps_torch_comms_csv(schedule))
    assert len(rows) == problem.num_devices
    back = {"F": "F", "I": "B", "W": "W"} if split else {"F": "F", "B": "B"}
    where: dict[Cell, tuple[int, int]] = {}
    for rank, row in enumerate(rows):
        for k, cell in enumerate(row):
            assert cell not in where, f"{cell} twice"
            where[cell] = (rank, k)
    expected_sends: set[Cell] = set()
    for rank, (row, ops) in enumerate(zip(rows, schedule.device_ops, strict=True)):
        # every compute action once, in the device's run order
        compute = [(s, back[t], mb) for s, t, mb in row if t in COMPUTE]
        assert compute == [(op.stage, op.kind, op.microbatch) for op in ops]
        for op in ops:  # the sends the placement calls for
            if op.kind == "F" and op.stage < last and problem.device_of(op.stage + 1) != rank:
                expected_sends.add((op.stage, "SEND_F", op.microbatch))
            if op.kind == "B" and op.stage > 0 and problem.device_of(op.stage - 1) != rank:
                expected_sends.add((op.stage, "SEND_B", op.microbatch))
        for k, (s, t, mb) in enumerate(row):
            if t.startswith("SEND"):  # right after its producer (only sends between)
                producer = next(c for c in reversed(row[:k]) if c[1] in COMPUTE)
                assert producer == (s, "F" if t == "SEND_F" else ("I" if split else "B"), mb)
            elif t.startswith("RECV"):  # before its consumer, on the consumer's rank
                consumer = (s, "F" if t == "RECV_F" else ("I" if split else "B"), mb)
                assert where[consumer][0] == rank and where[consumer][1] > k
    sends = {c for row in rows for c in row if c[1].startswith("SEND")}
    recvs = {_message(c) for row in rows for c in row if c[1].startswith("RECV")}
    assert sends == expected_sends
    assert recvs == {_message(c) for c in sends}
    # per peer: the RECVs a rank posts from one peer follow that peer's send order
    sent: dict[tuple[int, int], list] = defaultdict(list)
    received: dict[tuple[int, int], list] = defaultdict(list)
    for rank, row in enumerate(rows):
        for cell in row:
            if cell[1].startswith("SEND"):
                message = _message(cell)
                sent[rank, problem.device_of(message[0])].append(message)
            elif cell[1].startswith("RECV"):
                peer = cell[0] - 1 if cell[1] == "RECV_F" else cell[0] + 1
                received[problem.device_of(peer), rank].append(_message(cell))
    assert sent == received
    # one REDUCE_GRAD per stage, on its rank, after its last W (B when not split)
    reduce = "W" if split else "B"
    for s in range(problem.num_stages):
        rank, k = where[s, "REDUCE_GRAD", None]
        assert rank == problem.device_of(s)
        assert all(pos < k for (st_, t, _), (_, pos) in where.items() if (st_, t) == (s, reduce))
    return rows


ALL_PLACEMENTS = ("interleaved", "vshape", "explicit")


@given(timed(problems(placements=ALL_PLACEMENTS)))
def test_table_properties_and_receives_at_the_planned_arrival(schedule: Schedule) -> None:
    """On timed schedules each RECV sits right before the receiver's first action planned to
    end at or after its message's arrival (producer's end + latency)."""
    rows = _check_table(schedule)
    problem = schedule.problem
    ends = {(op.stage, op.kind, op.microbatch): op.end for op in schedule.ops()}
    for rank, row in enumerate(rows):
        ops = schedule.device_ops[rank]
        seen = 0  # compute actions before the current cell
        for s, t, mb in row:
            if t in COMPUTE:
                seen += 1
            elif t.startswith("RECV"):
                producer = (s - 1, "F", mb) if t == "RECV_F" else (s + 1, "B", mb)
                arrival = ends[producer] + problem.p2p
                first = next(k for k, op in enumerate(ops) if op.end >= arrival - 1e-9)
                assert seen == first, (rank, s, t, mb)


@given(timed(problems(placements=ALL_PLACEMENTS)), st.randoms(use_true_random=False))
def test_table_properties_hold_whatever_the_times(schedule: Schedule, rng) -> None:
    """Random times (stale, inconsistent with the orders): still one valid, FIFO table."""
    rows = tuple(
        tuple(op._replace(end=rng.choice([0.0, 1.0, 2.5, 7.0])) for op in row)
        for row in schedule.device_ops
    )
    _check_table(Schedule(schedule.problem, "stale", rows))


def test_deadlocking_order_is_refused_and_leaves_the_old_file(tmp_path: Path) -> None:
    """Device 1 (the last stage) running B0 before F0 can never start: no table is written."""
    good = baseline("gpipe", Problem.create(2, 2))
    row1 = list(good.device_ops[1])
    row1.insert(0, row1.pop(next(k for k, op in enumerate(row1) if op.kind == "B")))
    bad = Schedule(good.problem, "bad", (good.device_ops[0], tuple(row1)))
    target = tmp_path / "schedule.csv"
    target.write_text(SENTINEL)
    with pytest.raises(DeadlockError):
        write_torch_comms_csv(target, bad)
    assert target.read_text() == SENTINEL
    assert [p.name for p in tmp_path.iterdir()] == ["schedule.csv"]


# ------------------------------------------------------------- PyTorch's own parser


@needs_torch
@given(timed(problems(placements=ALL_PLACEMENTS)))
def test_pytorch_parses_every_cell_and_infers_our_placement(schedule: Schedule) -> None:
    from torch.distributed.pipelining.schedules import _Action, _validate_schedule

    problem = schedule.problem
    cells = torch_comms_rows(schedule)
    actions = {rank: [_Action.from_str(c) for c in row] for rank, row in enumerate(cells)}
    assert {rank: [str(a) for a in row] for rank, row in actions.items()} == dict(enumerate(cells))
    mapping = _validate_schedule(
        actions, problem.num_devices, problem.num_stages, problem.num_microbatches
    )
    assert mapping == dict(enumerate(problem.placement))


# ------------------------------------------------------------------------- real runs


def _check_run(schedule: Schedule, tmp_path: Path) -> None:
    """Export as compute_comms, run on ``p`` gloo processes exactly as written, compare
    with the unpipelined model."""
    from torch_runtime.pipeline import Spec, assert_equal_to_reference, run_pipeline

    problem = schedule.problem
    table = tmp_path / "schedule.csv"
    write_torch_comms_csv(table, schedule)
    spec = Spec(
        str(table),
        problem.num_devices,
        problem.num_stages,
        problem.num_microbatches,
        csv_format="compute_comms",
    )
    run = run_pipeline(spec)
    assert run.actions == dict(enumerate(torch_comms_rows(schedule)))  # as written, no lowering
    assert run.executed == dict(enumerate(torch_rows(schedule)))
    assert run.stage_to_rank == dict(enumerate(problem.placement))
    assert_equal_to_reference(spec, run)


@needs_torch
def test_torch_optimal_split_schedule_runs_as_written(tmp_path: Path) -> None:
    """The optimum of p=4, m=4, F=B=W=1 planned for PyTorch (``runtime: torch``), some W
    away from its I: the unpipelined gradients."""
    from ppopt.solver import SolverOptions, solve

    problem = Problem.create(4, 4, forward=1, backward=1, weight=1, runtime="torch")
    result = solve(problem, SolverOptions(time_limit=30, workers=1, deterministic=True))
    assert result.status == "OPTIMAL"
    deferred = [
        w
        for row in result.schedule.orders()
        for k, w in enumerate(row)
        if w.kind == "W" and row[k - 1] != ("B", w.stage, w.microbatch)
    ]
    assert deferred, "expected a schedule that defers some W"
    _check_run(result.schedule, tmp_path)


@needs_torch
def test_zb_v_schedule_runs_as_written(tmp_path: Path) -> None:
    """ZB-V, p=4, m=8: rank 0 sends stage 0's activations and stage 7's input gradients to
    rank 1 over one channel; the FIFO receives keep them apart."""
    problem = Problem.create(4, 8, weight=1, num_chunks=2, placement="vshape", runtime="torch")
    _check_run(baseline("zb-v", problem), tmp_path)
