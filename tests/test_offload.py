"""Offload (ppopt.offload): the copy lane's rules in the problem, the engine, the validator,
the baselines' ``offload: all``, the config and the schedule file."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppopt.baselines import applicable_baselines, baseline
from ppopt.baselines.offload import offload_to_fit
from ppopt.baselines.onefoneb import one_f_one_b_orders
from ppopt.config import problem_from_dict, problem_to_dict
from ppopt.errors import NoScheduleError, NotApplicableError, ProblemError
from ppopt.export.schedule_json import dumps_schedule, schedule_file_from_dict
from ppopt.export.torch_csv import torch_rows
from ppopt.export.trace import COPY_TID, trace_events
from ppopt.limits import fits
from ppopt.metrics import peak_memory
from ppopt.problem import Problem
from ppopt.schedule import Op, Schedule
from ppopt.solver import solve
from ppopt.solver.floor import floor_candidates
from ppopt.solver.options import SolverOptions
from ppopt.tasks import Kind, Task
from ppopt.timeline import compute_timeline
from ppopt.validate import memory_peaks, validate
from tests.strategies import problems, random_orders


@st.composite
def offload_problems(draw: st.DrawFn) -> Problem:
    """A random small problem that offloads all or a random set of (stage, micro-batch)."""
    problem = draw(problems(max_devices=3, max_microbatches=4))
    times = draw(st.sampled_from([0.25, 0.5, 1.0, 2.0]))
    if draw(st.booleans()):
        return problem.with_offload("all", times)
    pairs = [(s, i) for s in range(problem.num_stages) for i in range(problem.num_microbatches)]
    chosen = draw(st.lists(st.sampled_from(pairs), unique=True))
    return problem.with_offload("auto", times).with_offloaded(chosen)


def order_peak(problem: Problem, order: list[Task]) -> float:
    """A device's peak memory as its order implies it, computed here from the rule in words:
    walking the order, F and L allocate at their place, O frees the whole activation, B frees
    all but the retained part (all when unsplit) and W the retained part, a task's own
    allocation counted before its own free."""
    level = peak = 0.0
    split = problem.is_split
    for kind, s, _ in order:
        act, kept = problem.activation[s], problem.retained[s]
        if kind in (Kind.F, Kind.L):
            level += act
            peak = max(peak, level)
        elif kind == Kind.O:
            level -= act
        elif kind == Kind.B:
            level -= act - kept if split else act
        else:
            level -= kept
    return peak


# --------------------------------------------------------------------------- the engine


@settings(max_examples=60, deadline=None)
@given(offload_problems(), st.randoms(use_true_random=False))
def test_engine_timeline_is_valid_and_its_orders_give_it_back(
    problem: Problem, rng: random.Random
) -> None:
    """Random orders with copies anywhere their dependencies allow: the engine's timeline
    passes the validator, and the orders read back from its times re-time to the same ops."""
    schedule = compute_timeline(problem, random_orders(problem, rng))
    assert validate(schedule) == []
    again = compute_timeline(problem, schedule.orders())
    assert again.device_ops == schedule.device_ops
    assert again.copy_ops == schedule.copy_ops


@settings(max_examples=60, deadline=None)
@given(offload_problems(), st.randoms(use_true_random=False))
def test_engine_memory_never_exceeds_what_the_order_implies(
    problem: Problem, rng: random.Random
) -> None:
    """The lane waits of ppopt.offload make the engine's real (timed) peak at most the peak
    of the order walked in sequence, so a limit met by the order is met by the timeline."""
    orders = random_orders(problem, rng)
    schedule = compute_timeline(problem, orders)
    for d, order in enumerate(orders):
        assert memory_peaks(schedule)[d] <= order_peak(problem, order) + 1e-9
    assert peak_memory(schedule) == pytest.approx(memory_peaks(schedule))


def test_without_offload_nothing_changes() -> None:
    """``offload: none`` has no copy kinds, no copy rows and writes no offload key."""
    problem = Problem.create(num_stages=4, num_batches=8, weight_times=1.0, retained=0.25)
    assert Kind.O not in problem.kinds and Kind.L not in problem.kinds
    schedule = baseline("zb-h1", problem)
    assert schedule.copy_ops == ()
    data = problem_to_dict(problem)
    assert "offload_times" not in data and "offload" not in data["memory"]


# ------------------------------------------------------------------------- closed form


@pytest.mark.parametrize(("p", "m"), [(2, 4), (4, 8), (3, 3)])
def test_offload_everything_at_once_meets_one_activation(p: int, m: int) -> None:
    """1F1B's compute order with each O right after its F and each L right before its B.

    By the lane rules the next compute task waits for the offload's end and B for the
    reload's end, so a device never holds more than the micro-batch it is computing: its
    peak is one activation A, below 1F1B's ``min(p - d, m) * A`` on every device but the
    last. Each copy lengthens the critical path by at most its time e, and there are
    ``2 * p * m`` of them, so the makespan is within ``[T, T + 2 p m e]`` of 1F1B's T; as
    e -> 0 the limit of one activation is met at 1F1B's makespan."""
    e = 1e-3
    problem = Problem.create(num_stages=p, num_batches=m, activation=2.0)
    plain = baseline("1f1b", problem)
    offloading = problem.with_offload("all", e)
    schedule = compute_timeline(offloading, _eager_copies(problem))
    assert validate(schedule, [2.0]) == []
    assert memory_peaks(schedule) == (2.0,) * p
    assert validate(plain, [2.0]) != [] or p == 1 or m == 1
    assert plain.makespan <= schedule.makespan <= plain.makespan + 2 * p * m * e + 1e-9


