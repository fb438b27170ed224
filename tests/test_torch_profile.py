"""``ppopt profile`` (ppopt/torch_profile.py) on a tiny CPU model: the CSV it writes has one
row per child module with the saved-activation and parameter bytes of each layer, and it
round-trips into a solve whose schedule ``ppopt validate`` accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")

from cli.cli_helpers import run  # noqa: E402
from tiny_torch_model import BATCH, WIDTH  # noqa: E402

from ppopt.layers import read_profile_csv  # noqa: E402

MIB = 2.0**20
FLOAT = 4  # bytes


@pytest.fixture(scope="module")
def profile_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("profile") / "p.csv"
    result = run("profile", "tiny_torch_model:tiny", "-o", str(path), "--repeats", "3", "--quiet")
    assert result.exit_code == 0, result.stderr
    return path


def test_one_row_per_layer_with_its_memory(profile_csv: Path) -> None:
    profile = read_profile_csv(profile_csv)
    assert profile.names == ("embed", "act", "block", "head")
    assert profile.is_split
    embed, act, block, head = profile.layers
    # a Linear keeps its input for the weight gradient; Tanh keeps its output
    assert embed.activation == BATCH * WIDTH * FLOAT / MIB
    assert act.activation == BATCH * 16 * FLOAT / MIB
    assert block.parameters == (16 * 16 + 16) * FLOAT / MIB
    assert head.parameters == (16 * 2 + 2) * FLOAT / MIB
    assert act.parameters == 0.0
    assert all(layer.forward > 0 and layer.backward > 0 for layer in profile.layers)


def test_profile_round_trips_into_a_solve(profile_csv: Path, tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        f"num_stages: 2\nnum_batches: 4\nlayers: {profile_csv}\npartition: auto\n"
        "solver: {time_limit: 3, workers: 1}\n"
    )
    schedule = tmp_path / "s.json"
    result = run("solve", str(config), "--json", str(schedule), "--no-visualization", "--quiet")
    assert result.exit_code == 0, result.stderr
    data = json.loads(schedule.read_text())
    assert data["problem"]["partition"]["layers"] == ["embed", "act", "block", "head"]
    checked = run("validate", str(schedule))
    assert checked.exit_code == 0 and checked.stdout.startswith("valid:")


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("tiny_torch_model", "model: expected module:function"),
        ("no_such_module:f", "model: cannot import 'no_such_module'"),
        ("tiny_torch_model:not_a_pair", "must return (model, example_input)"),
    ],
)
def test_bad_models_are_one_line_exit_2(model: str, message: str, tmp_path: Path) -> None:
    result = run("profile", model, "-o", str(tmp_path / "p.csv"))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1
