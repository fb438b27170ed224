"""The partition search of ``partition: auto`` (ppopt/solver/partition.py): its bound over
every partition holds against exhaustive optima, its relaxation is the exact min over cut
points, its choice is a valid schedule never worse than the baselines it timed, and on a
large-vocabulary profile it beats the even split."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from solver.exhaustive import exhaustive_optimum

from ppopt.layers import Layer, Profile
from ppopt.limits import MemoryLimit
from ppopt.partition import LayeredProblem, even_sizes
from ppopt.solver import SolverOptions
from ppopt.solver.partition import (
    baseline_partitions,
    partition_lower_bound,
    relaxation,
    solve_partition,
)
from ppopt.validate import validate

FAST = SolverOptions(time_limit=5, workers=1, deterministic=True)


def compositions(n: int, parts: int) -> list[tuple[int, ...]]:
    """Every way to write n as an ordered sum of ``parts`` positive counts."""
    return [
        tuple(b - a for a, b in itertools.pairwise((0, *cuts, n)))
        for cuts in itertools.combinations(range(1, n), parts - 1)
    ]


def tiny_profiles() -> st.SearchStrategy[Profile]:
    layer = st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 2))
    return st.lists(layer, min_size=3, max_size=4).map(
        lambda rows: Profile(tuple(Layer(f"l{i}", f, b, a) for i, (f, b, a) in enumerate(rows)))
    )


@settings(max_examples=25, deadline=None)
@given(tiny_profiles(), st.sampled_from([0.0, 0.5]), st.sampled_from(["none", "1x"]))
def test_bound_over_every_partition_holds_against_exhaustive_optima(
    profile: Profile, p2p: float, limit: str
) -> None:
    layered = LayeredProblem(
        profile, num_devices=2, num_microbatches=2, p2p=p2p, memory_limit=MemoryLimit.parse(limit)
    )
    optima = []
    for sizes in compositions(len(profile), 2):
        problem = layered.problem(sizes)
        try:
            optima.append(exhaustive_optimum(problem, problem.memory_caps).value)
        except ValueError:  # no schedule of this partition fits the even split's 1x
            continue
    assert optima  # the even split always has one
    assert partition_lower_bound(layered) <= min(optima) * (1 + 1e-9)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.floats(0.1, 5), min_size=3, max_size=8),
    st.integers(1, 3),
    st.sampled_from([0.0, 1.0]),
    st.booleans(),
)
def test_relaxation_is_the_exact_min_over_cut_points(
    times: list[float], stages: int, p2p: float, split: bool
) -> None:
    weight = {"weight": 0.5} if split else {}
    profile = Profile(tuple(Layer(f"l{i}", t, 2 * t, 1.0, **weight) for i, t in enumerate(times)))
    layered = LayeredProblem(profile, stages, 3, p2p=p2p, memory_limit=MemoryLimit())
    value, sizes = relaxation(layered)

    def worst(cut: tuple[int, ...]) -> float:
        """The largest per-stage bound, summed layer by layer from the problem's stages."""
        problem = layered.problem(cut)
        out = []
        for s in range(stages):
            head = problem.forward_head(s)
            tail = 0.0 if split else sum(problem.backward[:s]) + s * p2p
            work = problem.num_microbatches * (
                problem.forward[s]
                + problem.backward[s]
                + (problem.weight[s] if problem.weight else 0.0)
            )
            out.append(head + work + tail)
        return max(out)

    best = min(worst(cut) for cut in compositions(len(times), stages))
    assert math.isclose(value, best, rel_tol=1e-9)
    assert math.isclose(worst(sizes), best, rel_tol=1e-9)


def large_vocabulary(blocks: int = 14) -> Profile:
    """An embedding, identical blocks and an LM head + loss three times a block."""
    return Profile.expand(
        [
            Layer("embed", 0.3, 0.3, 0.5, weight=0.2),
            Layer("layers", 1.0, 1.0, 1.0, weight=0.8, count=blocks),
            Layer("output", 3.0, 3.0, 3.0, weight=2.4),
        ]
    )