def _eager_copies(problem: Problem) -> list[list[Task]]:
    """1F1B's compute orders with each O right after its F and each L right before its B."""
    orders = []
    for order in one_f_one_b_orders(problem):
        row: list[Task] = []
        for task in order:
            if task.kind == Kind.B:
                row.append(Task(Kind.L, task.stage, task.microbatch))
            row.append(task)
            if task.kind == Kind.F:
                row.append(Task(Kind.O, task.stage, task.microbatch))
        orders.append(row)
    return orders


# ----------------------------------------------------------------------- the validator


def _with_copy(schedule: Schedule, task: Task, start: float) -> Schedule:
    """The schedule with one copy moved to ``start`` (same duration)."""
    rows = []
    for row in schedule.copy_ops:
        out = []
        for op in row:
            if op.task == task:
                op = replace_op(op, start, start + op.duration)
            out.append(op)
        rows.append(tuple(sorted(out, key=lambda o: o.start)))
    return Schedule(schedule.problem, "edited", schedule.device_ops, copy_ops=tuple(rows))


def replace_op(op: Op, start: float, end: float) -> Op:
    return Op(op.device, op.kind, op.stage, op.microbatch, start, end)


def _small() -> Schedule:
    problem = Problem.create(num_stages=2, num_batches=3, offload="all", offload_times=0.5)
    schedule = compute_timeline(problem, _eager_copies(problem.without_offload()))
    assert validate(schedule) == []
    return schedule


def test_validator_catches_a_reload_ending_after_its_backward_starts() -> None:
    schedule = _small()
    backward = next(op for op in schedule.ops() if op.task == Task(Kind.B, 0, 0))
    late = _with_copy(schedule, Task(Kind.L, 0, 0), backward.start - 0.25)
    backward_name, reload_name = Task(Kind.B, 0, 0).label(), Task(Kind.L, 0, 0).label()
    assert any(backward_name in v and reload_name in v for v in validate(late))


def test_validator_catches_two_overlapping_copies_on_one_lane() -> None:
    schedule = _small()
    first = schedule.copy_ops[0][0]
    second = schedule.copy_ops[0][1]
    clash = _with_copy(schedule, second.task, first.start + 0.1)
    assert any("copy lane" in v and "overlap" in v for v in validate(clash))


def test_validator_counts_offloaded_memory_by_the_rule() -> None:
    """Device 0 of the 2-stage 1F1B with every micro-batch offloaded: F1 [0,1], O1 from 1;
    F2 waits for O1's end. Holding the activation until O's end, never two at once: the
    peak is 1 = one activation. Moving O1 past F2's start holds two: the validator says 2."""
    schedule = _small()
    assert memory_peaks(schedule)[0] == 1.0
    second = next(op for op in schedule.ops() if op.task == Task(Kind.F, 0, 1))
    late = _with_copy(schedule, Task(Kind.O, 0, 0), second.start + 0.1)
    assert memory_peaks(late)[0] == 2.0
    assert any("memory 2" in v for v in validate(late, [1.0]))
    assert not any("memory" in v for v in validate(schedule, [1.0]))


def test_validator_refuses_copies_of_a_microbatch_not_offloaded() -> None:
    schedule = _small()
    problem = schedule.problem.with_offload("auto").with_offloaded([(1, 2)])
    bad = Schedule(problem, "x", schedule.device_ops, copy_ops=schedule.copy_ops)
    assert any("does not offload" in v for v in validate(bad))


