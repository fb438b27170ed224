"""The partition exports (ppopt/export/megatron.py, ppopt/export/torchtitan.py): Megatron's
layout string against Megatron's own documented DeepSeek-V3 example, torchtitan's per-part
module lists, and the refusals."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ppopt.errors import PpoptError
from ppopt.export.megatron import layer_symbol, megatron_layout
from ppopt.export.torchtitan import module_fqns_per_model_part, torchtitan_parts
from ppopt.layers import Layer, Profile
from ppopt.limits import MemoryLimit
from ppopt.partition import LayeredProblem
from ppopt.problem import Problem


def expand_megatron(layout: str) -> list[str]:
    """Megatron's layout syntax expanded by hand: ``(...)*N`` and ``x*N`` repeat, ``,`` is
    only for reading; the stages split at ``|``."""
    text = layout.replace(",", "")
    group = re.compile(r"\(([^()]*)\)\*(\d+)")
    while group.search(text):
        text = group.sub(lambda m: m.group(1) * int(m.group(2)), text)
    text = re.sub(r"([EtmL])\*(\d+)", lambda m: m.group(1) * int(m.group(2)), text)
    return text.split("|")


def deepseek_v3() -> Profile:
    """DeepSeek-V3's 61 decoder layers (3 dense, 58 MoE), one MTP layer and the loss."""
    return Profile.expand(
        [
            Layer("embed", 1, 1, 1),
            Layer("layers", 1, 1, 1, count=3),
            Layer("layers", 2, 2, 1, count=58),
            Layer("mtp", 2, 2, 1),
            Layer("loss", 1, 1, 1),
        ]
    )


def test_megatron_layout_of_the_deepseek_v3_example() -> None:
    # Megatron's docs: PP16 VPP2, "Et*3|(tt|)*29,m|L"
    layered = LayeredProblem(
        deepseek_v3(), num_devices=16, num_microbatches=32, num_chunks=2, memory_limit=MemoryLimit()
    )
    problem = layered.problem((4, *(2,) * 29, 1, 1))
    layout = megatron_layout(problem)
    assert expand_megatron(layout) == expand_megatron("Et*3|(tt|)*29,m|L")
    assert layout.startswith("Et*3|tt|") or layout.startswith("Et*3|t*2|")


def test_symbols_from_names() -> None:
    assert [layer_symbol(n) for n in ("embed", "layers.3", "lm_head", "mtp", "norm")] == [
        "E", "t", "L", "m", "t",
    ]  # fmt: skip


def test_torchtitan_parts_name_every_layer_once_in_order() -> None:
    layered = LayeredProblem(
        deepseek_v3(),
        num_devices=4,
        num_microbatches=8,
        num_chunks=2,
        placement="vshape",
        memory_limit=MemoryLimit(),
    )
    problem = layered.problem((9, 8, 8, 8, 8, 8, 8, 7))
    parts = module_fqns_per_model_part(problem)
    assert [name for part in parts for name in part] == list(deepseek_v3().names)
    assert parts[0][:2] == ["embed", "layers.0"] and parts[-1][-2:] == ["mtp", "loss"]
    assert torchtitan_parts(problem)["style"] == "v"
    with pytest.raises(PpoptError, match="Megatron places virtual stages interleaved"):
        megatron_layout(problem)


def test_no_partition_and_misplaced_loss_are_refused() -> None:
    with pytest.raises(PpoptError, match="has no partition"):
        megatron_layout(Problem.create(2, 2))
    odd = Profile.expand([Layer("loss", 1, 1, 1), Layer("layers", 1, 1, 1, count=3)])
    problem = LayeredProblem(odd, 2, 2).problem((2, 2))
    with pytest.raises(PpoptError, match="'loss' \\(L\\) must be the last layer"):
        megatron_layout(problem)


def test_export_command_writes_both(tmp_path: Path) -> None:
    from cli.cli_helpers import run  # noqa: PLC0415 - the CLI helpers live beside the CLI tests

    config = tmp_path / "c.yaml"
    config.write_text(
        "num_stages: 2\nnum_batches: 4\nschedule: 1f1b\npartition: [3, 2]\nlayers:\n"
        "  - {name: embed, forward: 1, backward: 1, activation: 1}\n"
        "  - {name: layers, count: 3, forward: 1, backward: 1, activation: 1}\n"
        "  - {name: output, forward: 2, backward: 2, activation: 1}\n"
    )
    schedule = tmp_path / "s.json"
    assert run("solve", str(config), "--json", str(schedule), "--no-visualization").exit_code == 0
    assert (
        run(
            "export", str(schedule), "--format", "megatron", "-o", str(tmp_path / "l.txt")
        ).exit_code
        == 0
    )
    assert (tmp_path / "l.txt").read_text() == "Et*2|tL\n"
    assert (
        run(
            "export", str(schedule), "--format", "torchtitan", "-o", str(tmp_path / "t.json")
        ).exit_code
        == 0
    )
    parts = json.loads((tmp_path / "t.json").read_text())["module_fqns_per_model_part"]
    assert parts == [["embed", "layers.0", "layers.1"], ["layers.2", "output"]]
