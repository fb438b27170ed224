"""The ``microbatch_scale`` key (docs/contract.md §1-2, ppopt/microbatches.py): its two
forms, what they become in the problem, errors naming the key and index, and the round trip
through the normalised problem of schedule files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ppopt.config import ConfigError, load_config, problem_from_dict, problem_to_dict
from ppopt.errors import ProblemError
from ppopt.microbatches import microbatch_permutation
from ppopt.problem import Problem


def config(tmp_path: Path, scale: str, m: int = 3) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(
        f"num_stages: 2\nnum_batches: {m}\nforward_times: [1, 2]\nbackward_times: 2\n"
        f"microbatch_scale: {scale}\n"
    )
    return path


def test_factors_scale_durations_and_memory(tmp_path: Path) -> None:
    problem = load_config(config(tmp_path, "[1, 2.5, 0.5]")).problem
    assert problem.microbatch_scale == (1.0, 2.5, 0.5)
    assert problem.duration("F", 1, 1) == 5.0
    assert problem.duration("B", 0, 2) == 1.0
    assert problem.duration("F", 1) == 2.0  # the reference micro-batch
    assert problem.op_memory_change("F", 0, 1) == (2.5, 0.0)
    assert problem.total_work() == (3 + 4) * 4.0


def test_lengths_form_is_linear_plus_quadratic(tmp_path: Path) -> None:
    """x = L / 2000: 0.5, 1, 2; c = (x + 0.5 x^2) / 1.5: 0.625/1.5 = 5/12, 1, 4/1.5 = 8/3
    (by hand)."""
    spec = "{lengths: [1000, 2000, 4000], linear: 1, quadratic: 0.5, reference: 2000}"
    scale = load_config(config(tmp_path, spec)).problem.microbatch_scale
    assert scale == pytest.approx((5 / 12, 1.0, 8 / 3))


def test_lengths_reference_defaults_to_the_mean(tmp_path: Path) -> None:
    scale = load_config(config(tmp_path, "{lengths: [1000, 3000, 2000]}")).problem.microbatch_scale
    assert scale == pytest.approx((0.5, 1.5, 1.0))


def test_all_ones_is_the_uniform_problem(tmp_path: Path) -> None:
    problem = load_config(config(tmp_path, "[1, 1, 1]")).problem
    assert problem.microbatch_scale is None
    assert problem == Problem.create(
        2, 3, forward=[1, 2], backward=2, memory_limit=problem.memory_limit
    )


@pytest.mark.parametrize(
    ("scale", "message"),
    [
        ("[1, -2, 1]", "microbatch_scale[1]: must be > 0, got -2"),
        ("[1, 0, 1]", "microbatch_scale[1]: must be > 0, got 0"),
        ("[1, 2]", "microbatch_scale: expected 3 values (one per micro-batch, num_batches), got 2"),
        ("[1, x, 1]", "microbatch_scale[1]"),
        ("fast", "microbatch_scale: expected a list of factors"),
        ("{lengths: [1, 2, -3]}", "microbatch_scale.lengths[2]: must be > 0, got -3"),
        ("{lengths: [1, 2, 3], quadratic: -1}", "microbatch_scale.quadratic: must be >= 0"),
        ("{lengths: [1, 2, 3], cubic: 1}", "microbatch_scale.cubic: unknown key"),
        ("{linear: 1}", "microbatch_scale.lengths: expected a list"),
    ],
)
def test_bad_values_name_the_key_and_index(tmp_path: Path, scale: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(config(tmp_path, scale))
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_python_api_refuses_bad_values() -> None:
    with pytest.raises(ProblemError, match=r"microbatch_scale\[2\]: must be > 0"):
        Problem.create(2, 3, microbatch_scale=[1, 1, -1])


def test_round_trip_through_the_schedule_files_problem(tmp_path: Path) -> None:
    problem = load_config(config(tmp_path, "[1, 2.5, 0.5]")).problem
    assert problem_from_dict(problem_to_dict(problem)) == problem
    uniform = Problem.create(2, 3)
    assert problem_to_dict(uniform)["microbatch_scale"] is None


def test_orders_sort_by_factor_ties_by_index() -> None:
    factors = (1.0, 3.0, 1.0, 0.5)
    assert microbatch_permutation(factors, 4, "given") == [0, 1, 2, 3]
    assert microbatch_permutation(factors, 4, "longest-first") == [1, 0, 2, 3]
    assert microbatch_permutation(factors, 4, "shortest-first") == [3, 0, 2, 1]


def test_reference_peak_is_the_1f1b_baselines_peak() -> None:
    """The 1x unit with unequal memory: the widest window of min(p-d, m) consecutive factors
    (device 0: 3 of them: 1 + 3 + 2 = 6), which the 1F1B baseline's measured peak matches."""
    from ppopt.baselines import baseline
    from ppopt.metrics import peak_memory

    problem = Problem.create(3, 5, microbatch_scale=[1, 1, 3, 2, 0.5])
    assert problem.reference_peak() == 6.0
    assert max(peak_memory(baseline("1f1b", problem))) == 6.0
