"""The tabu search along the critical path (ppopt.solver.local).

Its pieces are checked against independent computations: the tails against a longest path
computed over a topological order of the timed schedule, the critical blocks against the
timeline (back to back, ending at the makespan), the swap estimate against the exact retimed
makespan (it is the longest path through the swapped pair, so never above it). The search
itself: every schedule it yields is valid under the memory limit, strictly shorter than the
one before and never below the lower bound; on issue 3's example it finds the known optimum.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from strategies import problems

from ppopt.baselines import baseline
from ppopt.limits import MemoryLimit
from ppopt.metrics import peak_memory
from ppopt.problem import Problem
from ppopt.schedule import Schedule
from ppopt.solver import local
from ppopt.solver.bounds import lower_bound, makespan_lower_bound
from ppopt.solver.floor import best_floor
from ppopt.solver.local import TabuSearch, tabu_search
from ppopt.validate import assert_valid


@st.composite
def searches(draw: st.DrawFn) -> tuple[Problem, TabuSearch]:
    """A random problem under a random memory factor and a search from its best baseline."""
    problem = draw(problems(max_devices=4, max_microbatches=6))
    factor = draw(st.sampled_from([None, 1.0, 1.5]))
    if factor is not None:
        problem = problem.with_limit(MemoryLimit(factor=factor))
    limit = problem.memory_caps
    floor = best_floor(problem, limit, "makespan")
    assume(floor is not None)  # nothing fits the limit: the solver reports that elsewhere
    assert floor is not None
    return problem, TabuSearch(floor, limit)


def longest_tails(search: TabuSearch) -> list[float]:
    """Longest chain from each task's start to the end, by a plain DP over the tasks in
    decreasing start order (positive durations make that a reverse topological order)."""
    cur, table = search.current, search.table
    following = {}
    for order in cur.orders:
        for a, b in zip(order, order[1:], strict=False):
            following[a] = b
    succ: dict[int, list[tuple[int, float]]] = {}
    for tid, befores in enumerate(table.deps):
        for before, latency in befores:
            succ.setdefault(before, []).append((tid, latency))
    tail = [0.0] * len(cur.start)
    for tid in sorted(range(len(cur.start)), key=lambda t: -cur.start[t]):
        options = [tail[n] + lat for n, lat in succ.get(tid, [])]
        if tid in following:
            options.append(tail[following[tid]])
        tail[tid] = table.dur[tid] + max(options, default=0.0)
    return tail


@settings(max_examples=40, deadline=None, derandomize=True)
@given(case=searches())
def test_tails_are_the_longest_paths_and_the_estimate_bounds_each_swap(
    case: tuple[Problem, TabuSearch],
) -> None:
    _, search = case
    tails = search._tails()
    assert tails == pytest.approx(longest_tails(search), abs=1e-9)
    makespan = search.current.makespan
    assert max(s + q for s, q in zip(search.current.start, tails, strict=True)) == pytest.approx(
        makespan
    )
    for move in search.candidates():
        trial = search._swapped(move.device, move.k)
        assert search._estimate(move, tails) <= trial.makespan + 1e-9


@settings(max_examples=40, deadline=None, derandomize=True)
@given(case=searches())
def test_tails_kept_across_moves_stay_the_longest_paths(case: tuple[Problem, TabuSearch]) -> None:
    """After each move the search recomputes only the tails that can change; at every step
    they equal the longest paths of the current orders computed from scratch."""
    _, search = case
    for step, _ in enumerate(search._iterations(0.05, deterministic=True, patience=None)):
        assert search._tails() == pytest.approx(longest_tails(search), abs=1e-9)
        if step == 30:
            break


@settings(max_examples=40, deadline=None, derandomize=True)
@given(case=searches())
def test_cutting_the_shortlist_by_the_estimate_keeps_every_choice(
    case: tuple[Problem, TabuSearch],
) -> None:
    """The shortlist stops timing moves once their estimate passes the chosen move's makespan;
    the search takes the very moves it takes when it times the whole shortlist."""
    problem, search = case
    start = search.schedule()

    def orders_along(steps: int) -> list[list[list[int]]]:
        walk = TabuSearch(start, problem.memory_caps)
        seen = []
        for step, _ in enumerate(walk._iterations(1e9, deterministic=True, patience=None)):
            seen.append(walk.current.orders)
            if step == steps:
                break
        return seen

    cut = orders_along(25)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(local, "ESTIMATE_SLACK", math.inf)  # time the whole shortlist
        whole = orders_along(25)
    assert cut == whole


@settings(max_examples=40, deadline=None, derandomize=True)
@given(case=searches())
def test_blocks_run_back_to_back_on_the_critical_path(case: tuple[Problem, TabuSearch]) -> None:
    _, search = case
    cur = search.current
    tails = search._tails()
    for device, first, last in search._blocks():
        order = cur.orders[device]
        assert last > first
        for a, b in zip(order[first:last], order[first + 1 : last + 1], strict=True):
            assert cur.end[a] == cur.start[b]
        for tid in order[first : last + 1]:  # every task of a block is critical
            assert cur.start[tid] + tails[tid] == pytest.approx(cur.makespan)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(case=searches())
def test_search_yields_valid_shorter_schedules_within_the_limit(
    case: tuple[Problem, TabuSearch],
) -> None:
    problem, search = case
    limit = problem.memory_caps
    previous = search.current.makespan
    bound = makespan_lower_bound(problem, limit)
    for schedule in search.run(0.05, deterministic=True):
        assert_valid(schedule, limit=limit)
        assert bound - 1e-9 <= schedule.makespan < previous
        previous = schedule.makespan
    for device, order in enumerate(search.current.orders):  # positions kept through swaps
        assert [search.where[tid] for tid in order] == [(device, k) for k in range(len(order))]


def test_finds_issue_3s_optimum_from_1f1b() -> None:
    """Issue 3's example: 1F1B takes 41 at 1x memory, the proven optimum is 40."""
    problem = Problem.create(4, 8, forward=1.0, backward=2.0, p2p=0.5, memory_limit="1x")
    start = baseline("1f1b", problem)
    assert start.makespan == 41.0
    found = list(tabu_search(start, problem.memory_caps, 1.0, deterministic=True))
    assert found and found[-1].makespan == 40.0


