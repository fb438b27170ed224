"""Overlapped F+B pairs (``overlap_times``, docs/contract.md §1): the rule, the validator
catching every kind of broken pair, the engine's timing of pairs, the schedule file, the
optimizer's choice of pairs (closed form on one device) and DualPipeV with real overlap."""

from __future__ import annotations

import json
import random
import re

import pytest

from ppopt import SolverOptions, solve
from ppopt.baselines import baseline
from ppopt.errors import DeadlockError, OrderError, ProblemError, ScheduleFileError
from ppopt.export.schedule_json import dumps_schedule, schedule_from_dict
from ppopt.metrics import compute_metrics, peak_memory
from ppopt.problem import Problem
from ppopt.schedule import Schedule
from ppopt.tasks import Kind, Task
from ppopt.timeline import compute_timeline
from ppopt.validate import check_tight, validate
from tests.cli.cli_helpers import run


def F(s: int, i: int) -> Task:
    return Task(Kind.F, s, i)


def B(s: int, i: int) -> Task:
    return Task(Kind.B, s, i)


def _two_stage(overlap: float | None = 2.5) -> Problem:
    return Problem.create(2, 4, forward=1, backward=2, overlap=overlap, memory_limit="none")


#: Device 0 of the 2-stage problem with F3 paired with B1, F4 with B2 (1-based names).
ORDER0 = [F(0, 0), F(0, 1), F(0, 2), B(0, 0), F(0, 3), B(0, 1), B(0, 2), B(0, 3)]
ORDER1 = [task for i in range(4) for task in (F(1, i), B(1, i))]
PAIRS = [(F(0, 2), B(0, 0)), (F(0, 3), B(0, 1))]


def _paired() -> Schedule:
    return compute_timeline(_two_stage(), [ORDER0, ORDER1], pairs=PAIRS)


def test_pair_rule_durations() -> None:
    problem = Problem.create(
        1, 2, forward=[1, 2], backward=[3, 2], overlap=[3.5, 3], num_chunks=2, memory_limit="none"
    )
    # savings: stage 0 1 + 3 - 3.5 = 0.5, stage 1 2 + 2 - 3 = 1
    assert problem.pair_duration(0, 0) == 3.5
    assert problem.pair_duration(1, 1) == 3.0
    assert problem.pair_duration(0, 1) == 1 + 2 - 0.5
    assert problem.pair_duration(1, 0) == 2 + 3 - 0.5


@pytest.mark.parametrize(
    ("overlap", "words"),
    [(0.5, "between max(forward, backward) = 2"), (3.5, "forward + backward = 3"), (-1, "> 0")],
)
def test_overlap_times_out_of_range_names_the_key(overlap: float, words: str) -> None:
    with pytest.raises(ProblemError, match=r"overlap_times\[0\].*" + re.escape(words)):
        _two_stage(overlap)


def test_engine_times_pairs_by_hand() -> None:
    schedule = _paired()
    ops = {op.task: op for op in schedule.ops()}
    # B1@s1 can start at 4 (F1, F2 on device 1 end at 2; F1@s2 1-2, B1@s2 2-4): the pair F3+B1
    # starts at 4 and lasts 2.5; F4+B2 waits for B2@s2 (5-7): 7 to 9.5.
    assert (ops[F(0, 2)].start, ops[F(0, 2)].end) == (4.0, 6.5)
    assert (ops[B(0, 0)].start, ops[B(0, 0)].end) == (4.0, 6.5)
    assert (ops[F(0, 3)].start, ops[B(0, 1)].end) == (7.0, 9.5)
    assert validate(schedule) == [] and check_tight(schedule) == []
    metrics = compute_metrics(schedule)
    assert metrics.busy[0] == 1 + 1 + 2.5 + 2.5 + 2 + 2  # a pair counts once
    assert schedule.pair_saving() == 2 * (3 - 2.5)


def test_engine_refuses_bad_pairs() -> None:
    problem = _two_stage()
    with pytest.raises(OrderError, match="different micro-batches"):
        compute_timeline(problem, [ORDER0, ORDER1], pairs=[(F(0, 2), B(0, 2))])
    with pytest.raises(OrderError, match="follows its forward"):
        compute_timeline(problem, [ORDER0, ORDER1], pairs=[(F(0, 1), B(0, 0))])
    with pytest.raises(OrderError, match="one device"):
        compute_timeline(problem, [ORDER0, ORDER1], pairs=[(F(0, 2), B(1, 0))])
    with pytest.raises(OrderError, match="no overlap_times"):
        compute_timeline(_two_stage(None), [ORDER0, ORDER1], pairs=PAIRS)


def _edited(schedule: Schedule, pairs: object = None, **changes: tuple[float, float]) -> Schedule:
    """The schedule with some ops' (start, end) replaced (by label) and other pairs."""
    rows = tuple(
        tuple(
            op._replace(start=changes[op.task.label()][0], end=changes[op.task.label()][1])
            if op.task.label() in changes
            else op
            for op in row
        )
        for row in schedule.device_ops
    )
    chosen = schedule.pairs if pairs is None else frozenset(pairs)  # type: ignore[arg-type]
    return Schedule(schedule.problem, "edited", rows, pairs=chosen)


