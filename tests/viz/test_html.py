"""The interactive page: its embedded data against independent computations, and the page
drawn by a real headless Chromium (DOM: every task drawn; screenshot: the kinds' colours)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from matplotlib.image import imread
from strategies import timed

from ppopt.baselines import baseline
from ppopt.cli import app
from ppopt.metrics import compute_metrics
from ppopt.problem import Problem
from ppopt.schedule import Schedule
from ppopt.viz.gantt import KIND_COLORS
from ppopt.viz.html import page_html, write_html

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs Chromium (.ci/run); elsewhere the browser tests skip when it is missing.
needs_browser = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="no chromium on this machine"
)
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip


def embedded(html: str) -> dict:
    """The page's data, read back from its script element."""
    match = re.search(r'<script id="ppopt-data" type="application/json">(.*?)</script>', html, re.S)
    assert match, "no data element"
    return json.loads(match[1])


def check_tab(tab: dict, schedule: Schedule) -> None:
    """One tab's data is the schedule's: every op with its times, kind, stage and
    micro-batch; the memory after each op reproduces the metrics' peaks (running level
    before an op plus what it takes), and every device ends at 0."""
    problem = schedule.problem
    metrics = compute_metrics(schedule)
    assert tab["numDevices"] == problem.num_devices
    assert tab["makespan"] == pytest.approx(schedule.makespan)
    for device, (ops, dev) in enumerate(zip(schedule.device_ops, tab["devices"], strict=True)):
        assert dev["start"] == pytest.approx([o.start for o in ops])
        assert dev["end"] == pytest.approx([o.end for o in ops])
        assert dev["kind"] == "".join(str(o.kind) for o in ops)
        assert dev["stage"] == [o.stage for o in ops]
        assert dev["mb"] == [o.microbatch for o in ops]
        before, peak = 0.0, 0.0
        for op, after in zip(ops, dev["mem"], strict=True):
            peak = max(peak, before + problem.op_memory_change(op.kind, op.stage, op.microbatch)[0])
            before = after
        assert peak == pytest.approx(metrics.peak_memory[device], abs=1e-9)
        assert dev["mem"][-1] == pytest.approx(0.0, abs=1e-9)
        assert dev["memV"][-1] == pytest.approx(0.0, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(timed())
def test_embedded_data_is_the_schedule(schedule: Schedule) -> None:
    check_tab(embedded(page_html([schedule]))["schedules"][0], schedule)


def test_recomputed_microbatches_keep_only_their_checkpoint_between_f_and_r() -> None:
    """Full recompute, checkpoint 0.25: after each F a device holds 0.25 more, not the
    activation (1); the tab's memory matches the metrics' peaks."""
    problem = Problem.create(num_stages=3, num_batches=4, recompute="all", checkpoint=0.25)
    schedule = baseline("1f1b", problem)
    tab = embedded(page_html([schedule]))["schedules"][0]
    check_tab(tab, schedule)
    first = tab["devices"][0]
    assert first["kind"][0] == "F" and first["mem"][0] == pytest.approx(0.25)


def test_compare_page_has_one_tab_per_schedule_and_the_kinds_colours() -> None:
    problem = Problem.create(4, 8, 1, 1, weight=1)
    schedules = [baseline(name, problem) for name in ("1f1b", "zb-h1", "gpipe")]
    data = embedded(page_html(schedules))
    assert [tab["name"] for tab in data["schedules"]] == ["1f1b", "zb-h1", "gpipe"]
    for tab, schedule in zip(data["schedules"], schedules, strict=True):
        check_tab(tab, schedule)
    assert data["colors"]["F"] == KIND_COLORS["F"]


def test_script_end_in_a_name_cannot_break_out_of_the_data() -> None:
    schedule = baseline("1f1b", Problem.create(2, 2)).renamed("</script><b>x")
    html = page_html([schedule])
    assert embedded(html)["schedules"][0]["name"] == "</script><b>x"
    plain = page_html([schedule.renamed("x")])
    assert html.count("</script>") == plain.count("</script>")  # the data element is not cut


def test_cli_writes_the_page_for_solve_compare_and_plot(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    runner = CliRunner()
    page = tmp_path / "s.html"
    result = runner.invoke(app, ["solve", "-s", "3", "-b", "4", "--schedule", "1f1b",
                                 "-o", str(page), "--json", str(tmp_path / "s.json")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert embedded(page.read_text())["schedules"][0]["name"] == "1f1b"
    compared = tmp_path / "c.html"
    config = tmp_path / "c.yaml"
    config.write_text("num_stages: 3\nnum_batches: 4\n")
    result = runner.invoke(app, ["compare", str(config), "--schedules", "1f1b,gpipe",
                                 "-o", str(compared)])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert [t["name"] for t in embedded(compared.read_text())["schedules"]] == ["1f1b", "gpipe"]
    replotted = tmp_path / "p.html"
    result = runner.invoke(app, ["plot", str(tmp_path / "s.json"), "-o", str(replotted)])
    assert result.exit_code == 0, result.output
    assert (
        embedded(replotted.read_text())["schedules"][0]["devices"]
        == embedded(page.read_text())["schedules"][0]["devices"]
    )


def chromium(page: Path, tmp_path: Path, *args: str, timeout: float = 120) -> str:
    """Run headless Chromium on the page (a fresh profile each time); its stdout."""
    assert CHROMIUM is not None, "CI must install chromium (.ci/run)"
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.as_uri()],
        capture_output=True, text=True, timeout=timeout, check=True,
    )  # fmt: skip
    return done.stdout


def drawn_status(dom: str) -> tuple[int, int]:
    match = re.search(r'<p id="status" data-tasks="(\d+)" data-drawn="(\d+)"', dom)
    assert match, "the page's script did not run to its first draw"
    return int(match[1]), int(match[2])


@needs_browser
def test_browser_draws_every_task_and_the_kinds(tmp_path: Path) -> None:
    problem = Problem.create(4, 8, 1, 1, weight=1)
    schedules = [baseline("1f1b", problem), baseline("zb-h1", problem)]
    page = write_html(schedules, tmp_path / "page.html")
    assert drawn_status(chromium(page, tmp_path, "--dump-dom")) == (96, 96)
    shot = tmp_path / "shot.png"
    chromium(page, tmp_path, "--window-size=1200,700", f"--screenshot={shot}")
    pixels = imread(shot)[..., :3]
    for kind in ("F", "B", "W"):
        rgb = [int(KIND_COLORS[kind][i : i + 2], 16) / 255 for i in (1, 3, 5)]
        share = (abs(pixels - rgb).max(axis=-1) < 0.02).mean()
        assert share > 0.005, f"{kind}: {share:.4f} of the screenshot in its colour"
    assert (pixels.min(axis=-1) < 0.9).mean() > 0.05  # drawn content, not a blank page


@needs_browser
def test_browser_draws_49k_tasks(tmp_path: Path) -> None:
    problem = Problem.create(32, 512, 1, 1, weight=1)  # 32 * 512 * 3 = 49,152 tasks
    page = write_html([baseline("1f1b", problem)], tmp_path / "big.html")
    dom = chromium(page, tmp_path, "--dump-dom", timeout=180)
    assert drawn_status(dom) == (49_152, 49_152)
