"""Recomputation applied to baseline orders (ppopt/baselines/recompute.py): the selective
heuristic's result fits and is valid (independent validator), dropping needless recomputes
never slows a schedule nor breaks the limit, and inserting R before every B is what the
registry's ``recompute: all`` baselines run."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import problems

from ppopt.baselines import applicable_baselines, baseline
from ppopt.baselines.recompute import drop_needless_recomputes, recompute_to_fit
from ppopt.limits import fits
from ppopt.metrics import peak_memory
from ppopt.problem import Problem
from ppopt.tasks import Kind
from ppopt.timeline import compute_timeline
from ppopt.validate import assert_valid, memory_peaks


def _auto(problem: Problem, checkpoint: float, share: float) -> Problem:
    """Recompute auto, a checkpoint share, a limit ``share`` of the way from one
    micro-batch (with recomputation) to 1x."""
    auto = problem.with_limit("none").with_recompute(
        "auto", checkpoint=[checkpoint * a for a in problem.activation]
    )
    low = max(auto.microbatch_memory(d) for d in range(auto.num_devices))
    high = max(low, auto.reference_peak())
    return auto.with_limit(low + share * (high - low))


@settings(max_examples=30, deadline=None)
@given(problems(max_devices=4, max_microbatches=6), st.sampled_from([0.0, 0.25]),
       st.sampled_from([0.0, 0.3, 0.7]))  # fmt: skip
def test_selective_recompute_fits_and_drop_keeps_it(
    problem: Problem, checkpoint: float, share: float
) -> None:
    auto = _auto(problem, checkpoint, share)
    caps = auto.memory_caps
    assert caps is not None
    for name, schedule in applicable_baselines(auto.with_limit("none")).items():
        fitted = recompute_to_fit(auto, schedule.orders(), caps)
        if fitted is None:
            continue
        chosen, orders = fitted
        timed = compute_timeline(chosen, orders, name)
        assert_valid(timed, limit=caps)  # the validator's own memory, under the limit
        kept, fewer = drop_needless_recomputes(chosen, orders, caps)
        lean = compute_timeline(kept, fewer, name)
        assert_valid(lean, limit=caps)
        assert lean.makespan <= timed.makespan
        assert kept.recomputed <= chosen.recomputed


def test_one_activation_per_device_1f1b() -> None:
    """1F1B at one activation per device: every micro-batch held past another's forward is
    recomputed; memory one activation, every R right before its B."""
    auto = Problem.create(4, 8, recompute="auto", memory_limit=1)
    plain = baseline("1f1b", auto.with_limit("none"))
    fitted = recompute_to_fit(auto, plain.orders(), (1.0,) * 4)
    assert fitted is not None
    chosen, orders = fitted
    timed = compute_timeline(chosen, orders, "1f1b")
    assert max(memory_peaks(timed)) == 1.0
    for row in orders:
        for before, after in zip(row, row[1:], strict=False):
            if before.kind == Kind.R:
                assert (after.kind, after.stage, after.microbatch) == (Kind.B, *before[1:])
    full = baseline("1f1b", Problem.create(4, 8, recompute="all", memory_limit=1))
    assert fits(peak_memory(full), (1.0,) * 4) and timed.makespan <= full.makespan
