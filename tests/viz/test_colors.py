"""The kinds' colours stay apart for every common kind of colour vision.

Each colour is passed through the colour-blindness simulation of Machado, Oliveira and
Fernandes (2009, severity 1: protanopia, deuteranopia, tritanopia) in linear RGB, converted to
CIELAB, and every pair must differ by a CIE76 distance of at least 15 (about where two flat
colours stop being confused at a glance; the previous W green was 10.4 from B under
protanopia).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from matplotlib.colors import to_rgb

from ppopt.viz.gantt import KIND_COLORS

SIMULATIONS = {
    "normal": np.eye(3),
    "protanopia": np.array(
        [[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
         [-0.003882, -0.048116, 1.051998]]
    ),
    "deuteranopia": np.array(
        [[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
         [-0.011820, 0.042940, 0.968881]]
    ),
    "tritanopia": np.array(
        [[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
         [0.004733, 0.691367, 0.303900]]
    ),
}  # fmt: skip
MIN_DISTANCE = 15.0


def linear(srgb: np.ndarray) -> np.ndarray:
    return np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)


def lab(rgb_linear: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of a linear RGB colour."""
    xyz = np.array(
        [[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]
    ) @ np.clip(rgb_linear, 0.0, 1.0)
    t = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


@pytest.mark.parametrize("vision", list(SIMULATIONS))
def test_every_pair_of_kind_colours_stays_apart(vision: str) -> None:
    simulated = {
        kind: lab(SIMULATIONS[vision] @ linear(np.array(to_rgb(color))))
        for kind, color in KIND_COLORS.items()
    }
    for (a, lab_a), (b, lab_b) in itertools.combinations(simulated.items(), 2):
        distance = float(np.linalg.norm(lab_a - lab_b))
        assert distance >= MIN_DISTANCE, f"{a} and {b}: {distance:.1f} apart with {vision}"


def test_the_check_catches_a_red_green_pair() -> None:
    red, green = linear(np.array(to_rgb("#d62728"))), linear(np.array(to_rgb("#2ca02c")))
    m = SIMULATIONS["deuteranopia"]
    assert np.linalg.norm(lab(red) - lab(green)) > 50  # far apart for normal vision
    assert np.linalg.norm(lab(m @ red) - lab(m @ green)) < MIN_DISTANCE  # confused here