def test_patience_stops_a_search_at_the_optimum() -> None:
    """At the optimum no move yields a new best: with patience the search ends on its own
    long before its time is up, having yielded nothing."""
    problem = Problem.create(4, 8, forward=1.0, backward=2.0, p2p=0.5, memory_limit="1x")
    *_, optimum = tabu_search(baseline("1f1b", problem), problem.memory_caps, 1.0, True)
    assert optimum.makespan == 40.0
    search = TabuSearch(optimum, problem.memory_caps)
    assert list(search.run(600.0, deterministic=True, patience=20)) == []


#: A small split problem on which the best baseline (38.5) is not optimal and the search
#: improves it three times (measured: 38.0, 37.5, 37.0).
IMPROVABLE = Problem.create(
    4,
    8,
    forward=[0.5, 0.5, 1.5, 1.5],
    backward=[1.0, 1.5, 2.0, 1.0],
    weight=[1.0, 0.5, 0.5, 1.0],
    p2p=0.5,
    retained=0.5,
    memory_limit="1x",
)


def improvable_start() -> tuple[tuple[float, ...] | None, Schedule]:
    """:data:`IMPROVABLE`'s memory caps and its best baseline, where the searches start."""
    limit = IMPROVABLE.memory_caps
    floor = best_floor(IMPROVABLE, limit, "makespan")
    assert floor is not None
    return limit, floor


