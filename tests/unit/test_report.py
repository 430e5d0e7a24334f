"""The report's pieces that need no mesh: cumulative volume fractions, display conventions,
limits shown per quantity (see tests/verification/test_report_dvh.py and
tests/integration/test_spine_cases.py for the sampled content)."""

from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from solver.report import _frame_labels, region_colour
from solver.sampling import cumulative_volume_fraction


def test_cumulative_volume_fraction_is_volume_weighted_monotone_and_starts_at_100():
    values = np.array([37.0, 40.0, 44.0, 50.0])
    weights = np.array([1.0, 1.0, 2.0, 6.0])  # the hottest sample carries 60 % of the volume
    levels = np.arange(36.0, 52.0, 0.5)
    frac, total = cumulative_volume_fraction(values, weights, levels, MPI.COMM_SELF)
    assert total == pytest.approx(10.0)
    assert frac[0] == pytest.approx(1.0)
    assert np.all(np.diff(frac) <= 0.0)
    assert frac[np.searchsorted(levels, 45.0)] == pytest.approx(0.6)  # volume, not a count (1/4)
    assert frac[np.searchsorted(levels, 44.0)] == pytest.approx(0.8)  # at or above includes equality
    assert frac[-1] == 0.0


def test_display_conventions():
    radio = _frame_labels("axial", True, "radiological")
    neuro = _frame_labels("axial", True, "neurological")
    # x is the patient's left: radiological shows it to the image right (no flip), anterior up
    assert radio["edges"] == ("R", "L", "A", "P") and not radio["flip_x"] and radio["flip_y"]
    assert neuro["edges"] == ("L", "R", "A", "P") and neuro["flip_x"] and neuro["flip_y"]
    sag = _frame_labels("sagittal", True, "radiological")
    assert sag["edges"] == ("A", "P", "cranial", "caudal") and not sag["flip_y"]
    assert _frame_labels("axial", False, "radiological")["edges"] is None  # no anatomy, no letters


def test_region_colours_are_stable():
    assert region_colour("dura") == region_colour("dura") != region_colour("spinal_cord")
    assert region_colour("some_nerve") == region_colour("some_nerve")
