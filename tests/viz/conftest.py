"""Shared fixtures of the picture tests: small timed schedules from the baselines."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")  # before anything imports pyplot: no display

import pytest

from ppopt.baselines import baseline
from ppopt.problem import Problem
from ppopt.schedule import Schedule


@pytest.fixture
def plain() -> Schedule:
    """1F1B at p=4, m=8, f=1, b=2: makespan 33, bubble rate 3/11."""
    return baseline("1f1b", Problem.create(4, 8))


@pytest.fixture
def split() -> Schedule:
    """1F1B on a split problem (F, B, W all 1): three kinds."""
    return baseline("1f1b", Problem.create(4, 8, 1, 1, weight=1))


@pytest.fixture
def chunked() -> Schedule:
    """GPipe on a V-shape problem with two chunks per device."""
    problem = Problem.create(4, 8, 1, 1, weight=1, num_chunks=2, placement="vshape")
    return baseline("gpipe", problem)