def test_auto_beats_the_even_split_and_is_valid() -> None:
    layered = LayeredProblem(large_vocabulary(), num_devices=4, num_microbatches=8)
    search = solve_partition(layered, FAST)
    schedule = search.result.schedule
    assert schedule.problem.partition is not None
    assert schedule.problem.partition.sizes == search.sizes
    assert validate(schedule, schedule.problem.memory_caps) == []
    even = [c for c in search.candidates if c.label == "even"][0]
    assert even.floor is not None and search.result.objective_value <= 0.9 * even.floor
    # never worse than a baseline schedule on any partition it timed
    timed = [c.floor for c in search.candidates if c.floor is not None]
    assert search.result.objective_value <= min(timed) * (1 + 1e-9)
    assert search.lower_bound <= search.result.objective_value
    assert 0 <= search.gap < 1


def test_chunks_and_v_placement() -> None:
    layered = LayeredProblem(
        large_vocabulary(10), num_devices=2, num_microbatches=4, num_chunks=2, placement="vshape"
    )
    search = solve_partition(layered, FAST)
    assert sum(search.sizes) == 12 and len(search.sizes) == 4
    schedule = search.result.schedule
    assert validate(schedule, schedule.problem.memory_caps) == []
    assert schedule.problem.placement == (0, 1, 1, 0)


def test_baseline_partitions_are_named_and_fit() -> None:
    layered = LayeredProblem(large_vocabulary(), num_devices=4, num_microbatches=8)
    seeds = baseline_partitions(layered)
    assert seeds["even"] == even_sizes(16, 4)
    assert any(label.startswith("fewer-first-last(") for label in seeds)
    assert seeds["balanced"][-1] < seeds["balanced"][1]  # the heavy head gets fewer layers


def test_no_partition_fits_is_no_schedule() -> None:
    profile = Profile.expand([Layer("big", 1, 1, 1, parameters=20.0, count=4)])
    layered = LayeredProblem(profile, 2, 2, memory_limit=MemoryLimit(values=(10.0,)))
    from ppopt.errors import NoScheduleError

    with pytest.raises(NoScheduleError, match="no partition of the layers fits"):
        solve_partition(layered, FAST)


def test_a_stage_of_weightless_layers_is_skipped() -> None:
    """A layer without weights (Tanh) has W = 0; alone on a stage it would give W 0 there,
    which no problem accepts: auto leaves such partitions out instead of failing."""
    profile = Profile((
        Layer("a", 1, 1, 1, weight=1),
        Layer("act", 0.5, 0.5, 1, weight=0.0),
        Layer("b", 1, 1, 1, weight=1),
        Layer("c", 1, 1, 1, weight=1),
    ))  # fmt: skip
    layered = LayeredProblem(profile, num_devices=3, num_microbatches=3)
    search = solve_partition(layered, FAST)
    assert search.sizes in ((1, 2, 1), (2, 1, 1))
    assert all(c.sizes != (1, 1, 2) for c in search.candidates)


def test_every_baseline_partition_is_timed_once_even_when_time_is_short(monkeypatch) -> None:
    """The baseline partitions are always candidates with their floor (auto is compared to
    them), however short the limit, and no partition's baselines are run twice (the
    torchtitan offsets timed to pick the best one are not timed again)."""
    import ppopt.solver.partition as search_module

    calls: list[tuple[int, ...]] = []
    real = search_module.best_floor

    def counted(problem, caps, objective):  # type: ignore[no-untyped-def]
        calls.append(problem.partition.sizes)
        return real(problem, caps, objective)

    monkeypatch.setattr(search_module, "best_floor", counted)
    layered = LayeredProblem(large_vocabulary(), num_devices=4, num_microbatches=8)
    search = solve_partition(layered, SolverOptions(time_limit=0.05, workers=1))
    assert calls and len(calls) == len(set(calls))
    timed = {c.sizes: c for c in search.candidates}
    for sizes in baseline_partitions(layered).values():
        assert sizes in timed and timed[sizes].floor is not None


@given(st.floats(0.1, 100.0), st.integers(1, 5))
def test_solve_shares_fit_the_time_left_and_favour_the_last(left: float, planned: int) -> None:
    """The best floor's solve, the last, gets the largest share; all of them fit the time
    left, and the last takes all that remains."""
    from ppopt.solver.partition import _solve_share

    shares, remaining = [], left
    for k in range(planned):
        shares.append(_solve_share(remaining, k, planned))
        remaining -= shares[-1]
    assert sum(shares) == pytest.approx(left)
    assert shares[-1] >= max(shares) - 1e-9
    if planned > 1:
        assert shares[-1] == pytest.approx(2 * shares[0])