def test_validator_accepts_the_engine_pairs_and_catches_each_broken_rule() -> None:
    good = _paired()
    assert validate(good) == []
    # the pairs dropped: the ops now overlap and last the wrong time
    alone = validate(_edited(good, pairs=[]))
    assert any("overlap" in v for v in alone) and any("expected 1.0" in v for v in alone)
    # same micro-batch (the order has F3 then B1: pair F3 with B3 instead)
    same = validate(_edited(good, pairs=[(F(0, 2), B(0, 2)), PAIRS[1]]))
    assert any("pairs a micro-batch with itself" in v for v in same)
    # different devices
    apart = validate(_edited(good, pairs=[(F(0, 2), B(1, 0)), PAIRS[1]]))
    assert any("spans device 1 and device 2" in v for v in apart)
    # wrong duration: both parts 4.0-7.0 instead of 4.0-6.5
    longer = validate(_edited(good, **{"F3@s1": (4.0, 7.0), "B1@s1": (4.0, 7.0)}))
    assert any("F3@s1 lasts 3.0" in v and "expected 2.5" in v for v in longer)
    # parts at different times
    split = validate(_edited(good, **{"B1@s1": (4.5, 7.0)}))
    assert any("parts run 4.0-6.5 and 4.5-7.0" in v for v in split)
    # dependency broken: the pair F4+B2 moved before B2@s2 ends at 7
    early = validate(_edited(good, **{"F4@s1": (6.5, 9.0), "B2@s1": (6.5, 9.0)}))
    assert any("B2@s1 starts at 6.5 before its dependency B2@s2 ends at 7.0" in v for v in early)
    # a problem without overlap_times
    plain = Schedule(_two_stage(None), "x", good.device_ops, pairs=good.pairs)
    assert any("no overlap_times" in v for v in validate(plain))


def test_memory_of_a_pair_is_forward_at_start_backward_at_end() -> None:
    schedule = _paired()
    # device 0 holds F1, F2 (2), F3 allocates at 4 before B1 frees at 6.5: peak 3
    assert peak_memory(schedule)[0] == 3.0
    assert validate(schedule, limit=[2.0]) != []
    assert validate(schedule, limit=[3.0]) == []


def test_random_pairings_are_valid_and_tight() -> None:
    """The engine's timing of any legal pairing of a 1F1B order passes the validator's
    independent check of every rule, tightness included."""
    rng = random.Random(7)
    deadlocks = 0
    for _ in range(30):
        p, m = rng.randint(1, 3), rng.randint(2, 6)
        f, b = rng.uniform(0.5, 2), rng.uniform(0.5, 2)
        problem = Problem.create(
            p,
            m,
            forward=f,
            backward=b,
            overlap=rng.uniform(max(f, b), f + b),
            p2p=rng.choice([0, 0.3]),
            memory_limit="none",
        )
        orders = baseline("1f1b", problem).orders()
        pairs = []
        for order in orders:
            for before, after in zip(order, order[1:], strict=False):
                used = {t for pair in pairs for t in pair}
                if (
                    before.kind == Kind.F
                    and after.kind == Kind.B
                    and before.microbatch > after.microbatch
                    and not used & {before, after}
                    and rng.random() < 0.7
                ):
                    pairs.append((before, after))
        try:
            schedule = compute_timeline(problem, orders, pairs=pairs)
        except DeadlockError:
            # a pair makes its F end later: F's successor on the next device may come before
            # what the pair's B waits for there
            deadlocks += 1
            continue
        assert validate(schedule) == [] and check_tight(schedule) == []
        assert len(schedule.pairs) == len(pairs)
    assert deadlocks < 30


def test_schedule_file_round_trip_and_a_broken_pair_is_refused() -> None:
    schedule = _paired()
    data = json.loads(dumps_schedule(schedule))
    assert data["pairs"] == [
        {"forward": [0, 2], "backward": [0, 0]},
        {"forward": [0, 3], "backward": [0, 1]},
    ]
    back, _ = schedule_from_dict(data)
    assert back.pairs == schedule.pairs and back.device_ops == schedule.device_ops
    data["pairs"] = [{"forward": [0, 2], "backward": [0, 2]}]
    with pytest.raises(ScheduleFileError):
        schedule_from_dict(data)
    assert "pairs" not in json.loads(dumps_schedule(baseline("1f1b", _two_stage(None))))


def test_optimizer_pairs_on_one_device_closed_form() -> None:
    """One device, m micro-batches: F1, then m-1 pairs (F_{i+1}, B_i), then B_m, so
    ``F + (m-1) O + B``; no order does better (each pair needs an earlier B's F done)."""
    m, f, b, o = 5, 1.0, 2.0, 2.25
    problem = Problem.create(1, m, forward=f, backward=b, overlap=o, memory_limit="none")
    result = solve(problem, SolverOptions(time_limit=10, workers=1))
    assert result.schedule.makespan == pytest.approx(f + (m - 1) * o + b)
    assert len(result.schedule.pairs) == m - 1
    assert validate(result.schedule) == []


