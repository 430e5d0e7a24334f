"""A tissue override that sets one optical coefficient of a tabulated tissue keeps it.

Before, the optical table replaced both coefficients whenever one was missing, so
`--set tissues.fat.absorption_per_m=30` (or a sweep over it) silently changed nothing."""

from __future__ import annotations

from pathlib import Path

from solver.case_loader import load_case
from solver.optics import OPTICAL_TABLE

CASE = Path(__file__).resolve().parents[2] / "cases" / "spine" / "T6_lytic_track.toml"


def test_one_explicit_coefficient_is_kept_and_the_other_comes_from_the_table():
    table = OPTICAL_TABLE[980]["fat"]
    base = load_case(CASE).resolved_tissues()["epidural_fat"]
    assert (base.absorption_per_m, base.reduced_scattering_per_m) == (table.absorption_per_m,
                                                                       table.reduced_scattering_per_m)
    mu_a = load_case(CASE, ["tissues.fat.absorption_per_m=30.0"]).resolved_tissues()["epidural_fat"]
    assert mu_a.absorption_per_m == 30.0 and mu_a.reduced_scattering_per_m == table.reduced_scattering_per_m
    mu_s = load_case(CASE, ["tissues.fat.reduced_scattering_per_m=500.0"]).resolved_tissues()["epidural_fat"]
    assert mu_s.reduced_scattering_per_m == 500.0 and mu_s.absorption_per_m == table.absorption_per_m
    assert load_case(CASE, ["tissues.fat.absorption_per_m=30.0"]).hash() != load_case(CASE).hash()
