"""Reading a YAML or JSON file (by extension) strictly, for config and sweep files alike.

Duplicate keys are refused (PyYAML and ``json`` would keep the last silently), a YAML key must
be a name, and every failure is one :class:`ConfigError` line starting with the path.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from ppopt.errors import ConfigError

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


def read_data_file(path: Path, what: str) -> object:
    """The parsed content of a YAML or JSON file; ``what`` names it in errors (``config``)."""
    suffix = path.suffix.lower()
    if suffix not in CONFIG_SUFFIXES:
        raise ConfigError(
            f"{path}: {what} file must end in .yaml, .yml or .json, "
            f"got {suffix or 'no extension'!r}"
        )
    text = _read_text(path, what)
    if not text.strip():
        raise ConfigError(f"{path}: {what} file is empty")
    data = _parse_json(path, text) if suffix == ".json" else _parse_yaml(path, text)
    if data is None:
        raise ConfigError(f"{path}: {what} file is empty")
    return data


def one_line(text: str) -> str:
    """Text with every run of white space (newlines too) folded into one space."""
    return " ".join(text.split())


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a {what} file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read: {error.strerror or error}") from None


def _parse_json(path: Path, text: str) -> object:
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"{path}: JSON syntax error at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ConfigError(f"{key}: duplicate key")
        out[key] = value
    return out


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML loader that rejects duplicate and non-name keys (PyYAML keeps the last)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode) -> dict[str, Any]:
    loader.flatten_mapping(node)
    out: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        line = key_node.start_mark.line + 1
        if not isinstance(key, str):
            raise ConfigError(f"line {line}: key {key!r} is not a name")
        if key in out:
            raise ConfigError(f"{key}: duplicate key (line {line})")
        out[key] = loader.construct_object(value_node, deep=True)
    return out


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _parse_yaml(path: Path, text: str) -> object:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = error.problem or error.context or "invalid YAML"
        raise ConfigError(f"{path}: YAML syntax error{where}: {what}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: YAML syntax error: {one_line(str(error))}") from None
