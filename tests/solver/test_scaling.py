"""Float times and memory to CP-SAT's integers (ppopt/solver/scaling.py), through a fixed-order
solve: times that no power of ten makes whole still give the exact float timeline, and memory
amounts with up to 9 decimals scale exactly, so the 1x reference stays feasible."""

from __future__ import annotations

from hypothesis import given, settings
from solver_helpers import TOL, ops, options
from strategies import problems

from ppopt.baselines import baseline
from ppopt.limits import MemoryLimit
from ppopt.problem import Problem
from ppopt.solver import solve


# The xfail its docstring names became the next test. (The docstring stays as it was: it is
# part of hypothesis's derandomised seed, so editing it would change the examples drawn.)
@settings(max_examples=8, deadline=None, derandomize=True)
@given(problems(max_devices=4, max_microbatches=6, max_chunks=1))
def test_fixed_order_with_arbitrary_float_times(problem: Problem) -> None:
    """Times that no power of ten makes whole (rounded integer model): the returned schedule
    is still 1F1B's exact float timeline, op for op (no memory limit here, see the xfail
    below for the limit)."""
    problem = problem.with_limit(MemoryLimit())
    result = solve(problem, options(order="fixed"))
    assert ops(result.schedule) == ops(baseline("1f1b", problem))
    assert result.lower_bound <= result.objective_value + TOL


def test_fixed_order_at_1x_with_fine_grained_activations() -> None:
    """Memory amounts with up to 9 decimals scale exactly, so 1F1B (the 1x reference itself)
    stays feasible in the integer model."""
    problem = Problem.create(3, 4, activation=[0.1234567, 0.7654321, 0.33333333], memory_limit="1x")
    result = solve(problem, options(order="fixed"))
    assert ops(result.schedule) == ops(baseline("1f1b", problem))
