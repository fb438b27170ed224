"""docs/contract.md is kept in step with the code: every config key, command and task kind
that the code accepts is written down there, and every doctring citation points to a section
that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ppopt.config import MEMORY_KEYS, SOLVER_KEYS, TOP_KEYS
from ppopt.tasks import KINDS

ROOT = Path(__file__).resolve().parents[1]
CONTRACT = (ROOT / "docs" / "contract.md").read_text(encoding="utf-8")
COMMANDS = ("solve", "compare", "sweep", "validate", "plot", "export")


@pytest.mark.parametrize("key", [*TOP_KEYS, *MEMORY_KEYS, *SOLVER_KEYS])
def test_every_config_key_is_in_the_contract(key: str) -> None:
    assert f"`{key}" in CONTRACT or f"{key}:" in CONTRACT or f" {key}" in CONTRACT, key


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_in_the_contract(command: str) -> None:
    assert f"`{command}`" in CONTRACT or f"ppopt {command}" in CONTRACT


@pytest.mark.parametrize("kind", KINDS)
def test_every_task_kind_is_in_the_contract(kind: str) -> None:
    assert f"`{kind}`" in CONTRACT


def test_every_citation_names_a_section_that_exists() -> None:
    sections = set(re.findall(r"^## (\d+)\.", CONTRACT, re.M))
    cited = set()
    for path in (ROOT / "ppopt").rglob("*.py"):
        cited |= set(re.findall(r"docs/contract\.md §(\d+)", path.read_text(encoding="utf-8")))
    assert cited, "no docstring cites the contract"
    assert cited <= sections, cited - sections