def test_each_new_best_is_yielded_once_its_run_of_improvements_ends() -> None:
    """The search yields, of each run of iterations that keep shortening the best, the last
    (the shortest); the iterations themselves are replayed by a second search with the same
    deterministic budget."""
    limit, floor = improvable_start()
    replay = TabuSearch(floor, limit)._iterations(1.0, deterministic=True, patience=None)
    runs: list[list[float]] = [[]]
    for shorter in replay:
        if shorter is None:
            runs.append([])
        else:
            runs[-1].append(shorter.makespan)
    expected = [run[-1] for run in runs if run]
    assert len(expected) >= 2  # the problem improves more than once
    yielded = list(TabuSearch(floor, limit).run(1.0, deterministic=True))
    assert [schedule.makespan for schedule in yielded] == expected
    for schedule in yielded:
        assert_valid(schedule, limit=limit)


def test_while_it_keeps_improving_the_search_yields_at_least_every_half_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Unless deterministic, a new best waits at most REPORT_SECONDS to be yielded (the
    progress lines): on a clock that jumps a second per reading, every new best is yielded
    at once, the very list of new bests the iterations make."""
    limit, floor = improvable_start()
    replay = TabuSearch(floor, limit)._iterations(1e6, deterministic=True, patience=20)
    expected = [shorter.makespan for shorter in replay if shorter is not None]
    ticks = itertools.count()
    monkeypatch.setattr(local, "time", SimpleNamespace(perf_counter=lambda: float(next(ticks))))
    yielded = list(TabuSearch(floor, limit).run(1e6, deterministic=False, patience=20))
    assert len(expected) >= 2
    assert [schedule.makespan for schedule in yielded] == expected


def test_ctrl_c_inside_the_search_yields_the_best_not_yet_yielded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Ctrl-C right after an improvement, before the search has yielded it: the search yields
    it, then lets the interrupt through."""
    limit, floor = improvable_start()
    search = TabuSearch(floor, limit)
    best_move = search._best_move

    def interrupted_after_a_new_best(*args: Any) -> Any:
        if search.current.makespan < floor.makespan:
            raise KeyboardInterrupt
        return best_move(*args)

    monkeypatch.setattr(search, "_best_move", interrupted_after_a_new_best)
    found = search.run(1.0, deterministic=True)
    first = next(found)
    assert first.makespan == search.current.makespan < floor.makespan
    assert_valid(first, limit=limit)
    with pytest.raises(KeyboardInterrupt):
        next(found)


def test_ctrl_c_during_the_search_keeps_its_best(monkeypatch: pytest.MonkeyPatch) -> None:
    """The large path's Ctrl-C while the tabu search runs: the solve returns the search's
    last improvement, valid and marked interrupted, not the baseline it started from."""
    from ppopt.solver import SolverOptions, run, solve

    limit, floor = improvable_start()
    first = next(tabu_search(floor, limit, 1.0, deterministic=True))
    assert first.makespan < floor.makespan

    def stopped_search(*args: object, **kwargs: object) -> Iterator[Schedule]:
        yield first
        raise KeyboardInterrupt

    monkeypatch.setattr(run, "tabu_search", stopped_search)
    options = SolverOptions(method="large", workers=1, deterministic=True, time_limit=5.0)
    result = solve(IMPROVABLE, options)
    assert result.interrupted
    assert result.objective_value == first.makespan
    assert_valid(result.schedule, limit=limit)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(
    problem=problems(max_devices=4, max_microbatches=8, split=True),
    factor=st.sampled_from([None, 1.0, 2.0]),
)
def test_span_search_yields_valid_narrower_schedules(problem: Problem, factor) -> None:
    """Issue 17: the tabu search for ``span``: every schedule it yields is valid within the
    limit, has a strictly smaller largest per-device span than the one before, and never
    goes below the span lower bound."""
    from ppopt.metrics import compute_metrics
    from ppopt.solver.bounds import lower_bound

    if factor is not None:
        problem = problem.with_limit(MemoryLimit(factor=factor))
    limit = problem.memory_caps
    floor = best_floor(problem, limit, "span")
    assume(floor is not None)
    assert floor is not None
    previous = compute_metrics(floor).span
    bound = lower_bound(problem, "span", limit)
    for schedule in tabu_search(floor, limit, 0.05, deterministic=True, objective="span"):
        assert_valid(schedule, limit=limit)
        span = compute_metrics(schedule).span
        assert bound - 1e-9 <= span < previous
        previous = span


