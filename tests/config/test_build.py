"""Config building (ppopt/config/build.py, docs/contract.md §2): formats, defaults, strictness,
and the override merge.

The bad-input table that goes through the command line lives in
``tests/cli/test_cli_bad_input.py``, the strict file reader's own rules in ``test_files.py``;
here are the builder's rules: what each key becomes in the :class:`Problem`, where an error is
blamed, and that the normalised problem written to schedule files reads back to the same
problem.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from strategies import problems

from ppopt.config import (
    ConfigError,
    build_problem,
    load_config,
    merge,
    problem_from_dict,
    problem_to_dict,
)
from ppopt.limits import MemoryLimit
from ppopt.problem import Problem

REPO = Path(__file__).resolve().parents[2]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_seed_json_sample() -> None:
    run = load_config(REPO / "configs" / "sample_config.json")
    problem = run.problem
    assert (problem.num_devices, problem.num_microbatches) == (6, 12)
    assert problem.forward == (0.8, 1.0, 1.2, 1.0, 0.9, 1.1)
    assert problem.backward == (1.6, 2.0, 2.4, 2.0, 1.8, 2.2)
    assert problem.p2p == 0.0 and problem.weight is None
    assert run.output_file == "pipeline_1f1b_custom.png"
    assert run.schedule == "optimal"  # no schedule key: the optimizer (docs/contract.md §2)
    assert problem.memory_limit == MemoryLimit(factor=1.0) and not run.memory_limit_given


def test_seed_yaml_sample() -> None:
    run = load_config(REPO / "configs" / "sample_config.yaml")
    assert run.problem.forward == (0.9, 1.1, 1.0, 0.8, 1.2)
    assert run.problem.backward == (1.8, 2.2, 2.0, 1.6, 2.4)
    assert run.output_file == "pipeline_1f1b_yaml.png"


def test_yaml_and_json_agree(tmp_path: Path) -> None:
    data = {
        "num_stages": 2,
        "num_batches": 3,
        "forward_times": [1, 2],
        "backward_times": 4,
        "weight_times": [1, 1.5],
        "p2p_time": 0.25,
        "memory": {"activation": [2, 1], "retained": 0.5, "limit": [5, 6]},
        "solver": {"time_limit": 3, "workers": 1, "seed": 7, "order": "free",
                   "objective": "span", "deterministic": True},
        "schedule": "gpipe",
        "json_file": "s.json",
    }  # fmt: skip
    import yaml

    from_json = load_config(write(tmp_path / "c.json", json.dumps(data)))
    from_yaml = load_config(write(tmp_path / "c.yml", yaml.safe_dump(data)))
    assert from_json == from_yaml
    problem = from_json.problem
    assert problem.backward == (4.0, 4.0)  # a scalar fills every stage
    assert problem.retained == (0.5, 0.5)
    assert problem.memory_limit.values == (5.0, 6.0)
    assert from_json.memory_limit_given
    options = from_json.solver
    assert (options.time_limit, options.workers, options.seed) == (3.0, 1, 7)
    assert options.objective == "span" and options.deterministic


def test_scalar_and_list_times_are_the_same_problem(tmp_path: Path) -> None:
    scalar = load_config(overrides={"num_stages": 3, "num_batches": 2, "forward_times": 1.5})
    listed = load_config(
        overrides={"num_stages": 3, "num_batches": 2, "forward_times": [1.5, 1.5, 1.5]}
    )
    assert scalar.problem == listed.problem


def test_default_memory_limit_depends_on_the_schedule() -> None:
    base = {"num_stages": 2, "num_batches": 2}
    assert load_config(overrides=base).problem.memory_limit == MemoryLimit(factor=1.0)
    assert load_config(overrides={**base, "schedule": "1f1b"}).problem.memory_limit.is_none
    given = load_config(overrides={**base, "schedule": "1f1b", "memory": {"limit": "2x"}})
    assert given.problem.memory_limit == MemoryLimit(factor=2.0)
    assert given.memory_limit_given


def test_merge_only_given_options_override() -> None:
    base = {"num_stages": 4, "memory": {"activation": 2, "limit": "1x"}, "solver": {"seed": 3}}
    merged = merge(
        base,
        {"num_stages": None, "num_batches": 8, "memory": {"limit": "2x", "retained": None},
         "solver": {"seed": None, "workers": 1}},
    )  # fmt: skip
    assert merged == {
        "num_stages": 4,  # None never overrides
        "num_batches": 8,
        "memory": {"activation": 2, "limit": "2x"},  # sections merge key by key
        "solver": {"seed": 3, "workers": 1},
    }
    assert base["memory"] == {"activation": 2, "limit": "1x"}  # the input is not changed


def test_override_beats_file_and_file_fills_the_rest(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", "num_stages: 4\nnum_batches: 8\nforward_times: 2\n")
    run = load_config(cfg, {"num_batches": 3, "forward_times": None})
    assert run.problem.num_microbatches == 3
    assert run.problem.forward == (2.0,) * 4
    assert run.problem.num_devices == 4


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        # the culprit is in the file: the file is named first
        (
            "num_stages: 4\nnum_batches: 8\nforward_times: [1, 1, -1, 1]\n",
            {},
            "c.yaml: forward_times[2]: must be > 0, got -1",
        ),
        # the culprit came from the command line: no file blamed
        (
            "num_stages: 4\nnum_batches: 8\n",
            {"forward_times": [1, 1, -1, 1]},
            "forward_times[2]: must be > 0, got -1",
        ),
        # a command-line solver option is blamed on the command line too
        (
            "num_stages: 4\nnum_batches: 8\n",
            {"solver": {"time_limit": -1.0}},
            "solver.time_limit: must be > 0 seconds, got -1.0",
        ),
        # a nested file key is blamed on the file
        (
            "num_stages: 4\nnum_batches: 8\nsolver: {workers: -1}\n",
            {},
            "c.yaml: solver.workers: must be >= 0, got -1",
        ),
        # wrong type of a section
        (
            "num_stages: 4\nnum_batches: 8\nmemory: 3\n",
            {},
            "c.yaml: memory: expected a mapping (activation, retained, limit, recompute, "
            "checkpoint, recomputed, recompute_per, offload, offloaded), got 3",
        ),
        # booleans are not counts
        (
            "num_stages: true\nnum_batches: 8\n",
            {},
            "c.yaml: num_stages: expected a whole number >= 1, got True",
        ),
        # a placement of the wrong type
        (
            "num_stages: 2\nnum_batches: 8\nplacement: 3\n",
            {},
            "c.yaml: placement: expected interleaved, vshape or a list of device indices, got 3",
        ),
        # per-device limit list of the wrong length
        (
            "num_stages: 2\nnum_batches: 8\nmemory: {limit: [1, 2, 3]}\n",
            {},
            "c.yaml: memory.limit: expected 1 or 2 values (one per device), got 3",
        ),
        # deterministic must be a boolean
        (
            "num_stages: 2\nnum_batches: 8\nsolver: {deterministic: yes please}\n",
            {},
            "c.yaml: solver.deterministic: expected true or false, got 'yes please'",
        ),
        # an output path must be a string
        (
            "num_stages: 2\nnum_batches: 8\njson_file: 3\n",
            {},
            "c.yaml: json_file: expected a file path, got 3",
        ),
        # an infinite time limit
        (
            "num_stages: 2\nnum_batches: 8\nsolver: {time_limit: .inf}\n",
            {},
            "c.yaml: solver.time_limit: expected a finite number of seconds, got inf",
        ),
    ],
)
def test_error_messages_name_key_and_origin(
    text: str, overrides: dict, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "c.yaml", text)
    with pytest.raises(ConfigError) as error:
        load_config("c.yaml", overrides)
    assert str(error.value) == message


@given(problems(placements=("interleaved", "vshape", "explicit")))
def test_normalised_problem_reads_back_to_the_same_problem(problem: Problem) -> None:
    raw = problem_to_dict(problem)
    again = problem_from_dict(json.loads(json.dumps(raw)))
    assert problem_to_dict(again) == raw
    assert replace(again, placement_name=problem.placement_name) == problem
    if problem.placement_name != "explicit" and problem.num_devices > 1:
        assert again.placement_name == problem.placement_name  # one device: both names fit
    assert set(raw) == {
        "num_stages", "num_batches", "num_chunks", "placement", "forward_times",
        "backward_times", "weight_times", "p2p_time", "memory", "runtime", "recompute_times",
        "microbatch_scale",
        "overlap_times", "copies",
    }  # fmt: skip


@pytest.mark.parametrize(
    "kwargs",
    [
        {"forward": [1, 2, 3, 4], "backward": 2.0, "weight": 1.0, "p2p": [0.1, 0.2, 0.3]},
        {"forward": 1.0, "overlap": [2.5, 2.0, 2.5, 3.0], "activation": [1, 2, 1, 2]},
        {"forward": 1.0, "p2p": [[0, 1, 2, 3], [1, 0, 1, 2], [2, 1, 0, 1], [3, 2, 1, 0]]},
    ],
)
def test_two_copy_problem_reads_back_from_its_normalised_form(kwargs: dict) -> None:
    """``copies: 2`` writes one value per virtual stage (2p; the link list as 2p-1
    boundaries) and reads them back to the same problem."""
    problem = Problem.create(4, 8, copies=2, memory_limit="1x", **kwargs)
    raw = json.loads(json.dumps(problem_to_dict(problem)))
    assert raw["copies"] == 2 and len(raw["forward_times"]) == 8 and raw["num_chunks"] == 2
    assert problem_from_dict(raw) == problem
    config = {"num_stages": 4, "num_batches": 8, "copies": 2, "forward_times": [1, 2, 3, 4]}
    assert build_problem(config).forward == (1, 2, 3, 4) * 2


def test_normalised_problem_rejects_run_keys() -> None:
    raw = problem_to_dict(Problem.create(2, 2))
    with pytest.raises(ConfigError, match=r"^problem\.schedule: unknown key"):
        problem_from_dict({**raw, "schedule": "1f1b"})


#: The shape issue 19 promises (keys may grow, this must work).
LAYERS_CONFIG = """\
num_stages: 8
num_batches: 16
layers:            # in model order; `backward` is B (input gradient) when `weight` is given
  - {name: embed, forward: 0.4, backward: 0.4, weight: 0.3, activation: 0.5}
  - {name: block, count: 30, forward: 1.0, backward: 1.0, weight: 0.8, activation: 1.0}
  - {name: head, forward: 3.5, backward: 3.5, weight: 2.5, activation: 3.0}
