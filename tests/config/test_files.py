"""The strict YAML/JSON reader (ppopt/config/files.py) as config files meet it: duplicate keys,
syntax errors, empty files, keys that are not names, the extension, directories and binary
files are each one line of :class:`ConfigError` starting with the path."""

from __future__ import annotations

from pathlib import Path

import pytest

from ppopt.config import ConfigError, read_config_file

#: Nine nested anchors of nine as one value (430 bytes).
BOMB = (
    "num_stages: [&a0 [x,x,x,x,x,x,x,x,x], "
    + ", ".join(f"&a{k} [{','.join([f'*a{k - 1}'] * 9)}]" for k in range(1, 9))
    + "]\n"
)


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
        # issue 21 item 1: what a hostile file throws at a parser, each one line at once:
        # an alias bomb (nine nested anchors of nine, 387 million values once expanded)
        ("c.yaml", BOMB, "c.yaml: line 1: YAML aliases (*a0) are not supported"),
        # any alias at all, even a harmless one
        ("c.yaml", "a: &x 1\nb: *x\n", "c.yaml: line 2: YAML aliases (*x) are not supported"),
        # integers longer than Python converts, in YAML and JSON
        ("c.yaml", f"num_stages: {'9' * 5000}\n", "c.yaml: an integer has more digits than"),
        ("c.json", f'{{"num_stages": {"9" * 5000}}}', "c.json: an integer has more digits than"),
        # nesting deeper than the parsers' recursion
        ("c.json", '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", "c.json: nested too deeply"),
        ("c.yaml", "a: " + "[" * 100_000 + "]" * 100_000 + "\n", "c.yaml: nested too deeply"),
        # a date YAML 1.1 reads but Python cannot hold
        ("c.yaml", "a: 2001-13-45\n", "c.yaml: a value cannot be read: month must be in 1..12"),
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


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # issue 21 item 13: YAML 1.2 numbers, as JSON and the command line read them
        ("1e-3", 0.001),  # YAML 1.1 made this the string '1e-3'
        ("1E6", 1e6),
        ("-2.5e+2", -250.0),
        (".5", 0.5),
        ("1", 1),  # an integer stays an integer
        ("'1e-3'", "1e-3"),  # a quoted string stays a string
        ("3e", "3e"),  # not a number
    ],
)
def test_yaml_numbers_follow_yaml_1_2(text: str, value: object, tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"p2p_time: {text}\n")
    got = read_config_file(path)["p2p_time"]
    assert got == value and type(got) is type(value)