def test_optimizer_takes_no_pair_that_does_not_help() -> None:
    """With overlap = F + B a pair saves nothing: the optimum is the optimum without pairs."""
    plain = Problem.create(2, 4, forward=1, backward=2, memory_limit="none")
    same = Problem.create(2, 4, forward=1, backward=2, overlap=3, memory_limit="none")
    options = SolverOptions(time_limit=10, workers=1)
    assert solve(same, options).schedule.makespan == solve(plain, options).schedule.makespan


def test_optimizer_at_or_below_dualpipev_with_overlap() -> None:
    problem = Problem.create(
        2,
        4,
        forward=1,
        backward=1,
        weight=1,
        overlap=1.4,
        num_chunks=2,
        placement="vshape",
        memory_limit="none",
    )
    rival = baseline("dualpipev", problem)
    assert rival.pairs and validate(rival) == []
    result = solve(problem, SolverOptions(time_limit=10, workers=1))
    assert validate(result.schedule) == []
    assert result.schedule.makespan <= rival.makespan + 1e-9
    assert result.lower_bound <= result.schedule.makespan + 1e-9


def test_dualpipev_overlap_pairs_every_overlapped_slot_and_saves_time() -> None:
    p, m = 4, 10
    kwargs = dict(forward=1, backward=1, weight=1, num_chunks=2, placement="vshape")
    apart = baseline("dualpipev", Problem.create(p, m, **kwargs, memory_limit="none"))
    both = baseline("dualpipev", Problem.create(p, m, **kwargs, overlap=1.5, memory_limit="none"))
    assert validate(both) == [] and check_tight(both) == []
    assert both.orders() == apart.orders()
    # per rank: (m - 2p + r + 1) steady steps of two pairs (one fewer on the last rank), and
    # p - r - 1 cool-down pairs
    expected = sum(2 * (m - 2 * p + r + 1) - (r == p - 1) + (p - r - 1) for r in range(p))
    assert len(both.pairs) == expected
    assert both.pair_saving() == pytest.approx(expected * 0.5)
    assert both.makespan < apart.makespan
    # the README's activation memory: PP + 1 chunk activations for PP = 2p stages
    assert max(peak_memory(both)) == 2 * p + 1


def test_cli_solve_with_overlap_times_writes_pairs(tmp_path) -> None:
    out = tmp_path / "s.json"
    result = run(
        "solve",
        "-s",
        "1",
        "-b",
        "4",
        "--overlap-times",
        "2.5",
        "--time-limit",
        "5",
        "--memory-limit",
        "none",
        "--workers",
        "1",
        "--json",
        str(out),
        "--no-visualization",
    )
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert len(data["pairs"]) == 3 and data["problem"]["overlap_times"] == [2.5]
    bad = run("solve", "-s", "1", "-b", "4", "--overlap-times", "9", "--no-visualization")
    assert bad.exit_code == 2 and "overlap_times[0]" in bad.output


@pytest.mark.parametrize("p", [2, 4])
@pytest.mark.parametrize("ratio", [0.6, 0.75, 0.9])
def test_dualpipev_overlap_within_the_readme_bubble_on_equal_times(p: int, ratio: float) -> None:
    """DeepSeek's README: DualPipeV's bubble is at most ``(PP/2-1)(F&B + B - 3W)`` for
    ``PP = 2p`` stages, with ``B`` the full backward and ``F&B`` a pair with a full backward
    (ppopt's pair is F with the input gradient, its W right after: ``F&B = overlap + W``).
    Timed tight, every device's idle inside its span stays within it."""
    t = 1.0
    overlap = ratio * 2 * t
    problem = Problem.create(
        p, 3 * p, forward=t, backward=t, weight=t, overlap=overlap, num_chunks=2,
        placement="vshape", memory_limit="none",
    )  # fmt: skip
    schedule = baseline("dualpipev", problem)
    readme = (p - 1) * ((overlap + t) + 2 * t - 3 * t)
    metrics = compute_metrics(schedule)
    spans = [row[-1].end - row[0].start for row in schedule.device_ops]
    assert all(span - busy <= readme + 1e-9 for span, busy in zip(spans, metrics.busy, strict=True))
    assert max(peak_memory(schedule)) == 2 * p + 1


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"recompute": "all"}, "overlap_times: cannot be combined with memory.recompute"),
        ({"offload": "all"}, "overlap_times: cannot be combined with memory.offload"),
        (
            {"microbatch_scale": [1.0, 2.0]},
            "overlap_times: cannot be combined with microbatch_scale",
        ),
    ],
)
def test_pairs_with_another_lever_are_refused_in_one_line(extra: dict, words: str) -> None:
    """A pair is one task of an F and a B: an R between them, copies timed against either
    part, or a pair of two micro-batches of different lengths are not modelled, and said so."""
    with pytest.raises(ProblemError, match="^" + re.escape(words)):
        Problem.create(num_stages=2, num_batches=2, weight=1.0, overlap=2.0, **extra)
