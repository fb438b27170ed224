"""The CP-SAT model (ppopt/solver/model.py), through :func:`solve`: with the order fixed it times
the order exactly as the float engine does; its micro-batch-order symmetry break is lossless
for the makespan but not for the tight timeline's span (a known solver bug, pinned by a strict
xfail)."""

from __future__ import annotations

import pytest
from exhaustive import exhaustive_optimum
from hypothesis import given, settings
from hypothesis import strategies as st
from solver_helpers import TOL, ops, options

from ppopt.baselines import baseline
from ppopt.limits import MemoryLimit
from ppopt.problem import Problem
from ppopt.solver import SolverOptions, solve

#: Durations whose integer scaling is exact, so CP-SAT's bound is a bound on the float problem.
ROUND_TIMES = st.sampled_from([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])


@st.composite
def round_problems(draw: st.DrawFn, max_devices: int = 4, max_microbatches: int = 6) -> Problem:
    """One chunk per device, times in steps of 0.5 (exact integer scaling), split or not,
    latency 0 or not, memory limit none or at least 1x (1F1B always fits)."""
    p = draw(st.integers(1, max_devices))
    m = draw(st.integers(1, max_microbatches))
    split = draw(st.booleans())
    per_stage = st.lists(ROUND_TIMES, min_size=p, max_size=p)
    activation = draw(st.lists(st.sampled_from([0.5, 1.0, 2.0]), min_size=p, max_size=p))
    return Problem.create(
        p,
        m,
        forward=draw(per_stage),
        backward=draw(per_stage),
        weight=draw(per_stage) if split else None,
        p2p=draw(st.sampled_from([0.0, 0.5, 1.0])),
        activation=activation,
        retained=[a / 2 for a in activation] if split else 0.0,
        memory_limit=draw(st.sampled_from(["none", "1x", "2x"])),
    )


@settings(max_examples=15, deadline=None, derandomize=True)
@given(round_problems())
def test_fixed_order_is_the_1f1b_baseline(problem: Problem) -> None:
    """``order: fixed`` returns 1F1B op for op, and CP-SAT's proven optimum of the fixed order
    (its bound) is the engine's makespan: the integer model times the order exactly as the
    float engine does."""
    engine = baseline("1f1b", problem)
    result = solve(problem, options(order="fixed"))
    assert ops(result.schedule) == ops(engine)
    assert result.objective_value == engine.makespan
    assert result.status == "OPTIMAL"
    assert result.lower_bound == pytest.approx(engine.makespan, abs=TOL)


# -------------------------------------------------------------------------- micro-batch order


#: Found by these tests: a split problem whose tight-timeline span optimum without a memory
#: limit (26.0) needs micro-batches out of order, so that device 1 starts later than its
#: earliest possible start. (``Problem.create``'s default limit is 1x; under it the optimum
#: is 27.0, in order.)
OUT_OF_ORDER = Problem.create(
    3, 4, [2.5, 2.0, 1.0], [1.0, 2.0, 1.0], weight=[1.5, 2.5, 1.5], p2p=0.5, memory_limit="none"
)


def test_span_optimum_can_need_microbatches_out_of_order() -> None:
    """The exhaustive span optimum of ``OUT_OF_ORDER`` is 26.0 and its schedule runs some
    (kind, stage) out of micro-batch order. CP-SAT's model imposes the order, so it alone
    gets no better than 27.0; the solver may still reach 26.0 (the tabu search moves tasks
    freely), and it calls a result optimal only at the exhaustive optimum."""
    found = exhaustive_optimum(OUT_OF_ORDER, objective="span")
    assert found.value == 26.0
    assert any(
        earlier.kind == later.kind
        and earlier.stage == later.stage
        and earlier.microbatch > later.microbatch
        for row in found.orders
        for k, earlier in enumerate(row)
        for later in row[k + 1 :]
    )
    result = solve(
        OUT_OF_ORDER, SolverOptions(workers=1, deterministic=True, time_limit=3.0, objective="span")
    )
    assert result.objective_value >= 26.0
    assert result.status == "FEASIBLE" or result.objective_value == 26.0
    assert result.lower_bound <= 26.0


def test_span_optimum_under_the_memory_limit_is_proven_at_the_exhaustive_optimum() -> None:
    """Under 1x memory (3 activations a device) the four forwards of the out-of-order optimum
    do not fit: the exhaustive optimum within the limit is 27.0, and the solver proves it."""
    limited = OUT_OF_ORDER.with_limit(MemoryLimit(factor=1.0))
    found = exhaustive_optimum(limited, limited.memory_caps, objective="span")
    result = solve(
        limited, SolverOptions(workers=1, deterministic=True, time_limit=3.0, objective="span")
    )
    assert found.value == 27.0
    assert result.objective_value == pytest.approx(27.0)
    assert result.lower_bound <= found.value + 1e-9
    assert result.status == "OPTIMAL"


def test_span_solver_reaches_the_out_of_order_optimum() -> None:
    """The optimum needs micro-batches out of order, which CP-SAT's model forbids; the tabu
    search before it (on the direct path too) is not bound by that order and finds it, and
    ppopt's bound (26.0) proves it. This was a strict xfail while only CP-SAT searched."""
    options = SolverOptions(workers=1, deterministic=True, time_limit=3.0, objective="span")
    result = solve(OUT_OF_ORDER, options)
    assert result.objective_value == 26.0 and result.status == "OPTIMAL"