def test_span_search_improves_the_static_zb_v_order() -> None:
    """Unequal V instance (the issue's p=8 m=32 F=10 B=14 W=10, p2p 0.5, at p=4 m=8): the
    span search shortens ZB-V's static order, whose final backwards wait behind W passes."""
    from ppopt.metrics import compute_metrics

    problem = Problem.create(
        4, 8, 10.0, 14.0, weight=10.0, p2p=0.5, num_chunks=2, placement="vshape"
    )
    start = baseline("zb-v", problem)
    found = list(tabu_search(start, problem.memory_caps, 1.0, True, objective="span"))
    assert found and compute_metrics(found[-1]).span < compute_metrics(start).span


# ----------------------------------------------------------------- overlapped F&B pairs


@st.composite
def paired_searches(draw: st.DrawFn) -> tuple[Problem, Schedule]:
    """A random problem with ``overlap_times`` (each pair between its parts' larger and their
    sum), a memory factor, and a start: its best baseline (DualPipeV with its pairs where it
    applies) or 1F1B-style orders with random legal pairs of an F and the B after it."""
    from dataclasses import replace

    from ppopt.errors import DeadlockError
    from ppopt.tasks import Kind
    from ppopt.timeline import compute_timeline

    base = draw(problems(max_devices=3, max_microbatches=6))
    shares = draw(st.lists(st.floats(0.0, 1.0), min_size=base.num_stages, max_size=base.num_stages))
    overlap = tuple(
        max(f, b) + u * min(f, b)
        for f, b, u in zip(base.forward, base.backward, shares, strict=True)
    )
    problem = replace(base, overlap=overlap)
    factor = draw(st.sampled_from([None, 1.0, 1.5]))
    if factor is not None:
        problem = problem.with_limit(MemoryLimit(factor=factor))
    limit = problem.memory_caps
    floor = best_floor(problem, limit, "makespan")
    assume(floor is not None)
    assert floor is not None
    if draw(st.booleans()):
        return problem, floor
    orders = floor.orders()
    pairs = []
    for order in orders:
        for before, after in zip(order, order[1:], strict=False):
            taken = {t for pair in pairs for t in pair}
            if (
                before.kind == Kind.F
                and problem.pair_fault(before, after) is None
                and not taken & {before, after}
                and draw(st.booleans())
            ):
                pairs.append((before, after))
    try:
        start = compute_timeline(problem, orders, "paired", pairs)
    except DeadlockError:
        return problem, floor
    assume(
        limit is None or all(p <= c + 1e-9 for p, c in zip(peak_memory(start), limit, strict=True))
    )
    return problem, start


def longest_paired_tails(search: TabuSearch) -> list[float]:
    """:func:`longest_tails` with pairs: a pair is one node (its duration, the successors of
    both parts, the device's task after its B), computed over the slots by decreasing start."""
    cur, table = search.current, search.table
    partner = {b: f for f, (b, _) in cur.pairs.items()}
    following = {}
    for order in cur.orders:
        for a, b in zip(order, order[1:], strict=False):
            following[a] = b
    succ: dict[int, list[tuple[int, float]]] = {}
    for tid, befores in enumerate(table.deps):
        for before, latency in befores:
            succ.setdefault(before, []).append((tid, latency))
    tail = [0.0] * len(cur.start)
    for tid in sorted(range(len(cur.start)), key=lambda t: -cur.start[t]):
        if tid in partner:
            continue
        members = [tid, cur.pairs[tid][0]] if tid in cur.pairs else [tid]
        last = members[-1]
        options = [tail[n] + lat for t in members for n, lat in succ.get(t, [])]
        if last in following:
            options.append(tail[following[last]])
        length = cur.pairs[tid][1] if tid in cur.pairs else table.dur[tid]
        for t in members:
            tail[t] = length + max(options, default=0.0)
    return tail


