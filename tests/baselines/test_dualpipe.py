"""The DualPipe baseline (``dualpipe``, ppopt/baselines/vshape.py) on two model copies
(``copies: 2``): its order transcribed from deepseek-ai/DualPipe ``dualpipe/dualpipe.py``
``DualPipe.step``, checked by hand, against the README's table on equal times and against
DualPipeV by the "cut-in-half" relation; the other baselines that run two copies.

The README's table (``PP`` = pipeline stages = devices for DualPipe, even):
bubble ``(PP/2-1)(F&B + B - 3W)``, parameters ``2x`` per device, activation ``PP + 1``.
ppopt models activation memory only (parameter memory exists only with a ``layers:``
profile, which ``copies: 2`` refuses), so the ``2x`` parameters are not checked here.
"""

from __future__ import annotations

import re

import pytest
from baselines_helpers import atomic_pair_makespan, checked, tasks

from ppopt.baselines import BASELINES, applicable_baselines, baseline
from ppopt.baselines.vshape import dualpipe_orders, dualpipe_pairs, dualpipe_slots
from ppopt.errors import NotApplicableError
from ppopt.metrics import compute_metrics, peak_memory
from ppopt.problem import Problem
from ppopt.tasks import Kind
from ppopt.validate import validate


def _two(p: int, m: int, f: float = 1.0, b: float = 1.0, w: float | None = 1.0, **kw: object):
    kw.setdefault("memory_limit", "none")
    return Problem.create(p, m, forward=f, backward=b, weight=w, copies=2, **kw)


def test_hand_order_from_the_source_p2_m4() -> None:
    """p = 2 (one half rank, both ranks 'middle'), m = 4 (2 per direction), from ``step``:
    step 2 once F0 F1; step 4 once: the middle rank's first F0, B1 apart (full B1, no zero
    bubble), then F1&B0; step 6 once: B1 (full), then B0 with its W deferred (half_rank 0
    even: zero bubble from i = 0 after B1); step 8 the deferred W. Rank 0's phase 0 is copy
    1 (stage 0, micro-batches 0, 1), phase 1 copy 2 (stage 3, micro-batches 2, 3); rank 1,
    in the second half, the other way round (stage 2 = copy 2's first, stage 1)."""
    orders = dualpipe_orders(_two(2, 4))
    assert orders[0] == tasks("F0:0 F3:2 | F0:1 B3:2 W3:2 | F3:3 B0:0 W0:0 | B3:3 W3:3 B0:1 | W0:1")
    assert orders[1] == tasks("F2:2 F1:0 | F2:3 B1:0 W1:0 | F1:1 B2:2 W2:2 | B1:1 W1:1 B2:3 | W2:3")
    pairs = dualpipe_pairs(_two(2, 4, overlap=1.5))
    assert pairs == [
        (tasks("F3:3")[0], tasks("B0:0")[0]),
        (tasks("F1:1")[0], tasks("B2:2")[0]),
    ]


@pytest.mark.parametrize(("p", "m"), [(2, 4), (4, 8), (4, 12), (6, 12), (8, 20), (8, 32)])
@pytest.mark.parametrize("w", [1.0, None])
def test_activation_memory_is_pp_plus_one(p: int, m: int, w: float | None) -> None:
    """The README's activation per device ``PP + 1`` (PP = p stages), in micro-batch
    activations of one stage, on every device, split or not."""
    schedule = checked("dualpipe", _two(p, m, w=w))
    assert peak_memory(schedule) == (p + 1.0,) * p