partition: auto
"""


def test_layers_config_of_the_issue(tmp_path: Path) -> None:
    run = load_config(write(tmp_path / "c.yaml", LAYERS_CONFIG))
    assert run.auto_partition and run.layered is not None
    assert len(run.layered.profile) == 32
    problem = run.problem  # the even split, which the search starts from
    assert problem.partition is not None and problem.partition.sizes == (4,) * 8
    assert problem.forward[0] == 0.4 + 3 * 1.0 and problem.forward[-1] == 3 * 1.0 + 3.5
    assert problem.weight is not None and problem.weight[-1] == 3 * 0.8 + 2.5
    explicit = load_config(
        write(tmp_path / "e.yaml", LAYERS_CONFIG.replace("auto", "[2, 5, 5, 5, 5, 5, 4, 1]"))
    )
    assert not explicit.auto_partition
    assert explicit.problem.forward[-1] == 3.5 and explicit.problem.forward[0] == 1.4


def test_layers_from_a_csv_next_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    write(
        tmp_path / "sub" / "p.csv",
        "name,count,forward,backward,activation\nembed,,1,1,1\nblock,3,2,2,1\n",
    )
    cfg = write(tmp_path / "sub" / "c.yaml", "num_stages: 2\nnum_batches: 4\nlayers: p.csv\n")
    problem = load_config(cfg).problem
    assert problem.forward == (3.0, 4.0)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        # per-stage times beside layers
        ("forward_times: 1\n", "c.yaml: forward_times: cannot be given with layers"),
        # activation beside layers
        ("memory: {activation: 2}\n", "c.yaml: memory.activation: cannot be given with layers"),
        # an unknown partition word
        ("partition: optimal\n", "c.yaml: partition: expected even, auto or a list"),
        # layer counts that do not add up
        (
            "partition: [1, 1]\n",
            "c.yaml: partition: the layer counts add up to 2, the profile has 3 layers",
        ),
    ],
)
def test_bad_layer_configs(extra: str, message: str, tmp_path: Path) -> None:
    text = (
        "num_stages: 2\nnum_batches: 4\nlayers:\n"
        "  - {name: a, count: 3, forward: 1, backward: 1, activation: 1}\n" + extra
    )
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path / "c.yaml", text))
    assert str(error.value).startswith(str(tmp_path / message)), str(error.value)


def test_normalised_problem_keeps_the_partition(tmp_path: Path) -> None:
    run = load_config(write(tmp_path / "c.yaml", LAYERS_CONFIG.replace("auto", "even")))
    raw = problem_to_dict(run.problem)
    assert raw["partition"] == {"layers": list(run.layered.profile.names), "sizes": [4] * 8}
    again = problem_from_dict(json.loads(json.dumps(raw)))
    assert again == replace(run.problem, placement_name=again.placement_name)


def test_yaml_and_json_read_1e_minus_3_alike(tmp_path: Path) -> None:
    """Issue 21 item 13: YAML 1.1 made ``1e-3`` a string ("not a number"); JSON and the
    command line read it as 0.001, and so does YAML now."""
    (tmp_path / "c.yaml").write_text("num_stages: 2\nnum_batches: 2\np2p_time: 1e-3\n")
    (tmp_path / "c.json").write_text('{"num_stages": 2, "num_batches": 2, "p2p_time": 1e-3}')
    from_yaml, from_json = load_config(tmp_path / "c.yaml"), load_config(tmp_path / "c.json")
    assert from_yaml.problem.p2p == from_json.problem.p2p == 0.001
