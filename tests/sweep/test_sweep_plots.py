"""The sweep's plots (:mod:`ppopt.sweep.plots`): units, bands, categorical axes."""

from __future__ import annotations

import math

import pytest

from ppopt.sweep.plots import plot_bubble_rate, plot_improvement

# ------------------------------------------------------------------------------ plots


def test_plots_name_metric_units_and_bands() -> None:
    rows = [
        {
            "num_batches": m,
            "p2p_time": t,
            "num_chunks": 1,
            "memory.limit": lim,
            "schedule": s,
            "bubble_rate": (3 / (m + 3)) * (1.1 if s == "1f1b" else 1.0),
            "improvement": 0.05 * t,
        }
        for m in (4, 8)
        for t in (0, 0.5, 1.0)
        for lim in ("1x", "2x")
        for s in ("1f1b", "optimal")
    ]
    keys = ["num_batches", "p2p_time", "memory.limit"]
    figure = plot_bubble_rate(rows, "num_batches", keys)
    ax = figure.axes[0]
    assert ax.get_xlabel() == "num_batches (micro-batches)"
    assert "bubble rate" in ax.get_ylabel() and "idle share" in ax.get_ylabel()
    assert "band" in figure.get_suptitle()  # 6 combinations of the other keys: mean + band
    assert [line.get_label() for line in ax.get_lines()] == ["1f1b", "optimal"]
    mean_1f1b = ax.get_lines()[0].get_ydata()
    assert list(mean_1f1b) == pytest.approx([100 * 1.1 * 3 / 7, 100 * 1.1 * 3 / 11])

    few = plot_bubble_rate(
        [r for r in rows if r["memory.limit"] == "1x" and r["p2p_time"] == 0], "num_batches", keys
    )
    assert "band" not in few.get_suptitle()
    labels = [line.get_label() for line in few.axes[0].get_lines()]
    assert labels == ["1f1b, p2p_time=0, memory.limit=1x", "optimal, p2p_time=0, memory.limit=1x"]

    categorical = plot_bubble_rate(rows, "memory.limit", keys).axes[0]
    assert [t.get_text() for t in categorical.get_xticklabels()] == ["1x", "2x"]

    gain = plot_improvement([r for r in rows if r["schedule"] == "optimal"], keys)
    assert "1F1B makespan - optimal makespan" in gain.get_suptitle()
    assert gain.axes[0].get_ylabel() == "makespan gain over 1F1B (%)"
    assert math.isclose(max(max(line.get_ydata()) for line in gain.axes[0].get_lines()), 5.0)


def test_improvement_is_over_the_sweeps_own_1f1b_row_when_it_has_one() -> None:
    """Split backward: the sweep's 1f1b run (30) is not the unsplit reference (33); the
    plot's gain is 1 - 27/30 = 10 %, not 1 - 27/33, and the title says which 1F1B."""
    from ppopt.sweep.plots import OWN_1F1B, gains_over_own_1f1b

    rows = [
        {"num_batches": 8, "schedule": "1f1b", "makespan": 30.0, "improvement": None},
        {"num_batches": 8, "schedule": "optimal", "makespan": 27.0, "improvement": 1 - 27 / 33},
    ]
    (gain,) = gains_over_own_1f1b(rows, ["num_batches"])
    assert gain["improvement"] == pytest.approx(0.1)
    figure = plot_improvement([gain], ["num_batches"], OWN_1F1B)
    assert OWN_1F1B in figure.get_suptitle()
    assert gains_over_own_1f1b(rows[1:], ["num_batches"]) == []  # no 1f1b run: none