@settings(max_examples=40, deadline=None, derandomize=True)
@given(case=paired_searches())
def test_paired_search_yields_valid_shorter_schedules(case: tuple[Problem, Schedule]) -> None:
    """With pairs: the tails are the longest paths of the paired timeline (also as the
    search moves on), every move's estimate (swap, pairing or split) is below its exact
    makespan, and every schedule the search yields (pairs, memory and all) passes the
    validator, is strictly shorter than the one before (so never worse than its start) and
    never below the lower bound."""
    problem, start = case
    limit = problem.memory_caps
    search = TabuSearch(start, limit)
    tails = search._tails()
    assert tails == pytest.approx(longest_paired_tails(search), abs=1e-9)
    for move in search.candidates():  # swaps, pairings and splits: the shortlist's bound
        trial = search._trial(move)
        if trial is not None:  # not a pairing that deadlocks
            assert search._estimate(move, tails) <= trial.makespan + 1e-9
    steps = TabuSearch(start, limit)
    for step, _ in enumerate(steps._iterations(0.05, deterministic=True, patience=None)):
        assert steps._tails() == pytest.approx(longest_paired_tails(steps), abs=1e-9)
        if step == 30:
            break
    previous = start.makespan
    bound = lower_bound(problem, "makespan", limit)  # the bound with pairs
    for schedule in search.run(0.05, deterministic=True):
        assert_valid(schedule, limit=limit)
        assert bound - 1e-9 <= schedule.makespan < previous
        previous = schedule.makespan
    assert search.schedule().pairs == {
        (search.table.index.task(f), search.table.index.task(b))
        for f, (b, _) in search.current.pairs.items()
    }
    for device, order in enumerate(search.current.orders):
        assert [search.where[tid] for tid in order] == [(device, k) for k in range(len(order))]


def test_pairing_reaches_the_one_device_optimum_from_1f1b() -> None:
    """One device, m micro-batches, F = 1, B = 2, pairs of 2.25: 1F1B runs everything apart
    (m (F + B) = 15); the optimum is F1, then the m-1 pairs (F_{i+1}, B_i), then B_m:
    ``F + (m-1) O + B = 12`` (no order does better: each pair needs an earlier B's F done,
    so the first F and the last B run alone). From 1F1B's B_i, F_{i+1} the search must pair
    each B with the next F."""
    m, f, b, o = 5, 1.0, 2.0, 2.25
    problem = Problem.create(1, m, forward=f, backward=b, overlap=o, memory_limit="none")
    start = baseline("1f1b", problem)
    assert start.makespan == m * (f + b) and not start.pairs
    *_, best = tabu_search(start, None, 1.0, deterministic=True)
    assert_valid(best)
    assert best.makespan == pytest.approx(f + (m - 1) * o + b)
    assert len(best.pairs) == m - 1


def test_paired_search_shortens_dualpipev_on_unequal_stages() -> None:
    """The overlap benchmark's unequal stages at p = 4, m = 8 (F = B = W cycling 0.8 .. 1.4,
    pairs 0.6 (F + B), DualPipeV's own memory): the search from DualPipeV's pairs is shorter,
    valid within the same memory."""
    p, m = 4, 8
    times = [round(0.8 + 0.2 * ((5 * s) % 4), 3) for s in range(2 * p)]
    problem = Problem.create(
        p,
        m,
        forward=times,
        backward=times,
        weight=times,
        num_chunks=2,
        placement="vshape",
        overlap=[round(1.2 * t, 6) for t in times],
        memory_limit=[2 * p + 1.0] * p,
    )
    rival = baseline("dualpipev", problem)
    assert_valid(rival, limit=problem.memory_caps)
    *_, best = tabu_search(rival, problem.memory_caps, 2.0, deterministic=True)
    assert_valid(best, limit=problem.memory_caps)
    assert best.makespan < rival.makespan - 1e-6 and best.pairs
