"""The strict YAML/JSON reader (ppopt/config/files.py) as config files meet it: duplicate keys,
syntax errors, empty files, keys that are not names, the extension, directories and binary
files are each one line of :class:`ConfigError` starting with the path."""

from __future__ import annotations

from pathlib import Path

import pytest

from ppopt.config import ConfigError, read_config_file


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        # a duplicate key (json.loads alone would keep the last)
        ("c.json", '{"num_stages": 2, "num_stages": 3}', "c.json: num_stages: duplicate key"),
        # a trailing comma: the JSON error with its position
        ("c.json", '{"num_stages": 2,}', "c.json: JSON syntax error at line 1, column 18"),
        # no text at all
        ("c.json", "", "c.json: config file is empty"),
        # YAML that parses to nothing
        ("c.yaml", "# only a comment\n", "c.yaml: config file is empty"),
        # a YAML error with its line
        ("c.yaml", "num_stages: 2\n  bad: indent\n", "c.yaml: YAML syntax error at line 2"),
        # a YAML key that is a number, not a name
        ("c.yaml", "1: 2\n", "c.yaml: line 1: key 1 is not a name"),
        # neither YAML nor JSON by its extension
        ("c.toml", "num_stages = 2\n", "c.toml: config file must end in .yaml, .yml or .json"),
    ],
)
def test_file_level_errors(name: str, text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        read_config_file(path)
    assert str(error.value).startswith(str(tmp_path / message.split(":")[0]))
    assert message.split(": ", 1)[1] in str(error.value)
    assert "\n" not in str(error.value)


def test_directory_and_binary_files(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").mkdir()
    with pytest.raises(ConfigError, match="is a directory"):
        read_config_file(tmp_path / "d.yaml")
    (tmp_path / "b.yaml").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ConfigError, match="not a UTF-8 text file"):
        read_config_file(tmp_path / "b.yaml")
