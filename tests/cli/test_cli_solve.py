"""``ppopt solve`` end to end (docs/contract.md §3): the seed's case and spellings, option
versus config key, the optimizer, output files written together, Ctrl-C.

Most cases run in-process with typer's ``CliRunner`` (fast); a few run the real console script
``ppopt`` and ``python -m ppopt`` as subprocesses.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from cli_helpers import (
    CONFIGS,
    ENTRY_POINTS,
    PNG_MAGIC,
    SENTINEL,
    report_values,
    run,
    run_process,
    write,
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
    *notices, last = result.stderr.strip().splitlines()
    assert last == "wrote pipeline_1f1b.png"  # and at most the slow-drawing notices before it
    assert all(line.startswith(("drawing pipeline_1f1b.png", "drew ")) for line in notices)


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
    assert "note:" not in result.stderr  # the picture is the 1F1B its name says


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
    # the seed's file name says 1f1b: one line says what the picture really shows
    notes = [line for line in done.stderr.splitlines() if line.startswith("note:")]
    assert notes == [
        "note: pipeline_1f1b_custom.png shows the optimal schedule, not 1f1b as its name says "
        "(the default schedule is optimal; --schedule 1f1b draws 1f1b)"
    ]


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


def test_failed_picture_leaves_every_output_untouched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The schedule file and the picture are renamed together, only when both succeeded."""

    def broken(schedule, path, **options):
        Path(path).write_bytes(b"half a pic")
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr("ppopt.viz.save.render_schedule", broken)
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
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("ppopt.runs.baseline", interrupted)
    result = run("solve", "-s", "2", "-b", "2", "--schedule", "1f1b", "--no-visualization")
    assert result.exit_code == 130
    assert result.stderr == "error: interrupted\n"


def test_trace_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--trace`` writes the Chrome trace beside the report."""
    monkeypatch.chdir(tmp_path)
    result = run("solve", "-s", "2", "-b", "2", "--schedule", "1f1b", "--no-visualization",
                 "--trace", "t.trace.json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert json.loads((tmp_path / "t.trace.json").read_text())


def test_baseline_picture_has_its_memory_panel(tmp_path: Path) -> None:
    """A one-chunk baseline without a memory limit still shows what it holds (SVG keeps the
    panel's axis label as text)."""
    picture = tmp_path / "b.svg"
    result = run("solve", "-s", "3", "-b", "4", "--schedule", "gpipe", "-o", str(picture))
    assert result.exit_code == 0, result.stderr
    assert ">activation memory</text>" in picture.read_text()


def test_plot_shows_a_window_of_some_devices(tmp_path: Path) -> None:
    """--from/--to/--devices zoom the picture: only devices 3 to 5 are drawn (their row
    names are the only ones in the SVG), without the memory panel."""
    schedule = tmp_path / "s.json"
    assert run("solve", "-s", "8", "-b", "16", "--schedule", "1f1b", "--json", str(schedule),
               "--no-visualization").exit_code == 0  # fmt: skip
    picture = tmp_path / "zoom.svg"
    result = run("plot", str(schedule), "-o", str(picture), "--from", "10", "--to", "30",
                 "--devices", "3-5", "--no-memory")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    text = picture.read_text()
    shown = {d for d in range(1, 9) if f">device {d}</text>" in text}
    assert shown == {3, 4, 5}
    assert ">activation memory</text>" not in text
