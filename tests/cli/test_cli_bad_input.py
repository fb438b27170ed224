"""Bad input end to end (docs/contract.md §2, §3): every kind gives exit code 2 (1 when no
schedule exists), exactly one ``error: ...`` line on stderr naming the culprit, nothing on
stdout, no traceback, every existing output file byte for byte as it was and no temporary file
left.

Two tables: ``ERROR_CASES``, bad configs and options of ``ppopt solve``; ``CASES``, the kinds
issue 9 added: unreadable and unwritable paths, JSON configs, placement lists, fractional and
zero counts given either way, and the other commands (``compare``, ``plot``, ``validate``,
``export``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cli_helpers import GOOD, SENTINEL, run, run_process, write

from ppopt.baselines import baseline
from ppopt.export.schedule_json import dumps_schedule
from ppopt.problem import Problem

#: A valid schedule file's text (1F1B, p=2, m=2).
SCHEDULE = dumps_schedule(baseline("1f1b", Problem.create(2, 2)), None)

#: Nine nested anchors of nine in one flow list (433 bytes; 387 million values expanded).
BOMB = (
    "[&a0 [x,x,x,x,x,x,x,x,x], "
    + ", ".join(f"&a{k} [{','.join([f'*a{k - 1}'] * 9)}]" for k in range(1, 9))
    + "]"
)

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
    # issue 21 item 2: a time whose sum over all tasks overflows (makespan inf, bubble nan%)
    (
        "overflowing-time",
        GOOD + "forward_times: 1.0e+308\n",
        [],
        "c.yaml: forward_times[0]: too large: 1e+308 makes the sum of all times overflow",
    ),
    # ... the same for the latency and the activation memory, given on the command line
    ("overflowing-latency", GOOD, ["--p2p-time", "1e308"], "error: p2p_time: too large"),
    (
        "overflowing-activation",
        GOOD + "memory: {activation: 1.0e+308}\n",
        [],
        "c.yaml: memory.activation: too large",
    ),
    # a time below the solver's resolution (it would round to nothing there)
    ("tiny-time", GOOD, ["-f", "1e-300"], "forward_times[0]: 1e-300 is below the solver's"),
    # issue 21 item 1: an alias bomb (nine nested anchors of nine) as a value: one line at
    # once, not a MemoryError after a minute
    (
        "alias-bomb",
        GOOD + "solver: {seed: " + BOMB + "}\n",
        [],
        "c.yaml: line 4: YAML aliases (*a0) are not supported",
    ),
    # an integer longer than Python converts, and one beyond float range as a time
    (
        "huge-integer",
        f"num_stages: {'9' * 5000}\nnum_batches: 8\n",
        [],
        "c.yaml: an integer has more digits than Python converts",
    ),
    (
        "integer-beyond-float",
        GOOD + f"forward_times: {'9' * 400}\n",
        [],
        "c.yaml: forward_times: must be finite, got an integer of 400 digits",
    ),
    # a 100k-deep nested list
    (
        "deep-nesting",
        GOOD + "p2p_time: " + "[" * 100_000 + "]" * 100_000 + "\n",
        [],
        "c.yaml: nested too deeply",
    ),
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
    # negative latency from the command line, the file has none: the option is the culprit,
    # not the file (issue 21 item 11: the key's digit made the file be blamed)
    ("negative-latency", GOOD, ["--p2p-time", "-1"], "error: p2p_time: must be >= 0, got -1"),
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
        "placement: device index 0 holds 2 stages, expected num_chunks = 1",
    ),
    # vshape needs two chunks
    ("vshape-one-chunk", GOOD, ["--placement", "vshape"], "placement: vshape needs num_chunks = 2"),
    # a negative time limit
    ("negative-time-limit", GOOD, ["--time-limit", "-1"], "solver.time_limit: must be > 0"),
    # issue 21 item 6: a seed or worker count OR-Tools cannot take (was a TypeError traceback)
    ("huge-seed", GOOD, ["--seed", "2147483648"], "error: solver.seed: must be <= 2147483647"),
    ("huge-workers", GOOD, ["--workers", "99999999999"], "error: solver.workers: must be <= 1024"),
    ("file-seed", GOOD + "solver: {seed: 4294967296}\n", [], "c.yaml: solver.seed: must be <="),
    # issue 21 item 4 and the size guard: huge counts are refused at once with the estimate
    # (a MemoryError after 6-38 s before)
    (
        "huge-batches",
        GOOD,
        ["-b", "1000000000"],
        "error: num_batches: too large: 4 devices x 1 chunks x 1,000,000,000 micro-batches = "
        "8,000,000,000 tasks, above the size guard of 200,000 (estimated 2.4e+05 s and 9.6e+03 GB "
        "before the search starts); pass --allow-large to run it anyway",
    ),
    (
        "huge-chunks",
        "num_stages: 4\nnum_batches: 8\nschedule: gpipe\n",
        ["--chunks", "1000000000000000000"],
        "error: num_chunks: too large: 4 devices x about 1e18 chunks x 8 micro-batches",
    ),
    (
        "huge-count-in-file",
        f"num_stages: 4\nnum_batches: {'9' * 4000}\n",
        [],
        "c.yaml: num_batches: too large: 4 devices x 1 chunks x about 1e4000 micro-batches",
    ),
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
    # issue 21 item 7: an output that is the config itself, or two outputs on one path
    ("json-is-the-config", GOOD, ["--json", "c.yaml"], "--json: c.yaml is also the config file"),
    (
        "json-is-the-config-spelt-otherwise",
        GOOD,
        ["--json", "./c.yaml"],
        "--json: ./c.yaml is also the config file",
    ),
    (
        "trace-is-the-json",
        GOOD,
        ["--json", "x.json", "--trace", "x.json"],
        "--trace: x.json is also the --json output",
    ),
    (
        "picture-is-the-trace",
        GOOD,
        ["--trace", "x.png", "-o", "x.png"],
        "--trace: x.png is also the --output output",
    ),
    # a picture extension matplotlib-only users might try
    ("picture-extension", GOOD, ["-o", "x.jpg"], "picture must end in .png, .svg, .pdf or .html"),
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


#: A file that is a directory (its content is this marker) or raw bytes.
DIRECTORY = object()
BAD_UTF8 = b"num_stages: 4\nnum_batches: \xff\xfe\n"
CHUNKED = "num_stages: 4\nnum_batches: 8\nnum_chunks: 2\nplacement: vshape\n"
LAYERED = "num_stages: 2\nnum_batches: 4\nlayers: p.csv\n"


def unwritable_directory(tmp_path: Path) -> str:
    """A directory no file can be created in: a read-only one, or /proc when running as root
    (root may write anywhere permissions allow)."""
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        return str(locked)
    if not Path("/proc/self").is_dir():
        pytest.skip("running as root without /proc: no unwritable directory to try")
    return "/proc"


#: (id, {file name: text, bytes or DIRECTORY}, arguments, exit code, fragment of the error
#: line). ``UNWRITABLE`` in an argument is replaced by an unwritable directory.
CASES = [
    # the config path is a directory: unreadable as a file
    ("config-is-directory", {"c.yaml": DIRECTORY}, ["solve", "c.yaml"], 2,
     "c.yaml: is a directory, not a config file"),
    # the config is not text at all
    ("config-not-utf8", {"c.yaml": BAD_UTF8}, ["solve", "c.yaml"], 2,
     "c.yaml: not a UTF-8 text file"),
    # JSON syntax error (trailing comma), chosen by the extension
    ("json-syntax", {"c.json": '{"num_stages": 4, "num_batches": 8,}'}, ["solve", "c.json"], 2,
     "c.json: JSON syntax error at line 1"),
    # an empty JSON file
    ("json-empty", {"c.json": ""}, ["solve", "c.json"], 2, "c.json: config file is empty"),
    # NaN in a space-separated list on the command line
    ("nan-time-cli", {"c.yaml": GOOD}, ["solve", "c.yaml", "-f", "1", "nan", "1", "1"], 2,
     "forward_times[1]: must be finite, got nan"),
    # infinite time in the file, one value for every stage
    ("inf-time-file", {"c.yaml": GOOD + "backward_times: .inf\n"}, ["solve", "c.yaml"], 2,
     "c.yaml: backward_times: must be finite, got inf"),
    # a boolean is not a time (YAML reads `true` as one)
    ("bool-time", {"c.yaml": GOOD + "forward_times: [1, 1, true, 1]\n"}, ["solve", "c.yaml"], 2,
     "forward_times[2]: expected a number, got True"),
    # a string in the split backward's list on the command line
    ("string-weight-cli", {"c.yaml": GOOD}, ["solve", "c.yaml", "-w", "1,fast"], 2,
     "weight_times: expected a number, got 'fast'"),
    # the split backward's list of the wrong length
    ("weight-wrong-length", {"c.yaml": GOOD + "weight_times: [1, 1]\n"}, ["solve", "c.yaml"], 2,
     "weight_times: expected 4 values (one per virtual stage), got 2"),
    # a fractional count on the command line (click's own integer check)
    ("fractional-batches-cli", {"c.yaml": GOOD}, ["solve", "c.yaml", "-b", "2.5"], 2,
     "invalid value for '-b' / '--num-batches'"),
    # a fractional count in the file
    ("fractional-batches-file", {"c.yaml": "num_stages: 4\nnum_batches: 2.5\n"},
     ["solve", "c.yaml"], 2, "num_batches: expected a whole number >= 1, got 2.5"),
    # zero devices
    ("zero-stages", {"c.yaml": GOOD}, ["solve", "c.yaml", "-s", "0"], 2,
     "num_stages: must be >= 1, got 0"),
    # zero chunks
    ("zero-chunks", {"c.yaml": GOOD}, ["solve", "c.yaml", "--chunks", "0"], 2,
     "num_chunks: must be >= 1, got 0"),
    # negative latency in the file
    ("negative-latency-file", {"c.yaml": GOOD + "p2p_time: -0.5\n"}, ["solve", "c.yaml"], 2,
     "c.yaml: p2p_time: must be >= 0, got -0.5"),
    # an unknown schedule name in the file
    ("unknown-schedule-file", {"c.yaml": "num_stages: 4\nnum_batches: 8\nschedule: 2f2b\n"},
     ["solve", "c.yaml"], 2, "c.yaml: schedule: unknown schedule '2f2b'"),
    # an unknown key in a JSON config
    ("unknown-key-json", {"c.json": '{"num_stages": 4, "num_batches": 8, "p2p": 1}'},
     ["solve", "c.json"], 2, "c.json: p2p: unknown key"),
    # placement list: a device index out of range
    ("placement-out-of-range", {"c.yaml": GOOD + "placement: [0, 1, 2, 7]\n"},
     ["solve", "c.yaml"], 2, "placement[3]: must be a device index 0..3, got 7"),
    # placement list: one index short
    ("placement-too-short", {"c.yaml": GOOD + "placement: [0, 1, 2]\n"}, ["solve", "c.yaml"], 2,
     "placement: expected 4 device indices (num_stages * num_chunks), got 3"),
    # placement: an unknown name
    ("placement-unknown-name", {"c.yaml": GOOD + "placement: diagonal\n"}, ["solve", "c.yaml"],
     2, "placement: expected one of interleaved, vshape or a list of device indices"),
    # placement list on the command line with a word in it
    ("placement-cli-word", {"c.yaml": GOOD}, ["solve", "c.yaml", "--placement", "0,1,2,x"], 2,
     "placement: expected interleaved, vshape or device indices, got '0,1,2,x'"),
    # a negative time limit in the file
    ("negative-time-limit-file", {"c.yaml": GOOD + "solver: {time_limit: -5}\n"},
     ["solve", "c.yaml"], 2, "c.yaml: solver.time_limit: must be > 0 seconds, got -5"),
    # a NaN time limit on the command line
    ("nan-time-limit", {"c.yaml": GOOD}, ["solve", "c.yaml", "--time-limit", "nan"], 2,
     "solver.time_limit: expected a finite number of seconds, got nan"),
    # negative workers
    ("negative-workers", {"c.yaml": GOOD}, ["solve", "c.yaml", "--workers", "-1"], 2,
     "solver.workers: must be >= 0, got -1"),
    # negative activation memory
    ("negative-activation", {"c.yaml": GOOD + "memory: {activation: [1, -1, 1, 1]}\n"},
     ["solve", "c.yaml"], 2, "memory.activation[1]: must be >= 0, got -1"),
    # a zero memory limit
    ("zero-memory-limit", {"c.yaml": GOOD}, ["solve", "c.yaml", "--memory-limit", "0"], 2,
     "memory.limit[0]: must be > 0, got 0"),
    # an output path that is an existing directory
    ("json-is-directory", {"c.yaml": GOOD, "out": DIRECTORY},
     ["solve", "c.yaml", "--json", "out"], 2, "--json: out is a directory"),
    # an output directory no file can be created in (checked before any work)
    ("json-unwritable", {"c.yaml": GOOD}, ["solve", "c.yaml", "--json", "UNWRITABLE/x.json"], 2,
     "--json: cannot write UNWRITABLE/x.json"),
    # the same for the picture
    ("picture-unwritable", {"c.yaml": GOOD}, ["solve", "c.yaml", "-o", "UNWRITABLE/x.png"], 2,
     "--output: cannot write UNWRITABLE/x.png"),
    # no schedule: a memory limit below one micro-batch (two chunks of 1 on each device)
    ("memory-below-one-microbatch", {"c.yaml": CHUNKED + "memory: {limit: 1.5}\n"},
     ["solve", "c.yaml"], 1,
     "no schedule: device 1 needs 2 memory for one micro-batch, the limit is 1.5"),
    # no schedule: the optimizer under a factor far below the 1F1B peak
    ("memory-factor-too-small", {"c.yaml": GOOD},
     ["solve", "c.yaml", "--schedule", "optimal", "--memory-limit", "0.1x"], 1,
     "no schedule: device 1 needs 1 memory for one micro-batch, the limit is 0.4"),
    # compare: the optimizer cannot run either
    ("compare-no-schedule", {"c.yaml": GOOD}, ["compare", "c.yaml", "--memory-limit", "0.5"], 1,
     "no schedule: device 1 needs 1 memory"),
    # compare: unwritable figure
    ("compare-unwritable", {"c.yaml": GOOD},
     ["compare", "c.yaml", "--schedules", "1f1b", "-o", "UNWRITABLE/c.png"], 2,
     "--output: cannot write UNWRITABLE/c.png"),
    # validate: no such file
    ("validate-missing", {}, ["validate", "gone.json"], 2, "gone.json"),
    # validate: a YAML config is not a schedule file
    ("validate-config", {"c.yaml": GOOD}, ["validate", "c.yaml"], 2, "not a schedule file"),
    # issue 21 item 1: a schedule file with an over-long integer, or nested too deeply
    ("validate-huge-integer", {"s2.json": '{"format": ' + "9" * 5000 + "}"},
     ["validate", "s2.json"], 2, "s2.json: not a schedule file (an integer has more digits"),
    ("validate-deep", {"s2.json": "[" * 100_000 + "]" * 100_000}, ["validate", "s2.json"], 2,
     "s2.json: not a schedule file (nested too deeply"),
    # issue 21 item 7: plot and export onto their own input
    ("plot-onto-input", {"s2.trace.json": "{}"}, ["plot", "s2.trace.json", "-o", "s2.trace.json"],
     2, "--output: s2.trace.json is also the schedule file"),
    ("export-onto-input", {"s2.json": "{}"}, ["export", "s2.json", "-o", "s2.json", "--format",
     "json"], 2, "--output: s2.json is also the schedule file"),
    # plot: an empty schedule file
    ("plot-empty", {"e.json": ""}, ["plot", "e.json", "-o", "e.png"], 2, "e.json"),
    # a profile CSV without the activation column (issue 19)
    ("profile-missing-column", {"c.yaml": LAYERED, "p.csv": "name,forward,backward\na,1,1\n"},
     ["solve", "c.yaml"], 2, "p.csv: missing column activation"),
    # a profile CSV with a negative time
    ("profile-negative-time",
     {"c.yaml": LAYERED, "p.csv": "name,forward,backward,activation\na,1,-1,1\nb,1,1,1\n"},
     ["solve", "c.yaml"], 2, "p.csv: row 2, backward: must be >= 0, got -1"),
    # fewer layers than virtual stages
    ("profile-too-few-layers",
     {"c.yaml": LAYERED, "p.csv": "name,forward,backward,activation\na,1,1,1\n"},
     ["solve", "c.yaml"], 2, "layers: the profile has 1 layers, fewer than the 2 virtual stages"),
    # compare chooses the partition with the optimizer only
    ("compare-auto-partition",
     {"c.yaml": LAYERED + "partition: auto\n",
      "p.csv": "name,forward,backward,activation\na,1,1,1\nb,1,1,1\n"},
     ["compare", "c.yaml", "--schedules", "1f1b"], 2,
     "partition: auto chooses the partition with the optimizer: add optimal"),
    # a negative time in an inline layer
    ("layer-negative-time",
     {"c.yaml": "num_stages: 2\nnum_batches: 4\nlayers: [{name: a, count: 2, forward: -1, "
                "backward: 1, activation: 1}]\n"},
     ["solve", "c.yaml"], 2, "c.yaml: layers[0].forward: must be > 0, got -1"),
    # export: an unknown format
    ("export-format", {"c.yaml": GOOD}, ["export", "c.yaml", "-o", "x.csv", "--format", "xls"],
     2, "--format: expected one of torch, torch-comms, trace, json, megatron, torchtitan, "
        "got 'xls'"),
    # a schedule file given to solve: point to the commands that read it
    ("solve-schedule-file", {"c.json": SCHEDULE}, ["solve", "c.json"], 2,
     "c.json: a schedule file, not a config: check it with 'ppopt validate'"),
    # a flag given a value: the value lands in CONFIG
    ("flag-with-value", {"c.yaml": GOOD},
     ["solve", "--deterministic", "true", "-s", "2", "-b", "2"], 2,
     "true: not a config file; flags such as --deterministic take no value"),
    # a schedule name that is a near miss
    ("schedule-near-miss", {"c.yaml": GOOD}, ["solve", "c.yaml", "--schedule", "ZB-H1"], 2,
     "unknown schedule 'ZB-H1', did you mean 'zb-h1'?"),
    ("schedule-near-miss-v", {"c.yaml": GOOD}, ["solve", "c.yaml", "--schedule", "zbv"], 2,
     "did you mean 'zb-v'?"),
    # plot: a device range that is not one, or backwards; a window that ends before it starts
    ("plot-devices-word", {"f.json": SCHEDULE}, ["plot", "f.json", "--devices", "first"], 2,
     "--devices: expected A-B or one device, from 1, got 'first'"),
    ("plot-devices-backwards", {"f.json": SCHEDULE}, ["plot", "f.json", "--devices", "2-1"], 2,
     "devices: 1 is before 2"),
    ("plot-window-backwards", {"f.json": SCHEDULE}, ["plot", "f.json", "--from", "5", "--to", "2"],
     2, "time window: 2 is not after 5"),
    # export: the format follows the extension; one that names none, or another format
    ("export-picture-extension", {"f.json": SCHEDULE}, ["export", "f.json", "-o", "x.png"], 2,
     "--output: cannot tell the format from 'x.png'"),
    ("export-format-vs-extension", {"f.json": SCHEDULE},
     ["export", "f.json", "-o", "x.csv", "--format", "trace"], 2,
     "--output: 'x.csv' names a torch file, not --format trace"),
]  # fmt: skip


def lay_out(tmp_path: Path, files: dict[str, object]) -> None:
    """Create the row's input files and directories."""
    for name, content in files.items():
        path = tmp_path / name
        if content is DIRECTORY:
            path.mkdir()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(str(content))


