"""The floor's objective values (ppopt/solver/floor.py): the metrics' own values, computed
without the other metrics (the solver values every schedule it keeps)."""

from __future__ import annotations

from hypothesis import given, settings
from strategies import timed

from ppopt.metrics import compute_metrics
from ppopt.schedule import Schedule
from ppopt.solver.floor import objective_value


@settings(max_examples=60, deadline=None)
@given(timed())
def test_objective_values_are_the_metrics_makespan_and_span(schedule: Schedule) -> None:
    metrics = compute_metrics(schedule)
    assert objective_value(schedule, "makespan") == metrics.makespan
    assert objective_value(schedule, "span") == metrics.span
