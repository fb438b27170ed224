"""1F1B (ppopt/baselines/onefoneb.py): the warm-up, order and memory the literature gives it,
and its refusal of chunks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppopt.baselines import baseline
from ppopt.errors import ProblemError
from ppopt.problem import Problem
from ppopt.tasks import Task
from ppopt.validate import memory_peaks


def test_one_f_one_b_refuses_chunks() -> None:
    with pytest.raises(ProblemError, match="^schedule: "):
        baseline("1f1b", Problem.create(2, 4, num_chunks=2))


@given(p=st.integers(1, 8), m=st.integers(1, 12), split=st.booleans())
def test_one_f_one_b_structure(p: int, m: int, split: bool) -> None:
    """Device d runs min(p-d-1, m) warm-up forwards and one more forward (if any is left)
    before its first backward, so it never holds more than min(p-d, m) micro-batches;
    forwards and backwards each go in micro-batch order; W follows its B at once."""
    problem = Problem.create(p, m, weight=1.0 if split else None)
    schedule = baseline("1f1b", problem)
    for d, order in enumerate(schedule.orders()):
        kinds = [t.kind for t in order]
        assert kinds.index("B") == min(p - d, m)
        assert [t.microbatch for t in order if t.kind == "F"] == list(range(m))
        assert [t.microbatch for t in order if t.kind == "B"] == list(range(m))
        if split:
            for k, task in enumerate(order):
                if task.kind == "B":
                    assert order[k + 1] == Task("W", d, task.microbatch)
    assert memory_peaks(schedule) == tuple(float(min(p - d, m)) for d in range(p))
