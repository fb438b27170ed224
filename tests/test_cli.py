"""The ``ppopt`` command line end to end (docs/contract.md §3).

Most cases run in-process with typer's ``CliRunner`` (fast); a few run the real console script
``ppopt`` and ``python -m ppopt`` as subprocesses. Every bad input must give exit code 2 (1 when
no schedule exists), exactly one ``error: ...`` line on stderr, no traceback, and leave existing
output files byte for byte as they were.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from ppopt.cli import (
    app,
    implicit_solve,
    parse_numbers,
    parse_placement,
    rewrite_list_args,
)
from ppopt.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SENTINEL = b"old output, must survive\n"


def run(*args: str):
    """Invoke the CLI in-process; stdout and stderr are kept apart."""
    return CliRunner().invoke(app, list(args))


def ppopt_command() -> list[str]:
    """The installed console script, next to this Python if possible."""
    beside = Path(sys.executable).with_name("ppopt")
    found = str(beside) if beside.exists() else shutil.which("ppopt")
    assert found, "the ppopt console script is not installed (pip install -e .)"
    return [found]


ENTRY_POINTS = {"ppopt": ppopt_command, "python -m ppopt": lambda: [sys.executable, "-m", "ppopt"]}


def run_process(entry: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run one entry point as a real process."""
    command = ENTRY_POINTS[entry]() + list(args)
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120)


def report_values(stdout: str) -> dict[str, list[str]]:
    """The report's table rows by label (``makespan`` → its cells)."""
    rows = {}
    for line in stdout.splitlines():
        label, _, cells = line.partition("  ")
        if cells:
            rows[label.strip()] = cells.split()
    return rows


# ----------------------------------------------------------------------- argument rewrite


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        # the seed's spelling: values separated by spaces after one flag
        (["-f", "1", "2", "3", "4"], ["-f", "1,2,3,4"]),
        (["-bw", "2", "2.5", "-s", "2"], ["-bw", "2,2.5", "-s", "2"]),
        # long spellings and -w too; commas pass through and join with spaces
        (["--forward-times", "1,2", "3"], ["--forward-times", "1,2,3"]),
        (["-w", "0.5", "0.5"], ["-w", "0.5,0.5"]),
        # negative numbers and nan are values (the config check names them), options are not
        (["-f", "1", "-1", "nan", "-b", "8"], ["-f", "1,-1,nan", "-b", "8"]),
        # a config path after the list ends it
        (["-f", "1", "2", "cfg.yaml"], ["-f", "1,2", "cfg.yaml"]),
        # the first token is always the option's value, as click would take it
        (["--placement", "vshape", "-s", "2"], ["--placement", "vshape", "-s", "2"]),
        (["--memory-limit", "4", "4", "6"], ["--memory-limit", "4,4,6"]),
        # scalar options are left alone, and so is everything after --
        (["-s", "4", "5"], ["-s", "4", "5"]),
        (["--", "-f", "1", "2"], ["--", "-f", "1", "2"]),
        # a list option at the very end is left for click to complain about
        (["-f"], ["-f"]),
    ],
)
def test_rewrite_list_args(argv: list[str], expected: list[str]) -> None:
    assert rewrite_list_args(argv) == expected


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["-c", "x.json"], ["solve", "-c", "x.json"]),  # the seed: no sub-command
        (["x.yaml", "-s", "2"], ["solve", "x.yaml", "-s", "2"]),
        (["compare", "x.yaml"], ["compare", "x.yaml"]),
        (["--help"], ["--help"]),
        ([], []),
    ],
)
def test_implicit_solve(argv: list[str], expected: list[str]) -> None:
    assert implicit_solve(argv) == expected


def test_parse_numbers_and_placement() -> None:
    assert parse_numbers("forward_times", "1") == 1.0
    assert parse_numbers("forward_times", "1,2 3") == [1.0, 2.0, 3.0]
    with pytest.raises(ConfigError, match=r"^forward_times: expected a number, got 'x'$"):
        parse_numbers("forward_times", "1,x")
    assert parse_placement("vshape") == "vshape"
    assert parse_placement("0,1,1,0") == [0, 1, 1, 0]
    with pytest.raises(ConfigError, match="^placement: "):
        parse_placement("0,1.5")


