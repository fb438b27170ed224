"""Layer profiles (ppopt/layers.py): runs expand into named layers, range sums are exact sums,
the CSV form round-trips and refuses bad profiles with one line naming the row and column."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ppopt.errors import ProblemError
from ppopt.layers import Layer, Partition, Profile, read_profile_csv, write_profile_csv


def test_runs_expand_with_names_counting_over_the_whole_model() -> None:
    profile = Profile.expand(
        [
            Layer("embed", 0.4, 0.4, 0.5),
            Layer("layers", 1.0, 1.0, 1.0, count=2),
            Layer("layers", 2.0, 2.0, 1.0, count=3),  # e.g. MoE layers after the dense ones
            Layer("output", 3.0, 3.0, 2.0),
        ]
    )
    assert profile.names == (
        "embed", "layers.0", "layers.1", "layers.2", "layers.3", "layers.4", "output",
    )  # fmt: skip
    assert [layer.forward for layer in profile.layers] == [0.4, 1, 1, 2, 2, 2, 3]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0.01, 100), min_size=1, max_size=12),
    st.data(),
)
def test_range_sums_are_the_sums_of_the_layers(times: list[float], data: st.DataObject) -> None:
    layers = [Layer(f"l{i}", t, 2 * t, t / 2, weight=t / 3) for i, t in enumerate(times)]
    profile = Profile(tuple(layers))
    start = data.draw(st.integers(0, len(times) - 1))
    stop = data.draw(st.integers(start + 1, len(times)))
    sums = profile.sums(start, stop)
    assert sums.forward == math.fsum(times[start:stop])
    assert sums.backward == math.fsum(2 * t for t in times[start:stop])
    assert sums.weight == math.fsum(t / 3 for t in times[start:stop])
    step = profile.prefix("step")
    direct = sums.forward + sums.backward + (sums.weight or 0.0)
    assert math.isclose(step[stop] - step[start], direct, rel_tol=1e-9)


def test_weight_on_some_layers_only_is_refused() -> None:
    with pytest.raises(ProblemError, match=r"^layers\[1\]\.weight: give weight on every layer"):
        Profile.from_config(
            [
                {"name": "a", "forward": 1, "backward": 1, "weight": 1, "activation": 1},
                {"name": "b", "forward": 1, "backward": 1, "activation": 1},
            ]
        )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        # a negative time names the layer and the field
        ({"name": "a", "forward": -1, "backward": 1, "activation": 1},
         "layers[0].forward: must be > 0, got -1"),
        # a missing activation
        ({"name": "a", "forward": 1, "backward": 1}, "layers[0].activation: missing"),
        # an unknown key (misspelt)
        ({"name": "a", "forward": 1, "backward": 1, "activation": 1, "fwd": 2},
         "layers[0].fwd: unknown key"),
        # a zero count
        ({"name": "a", "count": 0, "forward": 1, "backward": 1, "activation": 1},
         "layers[0].count: must be >= 1, got 0"),
        # negative memory
        ({"name": "a", "forward": 1, "backward": 1, "activation": -2},
         "layers[0].activation: must be >= 0, got -2"),
    ],
)  # fmt: skip
def test_bad_layer_entries(entry: dict, message: str) -> None:
    with pytest.raises(ProblemError) as error:
        Profile.from_config([entry])
    assert str(error.value).startswith(message), str(error.value)


def test_csv_round_trips(tmp_path: Path) -> None:
    layers = [
        Layer("embed", 0.1, 0.2, 0.5, weight=0.3, parameters=4.0),
        Layer("block.0", 1.25, 1.5, 1.0, weight=1.0, parameters=2.0),
        Layer("head", 3.0, 2.5, 3.0, weight=2.0, parameters=4.0),
    ]
    write_profile_csv(tmp_path / "p.csv", layers)
    again = read_profile_csv(tmp_path / "p.csv")
    assert again.layers == tuple(
        Layer(
            layer.name,
            layer.forward,
            layer.backward,
            layer.activation,
            layer.weight,
            layer.parameters,
            key=again.layers[i].key,
        )
        for i, layer in enumerate(layers)
    )


def test_csv_count_column_expands(tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(
        "# measured on CPU\nname,count,forward,backward,activation\nembed,,1,1,1\nblock,3,2,2,1\n"
    )
    assert read_profile_csv(path).names == ("embed", "block.0", "block.1", "block.2")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # a required column missing
        ("name,forward,activation\na,1,1\n", "p.csv: missing column backward"),
        # a negative time
        ("name,forward,backward,activation\na,1,-2,1\n", "p.csv: row 2, backward: must be >= 0"),
        # not a number
        ("name,forward,backward,activation\na,1,x,1\n",
         "p.csv: row 2, backward: expected a number, got 'x'"),
        # an unknown column
        ("name,forward,backward,activation,flops\na,1,1,1,3\n", "p.csv: unknown column 'flops'"),
        # a short row
        ("name,forward,backward,activation\na,1,1\n", "p.csv: row 2: expected 4 columns, got 3"),
        # a header and nothing else
        ("name,forward,backward,activation\n", "p.csv: profile has a header but no layers"),
    ],
)  # fmt: skip
def test_bad_csv(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "p.csv"
    path.write_text(text)
    with pytest.raises(ProblemError) as error:
        read_profile_csv(path)
    assert str(error.value).startswith(str(tmp_path / message)), str(error.value)


def test_partition_ranges_and_labels() -> None:
    partition = Partition(("e", "b.0", "b.1", "b.2", "h"), (2, 2, 1))
    assert partition.ranges() == ((0, 1), (2, 3), (4, 4))
    assert [partition.range_label(s) for s in range(3)] == ["L0-1", "L2-3", "L4"]
    assert partition.stage_layers(1) == ("b.1", "b.2")
    with pytest.raises(ProblemError, match="add up to 4, the profile has 5"):
        Partition(partition.names, (2, 1, 1))