@pytest.mark.parametrize(
    ("files", "args", "code", "fragment"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_input_gives_one_line_and_touches_nothing(
    files: dict[str, object],
    args: list[str],
    code: int,
    fragment: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    lay_out(tmp_path, files)
    if any("UNWRITABLE" in arg for arg in args):
        where = unwritable_directory(tmp_path)
        args = [arg.replace("UNWRITABLE", where) for arg in args]
        fragment = fragment.replace("UNWRITABLE", where)
    outputs = [
        tmp_path / name
        for name in ("pipeline_1f1b.png", "pipeline_optimal.png", "pipeline_compare.png", "s.json")
    ]
    for path in outputs:
        path.write_bytes(SENTINEL)
    before = sorted(os.listdir(tmp_path))
    extra = ["--json", "s.json", "--workers", "1"] if args[0] == "solve" else []
    result = run(args[0], *extra, *args[1:])  # the row's own options come last and win
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("error: ")
    assert fragment in result.stderr, result.stderr
    assert "no schedule: no schedule" not in result.stderr
    assert "Traceback" not in result.stderr
    for path in outputs:
        assert path.read_bytes() == SENTINEL
    assert sorted(os.listdir(tmp_path)) == before  # no temporary file left behind


def test_the_tables_together_cover_every_kind_the_issue_lists() -> None:
    """Issue 9 asks for at least 16 kinds; count both tables."""
    ids = {case[0] for case in CASES} | {case[0] for case in ERROR_CASES}
    assert len(ids) == len(CASES) + len(ERROR_CASES)  # no row repeated under one id
    assert len(ids) >= 16
