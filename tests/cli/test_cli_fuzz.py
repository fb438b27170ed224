"""The command line's contract under random input (issue 21): hypothesis draws config files
(YAML or JSON, valid and invalid values for every key, broken files) and command-line options
(valid and invalid), runs ``ppopt solve`` in-process and checks, whatever it drew:

* the exit code is 0, 1 (no schedule) or 2 (bad input), never anything else;
* on failure, stderr holds exactly one ``error:`` line and stdout nothing; never a traceback;
* every schedule file it wrote passes ``ppopt validate`` (exit 0).

Problems are tiny (at most 3 devices, 4 micro-batches, 2 chunks), solves get one CP-SAT worker
and 0.2 s, and no picture is drawn, so the 300 examples take well under a minute.
"""

from __future__ import annotations

import contextlib
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ppopt.cli import app

#: A value the file or option leaves out.
ABSENT = object()

SCHEDULES = ["optimal", "1f1b", "gpipe", "zb-h1", "zb-h2", "interleaved-1f1b", "zb-v",
             "v-1f1b", "dualpipev", "greedy"]  # fmt: skip
#: Values no key of a config accepts, or that break a rule somewhere (issue 21's attacks).
HOSTILE = [-1, 0, 2.5, "x", True, None, [], {}, math.nan, math.inf, 1e308, 1e-300, 10**30,
           [1, "y"], -0.0]  # fmt: skip


def _maybe_bad(draw: st.DrawFn, good: st.SearchStrategy[Any], hostile: bool) -> Any:
    """A good value; in a hostile example, sometimes a hostile one or nothing."""
    roll = draw(st.integers(0, 9)) if hostile else 9
    if roll == 0:
        return draw(st.sampled_from(HOSTILE))
    if roll == 1:
        return ABSENT
    return draw(good)


TIMES = st.sampled_from([1.0, 2.0, 0.5, 1.5]) | st.floats(0.1, 3.0)
#: Schedules that apply to most tiny problems come up more often.
LIKELY = st.sampled_from(["optimal", "optimal", "1f1b", "gpipe", "greedy"]) | st.sampled_from(
    SCHEDULES
)


@st.composite
def configs(draw: st.DrawFn, hostile: bool) -> dict[str, Any]:
    """A config dict: every key of docs/contract.md §2, each good, hostile or absent."""
    stages = draw(st.integers(1, 3))
    chunks = draw(st.sampled_from([1, 1, 2]))
    n = stages * chunks
    times = TIMES | st.lists(TIMES, min_size=n, max_size=n)
    if hostile:
        times |= st.lists(TIMES, max_size=4)

    def pick(good: st.SearchStrategy[Any]) -> Any:
        return _maybe_bad(draw, good, hostile)

    config: dict[str, Any] = {
        "num_stages": pick(st.just(stages)),
        "num_batches": pick(st.integers(1, 4)),
        "num_chunks": pick(st.just(chunks)) if chunks > 1 else ABSENT,
        "placement": pick(st.sampled_from(["interleaved", "vshape"])) if chunks > 1 else ABSENT,
        "forward_times": pick(times),
        "backward_times": pick(times),
        "weight_times": pick(times) if draw(st.booleans()) else ABSENT,
        "p2p_time": pick(st.sampled_from([0, 0.5, 0.25, 1])),
        "schedule": pick(LIKELY),
        "memory": pick(
            st.fixed_dictionaries(
                {},
                optional={
                    "limit": st.sampled_from(["1x", "2x", "none", 4, 2])
                    | st.sampled_from(["lots", -1, 0.5] if hostile else ["1x"]),
                    "activation": TIMES,
                },
            )
        ),
        "solver": {"time_limit": 0.2, "workers": 1, **draw(solver_sections(hostile))},
    }
    if hostile and draw(st.integers(0, 9)) == 0:
        config["num_stagez"] = 4  # an unknown key
    return {key: value for key, value in config.items() if value is not ABSENT}