# --------------------------------------------------------------------- input and files


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"offload": "some"}, "memory.offload: expected none | all | auto, got 'some'"),
        ({"offload": "all", "offload_times": -1.0}, "offload_times[0]: must be > 0"),
        ({"offload": "all", "recompute": "all"}, "memory.offload: cannot be combined"),
        (
            {"offload": "auto", "microbatch_scale": [1.0, 2.0]},
            "memory.offload: cannot be combined with microbatch_scale",
        ),
    ],
)
def test_bad_offload_input_names_the_key(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ProblemError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Problem.create(num_stages=2, num_batches=2, **kwargs)  # type: ignore[arg-type]


def test_choice_only_on_auto_and_in_range() -> None:
    problem = Problem.create(num_stages=2, num_batches=2, offload="all")
    with pytest.raises(ProblemError, match="offloaded: the problem has offload all"):
        problem.with_offloaded([(0, 0)])
    with pytest.raises(ProblemError, match=r"offloaded: \(5, 0\) is not a stage"):
        problem.with_offload("auto").with_offloaded([(5, 0)])


def test_schedule_file_round_trip_keeps_the_copies() -> None:
    schedule = baseline(
        "zb-h1",
        Problem.create(
            num_stages=3,
            num_batches=4,
            weight_times=1.0,
            retained=0.5,
            offload="auto",
            offload_times=0.5,
        ).with_offloaded([(0, 0), (0, 1), (1, 2)]),
    )
    back = schedule_file_from_dict(json.loads(dumps_schedule(schedule))).schedule
    assert back.problem == schedule.problem
    assert back.copy_ops == schedule.copy_ops and back.device_ops == schedule.device_ops
    assert problem_from_dict(problem_to_dict(schedule.problem)) == schedule.problem


def test_trace_carries_the_copies_and_torch_export_refuses() -> None:
    schedule = _small()
    copies = [
        e
        for e in trace_events(schedule)["traceEvents"]
        if e.get("tid") == COPY_TID and e["ph"] == "X"
    ]
    assert len(copies) == 2 * 2 * 3
    with pytest.raises(NotApplicableError, match="no copy actions"):
        torch_rows(schedule)


def test_cli_end_to_end(tmp_path: Path) -> None:
    """``ppopt solve --schedule`` on an offloading config writes a file ``ppopt validate``
    accepts, so does the optimizer's; a torch export is refused in one line, exit 2."""
    config = tmp_path / "offload.yaml"
    config.write_text(
        "num_stages: 2\nnum_batches: 4\noffload_times: 0.5\nmemory:\n  offload: all\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}

    def ppopt(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ppopt", *args],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
        )

    out, best = tmp_path / "s.json", tmp_path / "best.json"
    done = ppopt("solve", "-c", str(config), "--schedule", "1f1b", "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert sum(op["kind"] in ("O", "L") for op in json.loads(out.read_text())["ops"]) == 16
    assert ppopt("validate", str(out)).returncode == 0
    solved = ppopt(
        "solve", "-c", str(config), "--workers", "1", "--time-limit", "3", "--json", str(best)
    )
    assert solved.returncode == 0, solved.stderr
    assert "offload: all, 8 of 8" in solved.stdout
    assert ppopt("validate", str(best)).returncode == 0
    refused = ppopt("export", str(best), "--format", "torch", "-o", str(tmp_path / "t.csv"))
    assert refused.returncode == 2
    assert refused.stderr.strip().count("\n") == 0 and "copy actions" in refused.stderr
    # the same levers as options, no config: --offload / --offload-times
    flags = ppopt(
        "solve", "-s", "2", "-b", "4", "--offload", "all", "--offload-times", "0.5",
        "--workers", "1", "--time-limit", "3", "--no-visualization",
    )  # fmt: skip
    assert flags.returncode == 0, flags.stderr
    assert "offload: all, 8 of 8" in flags.stdout
    wrong = ppopt("solve", "-s", "2", "-b", "2", "--offload", "sometimes")
    assert wrong.returncode == 2 and wrong.stderr.startswith("error: memory.offload:")


def test_offload_all_baselines_pass_the_validator() -> None:
    for name in ("1f1b", "gpipe", "zb-h1", "zb-h2"):
        problem = Problem.create(
            num_stages=4,
            num_batches=8,
            weight_times=1.0,
            retained=0.25,
            offload="all",
            offload_times=0.5,
        )
        assert validate(baseline(name, problem)) == []


# ------------------------------------------------------------------------- the optimizer


@settings(max_examples=8, deadline=None)
@given(
    problems(max_devices=2, max_microbatches=3, max_chunks=1),
    st.sampled_from([0.5, 0.75, 1.0]),
    st.sampled_from([0.25, 1.0]),
)
def test_optimizer_with_offload_auto_beats_every_fitting_baseline(
    problem: Problem, factor: float, copy: float
) -> None:
    """On random small problems under a limit, ``offload: auto`` passes the validator, is at
    least ppopt's lower bound and at most every baseline that fits, with and without
    offloading everything."""
    auto = problem.with_limit(f"{factor}x").with_offload("auto", copy)
    try:
        result = solve(auto, SolverOptions(time_limit=3, workers=1))
    except NoScheduleError:
        return
    schedule = result.schedule
    caps = auto.memory_caps
    assert validate(schedule, caps) == []
    assert schedule.makespan >= result.lower_bound - 1e-9
    every = [(s, i) for s in range(auto.num_stages) for i in range(auto.num_microbatches)]
    for variant in (auto.without_offload(), auto.with_offloaded(every)):
        for name, rival in applicable_baselines(variant).items():
            if fits(peak_memory(rival), caps):
                assert schedule.makespan <= rival.makespan + 1e-9, name


def test_optimizer_offloads_to_fit_where_nothing_fits_without() -> None:
    """p = 4, m = 8, F = B = W = 1 at 0.5x with copies of half a forward: without offload
    the best is 35 (bubble 31 %); with ``auto`` the optimizer offloads and reaches the
    no-memory bound 27 = (m + p - 1) * ... of ZB-H1's zero-bubble form: m (F+B+W) + (p-1)
    (F+B) = 24 + 6 - 3 = 27 when W fills the cool-down (the bound ppopt proves)."""
    base = Problem.create(
        num_stages=4, num_batches=8, weight_times=1.0, backward_times=1.0, memory_limit="0.5x"
    )
    plain = solve(base, SolverOptions(time_limit=10, workers=1)).schedule
    result = solve(base.with_offload("auto", 0.5), SolverOptions(time_limit=10, workers=1))
    assert validate(result.schedule, base.memory_caps) == []
    assert result.schedule.problem.num_offloaded > 0
    assert result.schedule.makespan < plain.makespan
    assert result.schedule.makespan == pytest.approx(result.lower_bound)


# ------------------------------------------------------------- offload to fit (the floor)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 4),
    st.integers(2, 8),
    st.sampled_from(["1f1b", "zb-h1", "gpipe"]),
    st.sampled_from([0.34, 0.5, 0.75]),
    st.sampled_from([0.25, 1.0]),
)
def test_offload_to_fit_makes_a_baseline_fit_when_it_says_so(
    p: int, m: int, name: str, factor: float, copy: float
) -> None:
    """A baseline's compute orders with the greedy offload choice: when it returns a choice,
    the timed schedule passes the validator under the limit (the order's walked memory bounds
    the timed one), and it offloads only micro-batches of the problem."""
    problem = Problem.create(
        num_stages=p, num_batches=m, weight=1.0, memory_limit=f"{factor}x", offload="auto",
        offload_times=copy,
    )  # fmt: skip
    caps = problem.memory_caps
    assert caps is not None
    orders = baseline(name, problem).orders()
    fitted = offload_to_fit(problem, orders, caps)
    if fitted is None:
        return
    chosen, with_copies = fitted
    schedule = compute_timeline(chosen, with_copies, "fit")
    assert validate(schedule, limit=caps) == []
    assert chosen.num_offloaded <= p * m


def test_offload_to_fit_meets_the_issue_target_at_half_memory() -> None:
    """p=8, m=32, F=B=W=1, copies half a forward, 0.5x (issue 18): the best schedule without
    offload has makespan 135 (bubble 28.9 %); ZB-H1's order with the micro-batches it must
    offload runs in 103 (bubble 6.8 %), a bubble more than 30 % lower."""
    problem = Problem.create(
        num_stages=8, num_batches=32, weight=1.0, memory_limit="0.5x", offload="auto",
        offload_times=0.5,
    )  # fmt: skip
    work = 3 * 32
    best = min(floor_candidates(problem, problem.memory_caps), key=lambda s: s.makespan)
    assert validate(best, limit=problem.memory_caps) == []
    without = min(
        s.makespan for s in floor_candidates(problem.without_offload(), problem.memory_caps)
    )
    bubble = 1 - work / best.makespan
    assert bubble <= 0.7 * (1 - work / without)
