"""Every default optical constant has a source and an uncertainty range containing it."""

import math

import pytest

from solver.optics import OPTICAL_ALIASES, OPTICAL_TABLE
from solver.optics_sources import OPTICAL_RANGES, QUANTITIES, optical_range


@pytest.mark.parametrize("nm", sorted(OPTICAL_TABLE))
def test_every_optical_constant_has_a_source_and_a_range(nm):
    assert set(OPTICAL_RANGES[nm]) == set(OPTICAL_TABLE[nm]), "ranges and table list the same tissues"
    for tissue, props in OPTICAL_TABLE[nm].items():
        for q in QUANTITIES:
            low, nominal, high, source = OPTICAL_RANGES[nm][tissue][q]
            assert nominal == getattr(props, q), (nm, tissue, q, "nominal is the table's default")
            assert all(math.isfinite(v) for v in (low, nominal, high))
            assert 0.0 <= low <= nominal <= high, (nm, tissue, q)
            assert low < high, (nm, tissue, q, "a range, not a point")
            assert len(source) > 20 and any(ch.isdigit() for ch in source), (tissue, q, source)
        # absorption must stay positive over the whole range (OpticalProperties refuses mu_a <= 0)
        assert OPTICAL_RANGES[nm][tissue]["absorption_per_m"][0] > 0.0


def test_alias_lookup_and_unknown_names():
    assert optical_range("spinal_cord", "absorption_per_m")[1] == OPTICAL_TABLE[980]["white_matter"].absorption_per_m
    assert all(OPTICAL_ALIASES[a] in OPTICAL_RANGES[980] for a in OPTICAL_ALIASES)
    with pytest.raises(KeyError):
        optical_range("liver", "absorption_per_m")
    with pytest.raises(KeyError):
        optical_range("dura", "anisotropy")
