"""Runtime fidelity (issue "Runtime fidelity"): schedules planned with ``runtime: torch`` run in
PyTorch's pipelining runtime as planned, and the torch-aware optimum beats the abstract one.

p=4, m=8, split F=1 B=1.5 W=0.5, 1x memory, in the sleep-emulated runtime of
:mod:`torch_runtime.emulated` (``_PipelineScheduleRuntime`` on CPU/gloo, one process per rank,
PyTorch itself deciding what ``I``, ``W`` and ``B`` run; stage 0's ``I`` takes ~0 and its ``W``
``B + W``). Three tables run one after the other in one set of rank processes: 1F1B (split), the
optimum planned with ``runtime: torch`` (30) and the optimum planned with ``runtime: abstract``
(28.5 planned; 33 or 34.5 as PyTorch runs its order, by which optimum is returned).

Only robust facts are asserted, with room for a loaded 2-core CI machine: the torch-planned
schedules take 1.0-1.15x their plan and the abstract optimum 1.0-1.15x its order re-timed under
torch (sleeps only overshoot; the per-action overhead is ~1.3 ms, ~4 % of a step at 30 ms per
unit), and the torch-aware optimum is measured faster than the abstract one by more than 2 %.
~25-45 s on the shared 2-core machine, most of it starting four processes that import torch;
``benchmarks/bench_runtime.py`` measures the full table.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
if not torch.distributed.is_available():  # pragma: no cover - builds without distributed
    pytest.skip("torch.distributed is not available", allow_module_level=True)

import ppopt  # noqa: E402
from ppopt.export.torch_csv import check_for_torch, write_torch_csv  # noqa: E402
from torch_runtime.emulated import (  # noqa: E402
    EmulatedSpec,
    StageCost,
    measured_step,
    run_emulated_many,
)

UNIT = 0.030  # seconds per planned time unit (the issue asks for >= 20 ms)
P, M = 4, 8
FORWARD, BACKWARD, WEIGHT = 1.0, 1.5, 0.5
STEPS, WARMUP = 4, 1  # median of 3 steps after one warm-up


def plans() -> dict[str, ppopt.Schedule]:
    """The three schedules: 1F1B split and the optimum at 1x under each runtime."""
    options = ppopt.SolverOptions(time_limit=20, workers=1)
    out = {}
    for runtime in ("torch", "abstract"):
        problem = ppopt.Problem.create(
            P, M, forward=FORWARD, backward=BACKWARD, weight=WEIGHT, runtime=runtime
        )
        if runtime == "torch":
            out["1f1b"] = ppopt.baseline("1f1b", problem)
        out[f"optimal-{runtime}"] = ppopt.solve(problem, options).schedule
    return out


def test_torch_plans_run_as_planned_and_beat_the_abstract_plan(tmp_path):
    schedules = plans()
    # the emulated stages cost the true times; PyTorch moves stage 0's B into its W by itself
    costs = tuple(StageCost(FORWARD * UNIT, BACKWARD * UNIT, WEIGHT * UNIT) for _ in range(P))
    specs = []
    for name, schedule in schedules.items():
        path = tmp_path / f"{name}.csv"
        write_torch_csv(path, schedule)
        specs.append(EmulatedSpec(str(path), costs, M, steps=STEPS))
    results = run_emulated_many(specs, timeout=180)  # a hung collective fails, not hangs
    measured = {
        name: measured_step(ranks, WARMUP) / UNIT
        for name, ranks in zip(schedules, results, strict=True)
    }
    # what ppopt forecasts PyTorch runs: the plan itself, or the abstract order re-timed under torch
    forecasts = {name: check_for_torch(schedules[name]).real.makespan for name in schedules}
    ratios = {name: measured[name] / forecasts[name] for name in schedules}
    summary = ", ".join(
        f"{n}: planned {schedules[n].makespan:g}, forecast {forecasts[n]:g}, "
        f"measured {measured[n]:.2f} ({ratios[n]:.3f})"
        for n in schedules
    )
    print(summary)  # shown with pytest -s
    assert forecasts["optimal-torch"] == schedules["optimal-torch"].makespan, summary
    for name in schedules:
        assert 1.0 <= ratios[name] <= 1.15, summary
    # which 28.5 abstract optimum the solver returns decides how far PyTorch stretches it
    # (33 or 34.5 re-timed under torch): ppopt forecasts a gain of 9-13 %, and it is measured.
    # Not held to the forecast less a fixed margin: the per-action overhead (~1.3 ms) lands
    # on a tight plan's critical path and partly in a stretched plan's idle time, so the
    # measured gain ran 4.2-10 % over repeated runs while each plan stayed within its 1.15.
    forecast = 1 - forecasts["optimal-torch"] / forecasts["optimal-abstract"]
    gain = 1 - measured["optimal-torch"] / measured["optimal-abstract"]
    assert forecast > 0.05, f"forecast gain only {forecast:.1%}; {summary}"
    assert gain > 0.02, f"torch-aware optimum {gain:.1%} faster, forecast {forecast:.1%}; {summary}"
