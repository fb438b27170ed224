"""Reading a YAML or JSON file (by extension) strictly, for config and sweep files alike.

Duplicate keys are refused (PyYAML and ``json`` would keep the last silently), a YAML key must
be a name, and every failure is one :class:`ConfigError` line starting with the path. What a
hostile file can throw at a parser is refused the same way: YAML aliases (``*name``: nine
nested anchors of nine expand to 387 million values), integers longer than Python converts
(4300 digits), nesting deeper than the parser's recursion. Numbers follow YAML 1.2, as JSON
and the command line do: ``1e-3`` is a number, not the string YAML 1.1 makes of it.
"""

from __future__ import annotations

import json
import re
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
        return loads_json(text)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None


def loads_json(text: str) -> object:
    """Parse JSON text strictly: duplicate keys, over-long integers and too deep nesting are
    each a one-line :class:`ConfigError` (for config, sweep and schedule files and runs.jsonl)."""
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs)
    except json.JSONDecodeError as error:
        raise ConfigError(
            f"JSON syntax error at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except ConfigError:
        raise
    except RecursionError:
        raise ConfigError(TOO_DEEP) from None
    except ValueError as error:  # int(): "Exceeds the limit (4300 digits) ..."
        raise ConfigError(_value_error(error)) from None


#: The message for a document nested deeper than the parser's recursion.
TOO_DEEP = "nested too deeply (lists or mappings inside each other beyond Python's recursion)"


def _value_error(error: ValueError) -> str:
    """A parser's ValueError in one line (an over-long integer, above all)."""
    text = str(error)
    if "digits" in text:
        return "an integer has more digits than Python converts (4300)"
    return f"a value cannot be read: {one_line(text)}"


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ConfigError(f"{key}: duplicate key")
        out[key] = value
    return out


class _StrictLoader(yaml.SafeLoader):
    """Safe YAML loader that rejects duplicate and non-name keys (PyYAML keeps the last) and
    aliases, and reads numbers as YAML 1.2 does (``1e-3``, ``1E6`` are floats)."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        """Refuse an alias (``*name``) before it is expanded."""
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            line = event.start_mark.line + 1
            raise ConfigError(f"line {line}: YAML aliases (*{event.anchor}) are not supported")
        return super().compose_node(parent, index)


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
#: YAML 1.2's float (core schema): a dot is optional before an exponent, unlike YAML 1.1,
#: whose resolver leaves ``1e-3`` a string.
_FLOAT_1_2 = re.compile(
    r"""^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:float"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_1_2, list("-+0123456789."))


def _parse_yaml(path: Path, text: str) -> object:
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from None
    except RecursionError:
        raise ConfigError(f"{path}: {TOO_DEEP}") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = error.problem or error.context or "invalid YAML"
        raise ConfigError(f"{path}: YAML syntax error{where}: {what}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: YAML syntax error: {one_line(str(error))}") from None
    except ValueError as error:  # a constructor's int() or date: over-long integer, bad date
        raise ConfigError(f"{path}: {_value_error(error)}") from None
