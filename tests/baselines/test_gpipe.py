"""GPipe (ppopt/baselines/gpipe.py): every forward first, so every activation alive at once."""

from __future__ import annotations

import pytest
from hypothesis import given
from strategies import problems

from ppopt.baselines import baseline
from ppopt.problem import Problem
from ppopt.validate import memory_peaks


@given(problem=problems(max_devices=5, max_microbatches=6))
def test_gpipe_runs_every_forward_first(problem: Problem) -> None:
    schedule = baseline("gpipe", problem)
    for d, order in enumerate(schedule.orders()):
        kinds = [t.kind for t in order]
        forwards = len(problem.stages_on(d)) * problem.num_microbatches
        assert set(kinds[:forwards]) == {"F"} and "F" not in kinds[forwards:]
    # every activation is alive at once on each device: the peak is the whole device's memory
    for d, peak in enumerate(memory_peaks(schedule)):
        expected = problem.num_microbatches * sum(
            problem.activation[s] for s in problem.stages_on(d)
        )
        assert peak == pytest.approx(expected)