def solver_sections(hostile: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Optional solver keys; bad words and out-of-range seeds only in hostile examples."""
    bad = hostile
    return st.fixed_dictionaries(
        {},
        optional={
            "seed": st.sampled_from([0, 7, *([2**31, -1] if bad else [])]),
            "objective": st.sampled_from(["makespan", "span", *(["cost"] if bad else [])]),
            "order": st.sampled_from(["free", "fixed", *(["sideways"] if bad else [])]),
            "method": st.sampled_from(["auto", "direct", "large"]),
        },
    )


#: Options that override the file: (option, good values, bad values).
OPTIONS = [
    ("-s", ["1", "2", "3"], ["0", "two", "-1"]),
    ("-b", ["1", "3", "4"], ["0", "1000000000"]),
    ("-f", ["1", "1.5"], ["1 2", "-1", "nan", "inf", "1e308", "1e-300", "x"]),
    ("-bw", ["2", "1.5"], ["0", "2 2 2"]),
    ("-w", ["1", "0.5"], ["-1"]),
    ("--p2p-time", ["0", "0.5"], ["-1", "1e308", "abc"]),
    ("--chunks", ["1"], ["0", "1000000000000000000"]),
    ("--placement", ["interleaved"], ["vshape", "0,1", "zigzag"]),
    ("--schedule", SCHEDULES, ["2f2b"]),
    ("--memory-limit", ["1x", "2x", "none", "3"], ["0.5", "lots", "-2x"]),
    ("--objective", ["makespan", "span"], ["cost"]),
    ("--order", ["free"], ["fixed"]),
    ("--seed", ["0", "3"], ["2147483648", "-5"]),
    ("--workers", ["1"], ["99999999999", "-1"]),
    ("--time-limit", ["0.2"], ["0", "-1", "abc"]),
    ("--runtime", ["abstract", "torch"], ["jax"]),
    ("--trace", ["t.trace.json"], ["s.json"]),
    ("-o", [], ["x.jpg", "s.json"]),
]


@st.composite
def option_lists(draw: st.DrawFn, hostile: bool) -> list[str]:
    """A few options with drawn values (later ones win, as on a real command line)."""
    chosen = draw(st.lists(st.sampled_from(OPTIONS), max_size=3, unique_by=lambda o: o[0]))
    args: list[str] = []
    for flag, good, bad in chosen:
        values = [*good, *bad] if hostile else good
        if values:
            args += [flag, *draw(st.sampled_from(values)).split()]
    return args


#: Files that are not a config at all: syntax errors, aliases, deep nesting, not UTF-8.
BROKEN = [
    b"num_stages: [4\n",
    b"a: &x 1\nb: *x\n",
    b"num_stages: " + b"[" * 2000 + b"]" * 2000 + b"\n",
    b"num_stages: " + b"9" * 5000 + b"\n",
    b"\xff\xfe\x00",
    b"- 1\n- 2\n",
    b"",
]


@st.composite
def invocations(draw: st.DrawFn) -> tuple[str, bytes, list[str]]:
    """A config file's name and bytes and the options: half the examples are hostile (bad
    values anywhere, broken files), half use good values only (which can still meet a
    baseline that does not apply, or a memory limit no schedule fits)."""
    hostile = draw(st.booleans())
    options = draw(option_lists(hostile))
    if hostile and draw(st.integers(0, 7)) == 0:
        return "c.yaml", draw(st.sampled_from(BROKEN)), options
    config = draw(configs(hostile))
    if draw(st.booleans()):  # NaN and inf become JSON's NaN and Infinity
        return "c.json", json.dumps(config).encode(), options
    return "c.yaml", yaml.safe_dump(config).encode(), options


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(invocation=invocations(), with_json=st.booleans())
def test_the_cli_keeps_its_contract_on_any_input(
    invocation: tuple[str, bytes, list[str]], with_json: bool
) -> None:
    name, content, options = invocation
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        Path(name).write_bytes(content)
        json_out = ["--json", "s.json"] if with_json else []
        args = ["solve", name, "--no-visualization", "--quiet", "--workers", "1",
                "--time-limit", "0.2", *json_out, *options]  # fmt: skip
        result = runner.invoke(app, args)
        event(f"exit code {result.exit_code}")  # --hypothesis-show-statistics: the mix
        everything = result.stdout + result.stderr
        assert "Traceback" not in everything, (args, everything)
        assert result.exit_code in (0, 1, 2), (args, result.exit_code, everything)
        if not isinstance(result.exception, SystemExit | None):
            raise AssertionError((args, result.exception))
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        if result.exit_code != 0:
            assert len(errors) == 1, (args, result.stderr)
            assert result.stderr.count("\n") == 1, (args, result.stderr)
            assert result.stdout == "", (args, result.stdout)
        else:
            assert errors == [], (args, result.stderr)
        for written in ("s.json",):
            if result.exit_code == 0 and Path(written).exists() and with_json:
                checked = runner.invoke(app, ["validate", written])
                event("schedule file validated")
                assert checked.exit_code == 0, (args, checked.stdout, checked.stderr)
