"""Saving pictures: format by extension, non-trivial files, atomic writes, figure closed."""

from __future__ import annotations

import struct

import matplotlib.pyplot as plt
import pytest

from ppopt.schedule import Schedule
from ppopt.viz import plot_gantt, render_schedule, save_figure


def test_png_is_a_real_picture(tmp_path, plain: Schedule) -> None:
    path = render_schedule(plain, tmp_path / "chart.png", show_memory=True, limit=4)
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])  # IHDR
    assert width >= 1000 and height >= 500
    assert len(data) > 20_000


def test_svg_keeps_labels_as_text(tmp_path, plain: Schedule) -> None:
    text = render_schedule(plain, tmp_path / "chart.svg").read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    for device in range(1, 5):
        assert f">device {device}</text>" in text
    for microbatch in range(1, 9):
        assert f">{microbatch}</text>" in text
    assert ">1f1b: makespan 33, bubble rate 27.3%</text>" in text


def test_pdf_header(tmp_path, chunked: Schedule) -> None:
    data = render_schedule(chunked, tmp_path / "chart.PDF", show_memory=True).read_bytes()
    assert data.startswith(b"%PDF-") and len(data) > 5_000


@pytest.mark.parametrize("suffix", [".svg", ".pdf"])
def test_same_schedule_same_bytes(tmp_path, plain: Schedule, suffix: str) -> None:
    one = render_schedule(plain, tmp_path / f"a{suffix}").read_bytes()
    two = render_schedule(plain, tmp_path / f"b{suffix}").read_bytes()
    assert one == two  # no dates or random ids: pictures diff cleanly


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("chart.jpg", "'.jpg'"),  # a real image format we do not write
        ("chart.trace.json", "'.json'"),  # a trace is not a picture
        ("chart", "no extension"),
    ],
)
def test_bad_extension_is_refused_and_nothing_written(tmp_path, plain, name, shown) -> None:
    ax = plot_gantt(plain)
    with pytest.raises(ValueError, match=shown):
        save_figure(ax.figure, tmp_path / name)
    with pytest.raises(ValueError, match=shown):
        render_schedule(plain, tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_written_atomically_no_leftovers(tmp_path, plain: Schedule) -> None:
    target = tmp_path / "chart.png"
    render_schedule(plain, target)
    render_schedule(plain, target)  # overwriting too
    assert [p.name for p in tmp_path.iterdir()] == ["chart.png"]


def test_failed_write_keeps_the_old_picture(tmp_path, monkeypatch, plain: Schedule) -> None:
    target = tmp_path / "chart.svg"
    target.write_text("old picture")
    fig = plot_gantt(plain).figure
    seen = []

    def broken_savefig(path, **kwargs):
        seen.append(path)
        with open(path, "w") as half:
            half.write("<svg half")
        raise OSError("disk full")

    monkeypatch.setattr(fig, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        save_figure(fig, target)
    assert target.read_text() == "old picture"
    assert [p.name for p in tmp_path.iterdir()] == ["chart.svg"]
    (temp,) = seen
    assert temp.parent == tmp_path and temp.suffix == ".svg" and temp != target


def test_save_closes_a_pyplot_figure(tmp_path, plain: Schedule) -> None:
    fig, ax = plt.subplots()
    plot_gantt(plain, ax=ax)
    assert plt.fignum_exists(fig.number)
    save_figure(fig, tmp_path / "chart.png")
    assert not plt.fignum_exists(fig.number)
