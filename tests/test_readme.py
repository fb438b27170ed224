"""The README's examples against real runs: the numbers it shows are the numbers ppopt gives
(issue "What a user sees": README drift). The schedule-file example is the file of
``ppopt solve configs/example_4x8.yaml --json``; its keys and values are read from the README
text and compared with a fresh run."""

from __future__ import annotations

import json
import re
from pathlib import Path

from ppopt.config import load_config
from ppopt.export.schedule_json import schedule_to_dict
from ppopt.solver import SolverOptions, solve

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def _schedule_file_example() -> str:
    """The JSON block under the README's "Schedule file" heading."""
    section = README.split("## Schedule file (`--json`)", 1)[1]
    return section.split("```json", 1)[1].split("```", 1)[0]


def _numbers(text: str, key: str) -> list[float]:
    """The numbers after ``"key":`` in the README's example (a number or a list of numbers)."""
    match = re.search(rf'"{key}": (\[[^\]]*\]|[-\d.]+)', text)
    assert match, f"README example has no {key}"
    value = json.loads(match[1])
    return value if isinstance(value, list) else [value]


def test_schedule_file_example_is_the_real_file_of_example_4x8() -> None:
    run = load_config(REPO / "configs" / "example_4x8.yaml")
    result = solve(run.problem, SolverOptions(time_limit=10, workers=1))
    real = schedule_to_dict(result.schedule, result.to_dict())
    example = _schedule_file_example()
    for key in ("makespan", "span", "bubble_rate", "zb_bubble", "peak_memory"):
        value = real["metrics"][key]
        assert _numbers(example, key) == (value if isinstance(value, list) else [value]), key
    shown = _numbers(example, "bubble_ratio")[0]  # rounded to 3 digits in the README
    assert shown == round(real["metrics"]["bubble_ratio"], 3)
    assert _numbers(example, "p2p_time") == [real["problem"]["p2p_time"]]
    for key in real["solver"]:  # every key the file's solver object has is shown
        assert f'"{key}"' in example, key
    assert real["solver"]["status"] == "OPTIMAL" and '"status": "OPTIMAL"' in example
