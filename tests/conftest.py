"""Shared test set-up: hypothesis profiles and small fixtures. The tests folder is on the
import path by pytest's own ``pythonpath`` setting (pyproject.toml), so helpers are plain
imports: ``from strategies import problems``, ``from solver.exhaustive import ...``.

Profiles: ``ppopt`` (default; no per-example deadline, since the shared 2-core machine makes
timings noisy) and ``thorough`` (many more examples), chosen with ``HYPOTHESIS_PROFILE``.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from ppopt.problem import Problem

settings.register_profile(
    "ppopt", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile(
    "thorough",
    parent=settings.get_profile("ppopt"),
    max_examples=1000,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ppopt"))


@pytest.fixture
def seed_problem() -> Problem:
    """The seed's example: 4 devices, 8 micro-batches, forward 1, backward 2, no latency."""
    return Problem.create(4, 8, forward=1.0, backward=2.0)