def test_every_option_has_help() -> None:
    group = get_command(app)
    for name, command in group.commands.items():  # type: ignore[attr-defined]
        assert command.help, name
        for param in command.params:
            assert getattr(param, "help", None) or param.param_type_name == "argument", (
                f"{name} {param.name} has no help"
            )


# ------------------------------------------------------------------------ the seed's case


def test_seed_case_in_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """p=4, m=8, f=1, b=2: 1F1B takes (m+p-1)(f+b) = 33, bubble rate 3/11, ratio 3/8."""
    monkeypatch.chdir(tmp_path)
    result = run("solve", "--schedule", "1f1b", "--num-stages", "4", "--num-batches", "8")
    assert result.exit_code == 0, result.stderr
    rows = report_values(result.stdout)
    assert rows["makespan"] == ["33"]
    assert rows["bubble rate (idle share)"] == [f"{3 / 11 * 100:.2f}%"] == ["27.27%"]
    assert rows["bubble ratio (idle/compute)"] == ["0.375"]
    picture = tmp_path / "pipeline_1f1b.png"
    assert picture.read_bytes()[:8] == PNG_MAGIC
    assert picture.stat().st_size > 10_000
    assert result.stderr.strip() == "wrote pipeline_1f1b.png"


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_seed_case_as_subprocess(entry: str, tmp_path: Path) -> None:
    done = run_process(
        entry, "solve", "--schedule", "1f1b", "--num-stages", "4", "--num-batches", "8",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = report_values(done.stdout)
    assert rows["makespan"] == ["33"]
    assert rows["bubble rate (idle share)"] == ["27.27%"]
    assert rows["bubble ratio (idle/compute)"] == ["0.375"]
    assert (tmp_path / "pipeline_1f1b.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize(
    "times",
    [
        ["-f", "1", "1", "1", "1", "-bw", "2", "2", "2", "2"],  # the seed's spelling
        ["-f", "1,1,1,1", "-bw", "2,2,2,2"],  # commas
        ["--forward-times", "1", "--backward-times", "2"],  # one value for every stage
    ],
)
def test_seed_spellings(times: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("solve", "-s", "4", "-b", "8", *times, "--schedule", "1f1b", "--no-visualization")
    assert result.exit_code == 0, result.stderr
    assert report_values(result.stdout)["makespan"] == ["33"]
    assert not list(tmp_path.iterdir())  # --no-visualization: no picture


def test_unequal_stage_times_reach_the_problem(tmp_path: Path) -> None:
    """GPipe, p=2, m=2, f=(1,3), b=(2,2): makespan 13, worked out by hand.

    Device 0 runs F 0-1, 1-2; device 1 runs F 1-4, 4-7 then B 7-9, 9-11; device 0's two B
    wait for device 1's: 9-11, 11-13.
    """
    out = tmp_path / "s.json"
    result = run(
        "solve", "-s", "2", "-b", "2", "-f", "1", "3", "-bw", "2", "2", "--schedule", "gpipe",
        "--no-visualization", "--json", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    data = json.loads(out.read_text())
    assert data["problem"]["forward_times"] == [1.0, 3.0]
    ends = {(op["kind"], op["stage"], op["microbatch"]): op["end"] for op in data["ops"]}
    assert ends[("F", 1, 1)] == 7.0
    assert report_values(result.stdout)["makespan"] == ["13", "13"]  # gpipe, 1f1b reference


# ------------------------------------------------------------------- override semantics


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_option_beats_config_key_and_absent_option_keeps_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = write(tmp_path / "c.yaml", "num_stages: 4\nnum_batches: 8\nschedule: 1f1b\n")
    from_file = run("solve", str(cfg), "--no-visualization")
    assert report_values(from_file.stdout)["makespan"] == ["33"]  # (8+3)*3
    overridden = run("solve", "-c", str(cfg), "-b", "4", "--no-visualization")
    assert report_values(overridden.stdout)["makespan"] == ["21"]  # (4+3)*3
    slower = run("solve", str(cfg), "-bw", "3", "--no-visualization")
    assert report_values(slower.stdout)["makespan"] == ["44"]  # (8+3)*4
    gpipe = run("solve", str(cfg), "--schedule", "gpipe", "--no-visualization")
    assert "gpipe" in gpipe.stdout.splitlines()[2]


def test_config_output_file_names_the_picture_and_option_beats_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = write(
        tmp_path / "c.json",
        json.dumps({"num_stages": 2, "num_batches": 2, "schedule": "1f1b", "output_file": "a.svg"}),
    )
    assert run("solve", str(cfg)).exit_code == 0
    assert (tmp_path / "a.svg").read_text().lstrip().startswith("<?xml")
    assert run("solve", str(cfg), "-o", "b.pdf").exit_code == 0
    assert (tmp_path / "b.pdf").read_bytes()[:5] == b"%PDF-"


@pytest.mark.parametrize(
    ("config", "picture"),
    [
        ("sample_config.yaml", "pipeline_1f1b_yaml.png"),
        ("sample_config.json", "pipeline_1f1b_custom.png"),
    ],
)
def test_seed_sample_configs_run_unchanged(
    config: str, picture: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("solve", str(CONFIGS / config), "--schedule", "1f1b")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / picture).read_bytes()[:8] == PNG_MAGIC
    stages = 5 if config.endswith("yaml") else 6
    assert result.stdout.startswith(f"problem: {stages} devices x")


def test_seed_command_line_without_subcommand(tmp_path: Path) -> None:
    """The seed's ``python -m ppopt -c sample_config.json`` runs the optimizer (1 worker)."""
    config = CONFIGS / "sample_config.json"
    done = run_process("python -m ppopt", "-c", str(config), "--workers", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = report_values(done.stdout)
    optimal, reference = (float(x) for x in rows["makespan"])
    assert optimal <= reference
    assert "lower bound" in done.stdout
    assert (tmp_path / "pipeline_1f1b_custom.png").read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("config", sorted(p.name for p in CONFIGS.glob("*.y*ml")))
def test_every_shipped_config_loads(config: str) -> None:
    from ppopt.config import load_config

    run_config = load_config(CONFIGS / config)
    assert run_config.problem.num_devices >= 1


# ------------------------------------------------------------------------ the optimizer


def test_optimal_example_beats_1f1b(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 3's case: p=4, m=8, f=1, b=2, p2p 0.5, 1x memory: optimum 40 (1F1B 41), proven."""
    monkeypatch.chdir(tmp_path)
    result = run(
        "solve", str(CONFIGS / "example_4x8.yaml"), "--workers", "1", "--deterministic",
        "--no-visualization", "--json", "opt.json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    rows = report_values(result.stdout)
    assert rows["makespan"] == ["40", "41"]
    assert "solver: OPTIMAL (proven)" in result.stdout
    assert f"improvement over 1F1B: {1 / 41 * 100:.2f}%" in result.stdout
    assert "best" in result.stderr and "bound" in result.stderr  # progress lines
    data = json.loads((tmp_path / "opt.json").read_text())
    assert data["solver"]["status"] == "OPTIMAL"
    assert data["metrics"]["makespan"] == 40.0
    quiet = run("solve", str(CONFIGS / "example_4x8.yaml"), "--workers", "1", "--quiet",
                "--no-visualization")  # fmt: skip
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_memory_limit_below_one_microbatch_is_exit_1(tmp_path: Path) -> None:
    out = tmp_path / "pipeline_optimal.png"
    out.write_bytes(SENTINEL)
    result = run("solve", "-s", "2", "-b", "4", "--memory-limit", "0.5", "-o", str(out))
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: no schedule")
    assert out.read_bytes() == SENTINEL


# -------------------------------------------------------------------- the error table

GOOD = "num_stages: 4\nnum_batches: 8\nschedule: 1f1b\n"

#: (id, config file text or None, extra arguments, fragment of the one error line)
ERROR_CASES = [
    # NaN time in a YAML list
    (
        "nan-time",
        "num_stages: 4\nnum_batches: 8\nforward_times: [1, .nan, 1, 1]\n",
        [],
        "c.yaml: forward_times[1]: must be finite",
    ),
    # infinite time on the command line (one value for all stages)
    ("inf-time", GOOD, ["-f", "inf"], "forward_times: must be finite, got inf"),
    # a string where a time belongs
    (
        "string-time",
        "num_stages: 4\nnum_batches: 8\nforward_times: [1, fast, 1, 1]\n",
        [],
        "forward_times[1]: expected a number, got 'fast'",
    ),
    # a list of the wrong length
    (
        "short-list",
        GOOD + "backward_times: [2, 2, 2]\n",
        [],
        "backward_times: expected 4 values (one per virtual stage), got 3",
    ),
    # zero micro-batches
    ("zero-batches", GOOD, ["-b", "0"], "num_batches: must be >= 1, got 0"),
    # a fractional device count in the file
    (
        "fractional-stages",
        "num_stages: 2.5\nnum_batches: 8\n",
        [],
        "num_stages: expected a whole number >= 1, got 2.5",
    ),
    # negative latency
    ("negative-latency", GOOD, ["--p2p-time", "-1"], "p2p_time: must be >= 0, got -1"),
    # a negative time in the seed's space-separated spelling
    ("negative-time", GOOD, ["-f", "1", "1", "-1", "1"], "forward_times[2]: must be > 0, got -1"),
    # an unknown top-level key (misspelt), with a suggestion
    (
        "unknown-key",
        "num_stage: 4\nnum_batches: 8\n",
        [],
        "num_stage: unknown key, did you mean 'num_stages'?",
    ),
    # an unknown key inside solver:
    ("unknown-solver-key", GOOD + "solver: {time_limt: 3}\n", [], "solver.time_limt: unknown key"),
    # an unknown key inside memory:
    ("unknown-memory-key", GOOD + "memory: {peak: 3}\n", [], "memory.peak: unknown key"),
    # an unknown schedule name
    ("unknown-schedule", GOOD, ["--schedule", "2f2b"], "schedule: unknown schedule '2f2b'"),
    # a placement list that puts two stages on one device with one chunk
    (
        "bad-placement",
        GOOD + "placement: [0, 0, 1, 1]\n",
        [],
        "placement: device 0 holds 2 stages, expected num_chunks = 1",
    ),
    # vshape needs two chunks
    ("vshape-one-chunk", GOOD, ["--placement", "vshape"], "placement: vshape needs num_chunks = 2"),
    # a negative time limit
    ("negative-time-limit", GOOD, ["--time-limit", "-1"], "solver.time_limit: must be > 0"),
    # a bad solver order word
    ("bad-order", GOOD, ["--order", "sideways"], "solver.order: expected free or fixed"),
    # YAML syntax error (unclosed bracket)
    ("yaml-syntax", "num_stages: [4\nnum_batches: 8\n", [], "c.yaml: YAML syntax error at line"),
    # duplicate YAML key (PyYAML would silently keep the last)
    ("duplicate-key", GOOD + "num_stages: 5\n", [], "num_stages: duplicate key (line 4)"),
    # a YAML file holding a list, not a mapping
    ("not-a-mapping", "- 1\n- 2\n", [], "expected a mapping of config keys, got a list"),
    # an empty file
    ("empty-file", "   \n", [], "c.yaml: config file is empty"),
    # a missing file
    ("missing-file", None, [], "c.yaml: config file not found"),
    # an unwritable output path: the directory does not exist
    (
        "unwritable-output",
        GOOD,
        ["-o", "no/such/dir/x.png"],
        "--output: cannot write no/such/dir/x.png: directory no/such/dir does not exist",
    ),
    # an output path whose "directory" is a file
    ("output-under-file", GOOD, ["--json", "c.yaml/x.json"], "--json: cannot write c.yaml/x.json"),
    # a picture extension matplotlib-only users might try
    ("picture-extension", GOOD, ["-o", "x.jpg"], "picture must end in .png, .svg or .pdf"),
    # a memory limit that is not a number, Nx or none
    ("bad-memory-limit", GOOD, ["--memory-limit", "lots"], "memory.limit: expected a number"),
    # retained memory without a split backward
    (
        "retained-unsplit",
        GOOD + "memory: {retained: 0.5}\n",
        [],
        "memory.retained[0]: only meaningful with weight_times",
    ),
    # a bad integer on the command line (click's own check, still one line)
    ("bad-integer-option", GOOD, ["-s", "two"], "invalid value for '-s' / '--num-stages'"),
    # an option that does not exist
    ("unknown-option", GOOD, ["--stages", "4"], "no such option: --stages"),
    # two different config files
    ("config-twice", GOOD, ["-c", "other.yaml"], "config: given twice"),
    # num_stages missing from file and command line
    ("missing-count", "num_batches: 8\n", [], "num_stages: missing; give it in the config file"),
]


@pytest.mark.parametrize(
    ("config", "args", "fragment"),
    [case[1:] for case in ERROR_CASES],
    ids=[case[0] for case in ERROR_CASES],
)
def test_bad_input_is_one_line_exit_2_and_touches_nothing(
    config: str | None,
    args: list[str],
    fragment: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    if config is not None:
        write(tmp_path / "c.yaml", config)
    outputs = [tmp_path / name for name in ("pipeline_1f1b.png", "pipeline_optimal.png", "s.json")]
    for path in outputs:
        path.write_bytes(SENTINEL)
    before = sorted(os.listdir(tmp_path))
    result = run("solve", "c.yaml", "--json", "s.json", *args)
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: ")
    assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    for path in outputs:
        assert path.read_bytes() == SENTINEL
    assert sorted(os.listdir(tmp_path)) == before  # no temporary file left behind


def test_error_from_the_command_line_does_not_blame_the_file(tmp_path: Path) -> None:
    cfg = write(tmp_path / "c.yaml", GOOD)
    result = run("solve", str(cfg), "-f", "-2", "--no-visualization")
    assert result.stderr == "error: forward_times[0]: must be > 0, got -2\n"


def test_bad_input_as_subprocess_has_no_traceback(tmp_path: Path) -> None:
    write(tmp_path / "c.yaml", "num_stages: 4\nnum_batches: 0\n")
    done = run_process("ppopt", "solve", "c.yaml", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == "error: c.yaml: num_batches: must be >= 1, got 0\n"
    assert done.stdout == ""


def test_failed_picture_leaves_every_output_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The schedule file and the picture are renamed together, only when both succeeded."""
    import ppopt.cli

    def broken(schedule, path, **options):
        Path(path).write_bytes(b"half a pic")
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(ppopt.cli, "_renderer", lambda: broken)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.png").write_bytes(SENTINEL)
    (tmp_path / "s.json").write_bytes(SENTINEL)
    result = run("solve", "-s", "2", "-b", "2", "--schedule", "1f1b", "-o", "p.png",
                 "--json", "s.json")  # fmt: skip
    assert result.exit_code == 2
    assert "No space left on device" in result.stderr and result.stderr.count("\n") == 1
    assert (tmp_path / "p.png").read_bytes() == SENTINEL
    assert (tmp_path / "s.json").read_bytes() == SENTINEL
    assert sorted(os.listdir(tmp_path)) == ["p.png", "s.json"]


def test_ctrl_c_is_exit_130(monkeypatch: pytest.MonkeyPatch) -> None:
    import ppopt.cli

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(ppopt.cli, "_baseline", interrupted)
    result = run("solve", "-s", "2", "-b", "2", "--schedule", "1f1b", "--no-visualization")
    assert result.exit_code == 130
    assert result.stderr == "error: interrupted\n"


def test_trace_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--trace`` is accepted; until the trace writer exists it says so, before any work."""
    monkeypatch.chdir(tmp_path)
    result = run("solve", "-s", "2", "-b", "2", "--schedule", "1f1b", "--no-visualization",
                 "--trace", "t.trace.json")  # fmt: skip
    if importlib.util.find_spec("ppopt.export.trace") is None:
        assert result.exit_code == 2
        assert result.stderr == "error: --trace: the Chrome trace writer is not available yet\n"
        assert result.stdout == ""
    else:
        assert result.exit_code == 0, result.stderr
        assert json.loads((tmp_path / "t.trace.json").read_text())


# ------------------------------------------------------------ schedule file round trips


def test_json_then_validate_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    solved = run("solve", "-s", "3", "-b", "5", "-f", "1", "1.5", "1", "--p2p-time", "0.25",
                 "--schedule", "1f1b", "--json", "s.json", "--no-visualization")  # fmt: skip
    assert solved.exit_code == 0, solved.stderr
    ok = run("validate", "s.json")
    assert ok.exit_code == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("valid: 1f1b schedule, 3 devices x 5 micro-batches, 30 tasks")
    assert ok.stdout.count("\n") == 1

    data = json.loads((tmp_path / "s.json").read_text())
    first_b = next(op for op in data["ops"] if op["kind"] == "B" and op["stage"] == 0)
    first_b["start"] -= 1.0  # runs before its dependency: a rule violation, metrics unchanged
    first_b["end"] -= 1.0
    write(tmp_path / "bad.json", json.dumps(data))
    bad = run("validate", "bad.json")
    assert bad.exit_code == 1
    assert bad.stdout.startswith("invalid: bad.json:")
    assert "before its dependency" in bad.stdout


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("num_stages: 4\n", "not a schedule file"),  # a config file, not JSON
        ('{"format": "ppopt-schedule/2"}', "format 'ppopt-schedule/2' is not supported"),
        ('{"format": "other"}', "not a ppopt schedule file"),
        ("[1, 2]", "not a schedule file (expected a JSON object)"),
    ],
)
def test_validate_rejects_non_schedules_with_exit_2(
    content: str, fragment: str, tmp_path: Path
) -> None:
    path = write(tmp_path / "x.json", content)
    result = run("validate", str(path))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert fragment in result.stderr


def test_validate_rejects_inconsistent_metrics_with_exit_2(tmp_path: Path) -> None:
    out = tmp_path / "s.json"
    assert run("solve", "-s", "2", "-b", "2", "--schedule", "1f1b", "--no-visualization",
               "--json", str(out)).exit_code == 0  # fmt: skip
    data = json.loads(out.read_text())
    data["metrics"]["makespan"] = 1.0
    write(out, json.dumps(data))
    result = run("validate", str(out))
    assert result.exit_code == 2
    assert "metrics.makespan: the file says 1.0, its ops give" in result.stderr


def test_plot_round_trip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("solve", "-s", "3", "-b", "4", "-w", "1", "--schedule", "1f1b",
               "--json", "s.json", "--no-visualization").exit_code == 0  # fmt: skip
    svg = run("plot", "s.json", "-o", "again.svg")
    assert svg.exit_code == 0, svg.stderr
    text = (tmp_path / "again.svg").read_text()
    assert text.lstrip().startswith("<?xml") and "1f1b" in text
    default = run("plot", "s.json")
    assert default.exit_code == 0
    assert (tmp_path / "s.png").read_bytes()[:8] == PNG_MAGIC
    wrong = run("plot", "s.json", "-o", "x.gif")
    assert wrong.exit_code == 2 and "picture must end in .png" in wrong.stderr


def test_compare_table_and_figure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = write(tmp_path / "c.yaml", "num_stages: 3\nnum_batches: 4\n")
    result = run("compare", str(cfg), "--schedules", "1f1b,gpipe", "-o", "cmp.png")
    assert result.exit_code == 0, result.stderr
    rows = report_values(result.stdout)
    assert rows["makespan"] == ["18", "18"]  # (m+p-1)(f+b) for both
    assert rows["peak memory (max device)"] == ["3", "4"]  # min(p, m) vs m
    assert (tmp_path / "cmp.png").read_bytes()[:8] == PNG_MAGIC
    unknown = run("compare", str(cfg), "--schedules", "1f1b,nope")
    assert unknown.exit_code == 2 and "unknown schedule 'nope'" in unknown.stderr