@pytest.mark.parametrize(("p", "m"), [(2, 4), (4, 8), (4, 10), (6, 12), (8, 20), (8, 24)])
def test_readme_bubble_with_atomic_pairs(p: int, m: int) -> None:
    """The README's bubble ``(PP/2-1)(F&B + B - 3W)`` holds exactly when each F&B slot is
    atomic with its *full* backward (F&B = F + B + W, the gradient leaving when the slot
    ends), as DeepSeek's picture draws it: with f = b = w = 1, F&B = 3, B = 2, W = 1 and
    each device runs 3m of work, so the makespan is 3m + (p/2-1)(3 + 2 - 3). (ppopt's own
    pair is F with the input gradient B, its W after it, which the next test times.)"""
    problem = _two(p, m)
    readme = (p // 2 - 1) * (3 + 2 - 3 * 1)
    assert atomic_pair_makespan(problem, dualpipe_slots(problem)) == 3 * m + readme


@pytest.mark.parametrize("p", [2, 4, 8])
@pytest.mark.parametrize("ratio", [0.6, 0.75, 0.9])
def test_readme_bubble_bounds_the_idle_with_real_overlap(p: int, ratio: float) -> None:
    """With overlap_times (a pair of F and B lasting ``ratio (F + B)``, its W right after it,
    so F&B = overlap + W and the full B = B + W), timed tight by the engine, each device's
    idle inside its span stays within the README's ``(p/2-1)(F&B + B - 3W)``, and the peak
    is still ``p + 1``: the pairs change no order."""
    t, m = 1.0, 3 * p
    overlap = ratio * 2 * t
    problem = _two(p, m, overlap=overlap)
    schedule = checked("dualpipe", problem)
    assert schedule.pairs
    readme = (p // 2 - 1) * ((overlap + t) + 2 * t - 3 * t)
    metrics = compute_metrics(schedule)
    spans = [row[-1].end - row[0].start for row in schedule.device_ops]
    assert all(span - busy <= readme + 1e-9 for span, busy in zip(spans, metrics.busy, strict=True))
    assert max(peak_memory(schedule)) == p + 1
    apart = baseline("dualpipe", _two(p, m))
    assert schedule.orders() == apart.orders()
    assert schedule.makespan <= apart.makespan


@pytest.mark.parametrize(("p", "m"), [(2, 4), (4, 8), (4, 10), (8, 20)])
def test_pairs_are_step_4_and_5(p: int, m: int) -> None:
    """Per rank (half rank h): step 4 runs ``m/2 - p + h + 1`` times two pairs, less one on
    the middle ranks (their first F0, B1 run apart), step 5 ``p/2 - h - 1`` pairs."""
    schedule = baseline("dualpipe", _two(p, m, overlap=1.5))
    per_rank = []
    for r in range(p):
        h = min(r, p - 1 - r)
        per_rank.append(2 * (m // 2 - p + h + 1) - (h == p // 2 - 1) + (p // 2 - h - 1))
    assert len(schedule.pairs) == sum(per_rank)
    # DualPipe's pairs join the two directions: F of one copy with B of the other
    problem = schedule.problem
    assert all(
        problem.copy_of_stage(f.stage) != problem.copy_of_stage(b.stage) for f, b in schedule.pairs
    )


@pytest.mark.parametrize(("p", "m"), [(2, 4), (4, 8), (4, 10), (8, 20)])
@pytest.mark.parametrize(
    "times",
    [
        {"weight": 1.0},
        {"weight": None},
        {"weight": 0.5, "overlap": 1.5},
        {"forward": "palindrome", "weight": 1.0},
    ],
)
def test_cut_in_half_equals_dualpipev(p: int, m: int, times: dict) -> None:
    """DualPipeV is DualPipe cut in half (Sea AI Lab; DeepSeek's README): without latency,
    rank r and rank p-1-r of DualPipe run mirrored halves, each the DualPipeV device
    ``min(r, p-1-r)`` of p/2 devices with m/2 micro-batches, so both schedules end together
    when the stage times are symmetric (stage j's time that of stage p-1-j)."""
    kw = dict(times)
    if kw.get("forward") == "palindrome":
        half = [1.0, 1.5, 1.25, 0.75][: p // 2]
        kw["forward"] = half + half[::-1]
        kw["backward"] = [2 * x for x in kw["forward"]]
    kw.setdefault("forward", 1.0)
    kw.setdefault("backward", 1.0)
    two = Problem.create(p, m, copies=2, memory_limit="none", **kw)
    vee = Problem.create(
        p // 2, m // 2, num_chunks=2, placement="vshape", memory_limit="none", **kw
    )
    assert baseline("dualpipe", two).makespan == pytest.approx(baseline("dualpipev", vee).makespan)


def test_dualpipe_refusals_in_one_line() -> None:
    with pytest.raises(
        NotApplicableError, match="^schedule: dualpipe needs copies: 2 .*got copies 1$"
    ):
        baseline("dualpipe", Problem.create(4, 8, memory_limit="none"))
    with pytest.raises(
        NotApplicableError,
        match="^num_batches: dualpipe needs at least 2 \\* num_stages = 8 micro-batches, got 6$",
    ):
        baseline("dualpipe", _two(4, 6))
    for name in ("1f1b", "zb-v", "dualpipev", "interleaved-1f1b"):
        with pytest.raises(NotApplicableError, match=f"^schedule: {re.escape(name)} runs one"):
            baseline(name, _two(4, 8))


def test_applicable_baselines_on_two_copies() -> None:
    """The baselines that run two copies, each valid and tight; greedy within the 1x limit
    (p micro-batches' activations, 1F1B's peak on one copy), where DualPipe needs p + 1."""
    problem = _two(4, 8, f=1.0, b=2.0, w=1.0, p2p=0.25, memory_limit="1x")
    found = applicable_baselines(problem)
    assert set(found) == {"dualpipe", "gpipe", "greedy"} and set(found) <= set(BASELINES)
    for name in found:
        checked(name, problem)
    assert max(peak_memory(found["greedy"])) <= problem.memory_caps[0]
    assert max(peak_memory(found["dualpipe"])) == problem.memory_caps[0] + 1
    assert validate(found["greedy"], problem.memory_caps) == []


def test_two_copy_gpipe_runs_both_waves() -> None:
    """GPipe on two copies: every forward before any backward on every device, the two
    directions interleaved, so with equal times and no latency each direction is a GPipe
    wave of m/2 micro-batches through p stages that the other fills: the makespan is at
    most one copy's GPipe with all m micro-batches, (m + p - 1)(f + b)."""
    p, m = 4, 8
    schedule = checked("gpipe", _two(p, m, w=None))
    for row in schedule.device_ops:
        kinds = [op.kind for op in row]
        assert kinds == sorted(kinds, key=lambda k: k != Kind.F)
    assert schedule.makespan <= (m + p - 1) * 2
