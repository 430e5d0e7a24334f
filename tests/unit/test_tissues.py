"""The default tissue library equals the table of docs/MODEL.md section 4
(IT'IS Foundation database v4.x; tumour: Cancers 2019, 11:1183)."""

from __future__ import annotations

import pytest

from solver import tissues
from solver.case_loader import parse_case

# docs/MODEL.md section 4, the same numbers:
# tissue: (rho kg/m3, c J/kg/K, k W/m/K, w 1/s, W W/m3/K)
PHYSICS_TABLE = {
    "cancellous_bone": (1178, 2274, 0.31, 5.89e-4, 2237),
    "cortical_bone": (1908, 1313, 0.32, 3.18e-4, 1207),
    "red_marrow": (1029, 2666, 0.28, 2.31e-3, 8787),
    "spinal_cord": (1075, 3630, 0.51, 2.87e-3, 10907),
    "nerve": (1075, 3613, 0.49, 2.87e-3, 10907),
    "csf": (1007, 4096, 0.57, 0.0, 0),
    "dura": (1174, 3364, 0.44, 7.44e-3, 28232),
    "fat": (911, 2348, 0.21, 4.97e-4, 1886),
    "muscle": (1090, 3421, 0.49, 6.68e-4, 2535),
    "disc": (1100, 3568, 0.49, 6.41e-4, 2435),
}
# docs/MODEL.md section 4: "A published brain-tumour model used rho 1056, c 3700, k 0.57, W = 22545"
TUMOUR = (1056, 3700, 0.57, 22545)
BLOOD_RHO, BLOOD_C = 1049.75, 3617.0  # docs/MODEL.md section 4

ALIASES = {
    "epidural_fat": "fat",
    "cerebrospinal_fluid": "csf",
    "bone_marrow": "red_marrow",
    "tumor": "tumour",
    "intervertebral_disc": "disc",
}


@pytest.fixture(scope="module")
def lib():
    return tissues.library()


@pytest.mark.parametrize("name", sorted(PHYSICS_TABLE))
def test_library_matches_physics_table(lib, name):
    rho, c, k, _w, W = PHYSICS_TABLE[name]
    t = lib[name]
    assert t["density_kg_per_m3"] == rho
    assert t["specific_heat_J_per_kgK"] == c
    assert t["conductivity_W_per_mK"] == k
    assert t["perfusion_W_per_m3K"] == W
    assert t["arterial_temperature_C"] == 37.0
    assert t["metabolic_heat_W_per_m3"] == 0.0
    assert "IT'IS" in t["source"]


def test_tumour_default(lib):
    t = lib["tumour"]
    assert (t["density_kg_per_m3"], t["specific_heat_J_per_kgK"], t["conductivity_W_per_mK"], t["perfusion_W_per_m3K"]) == TUMOUR
    assert "Cancers 2019" in t["source"]


@pytest.mark.parametrize("name", [n for n, row in sorted(PHYSICS_TABLE.items()) if row[3] > 0])
def test_perfusion_coefficient_from_rate(lib, name):
    """W = rho_b c_b w reproduces the tabulated W within 1 % (the table's w has 3 digits)."""
    w = PHYSICS_TABLE[name][3]
    W = tissues.perfusion_coefficient(w)
    assert W == pytest.approx(BLOOD_RHO * BLOOD_C * w, rel=1e-12)
    assert W == pytest.approx(lib[name]["perfusion_W_per_m3K"], rel=0.01)


def test_perfusion_coefficient_examples():
    assert tissues.perfusion_coefficient(2.87e-3) == pytest.approx(10907, rel=0.01)  # spinal cord
    assert tissues.perfusion_coefficient(6.68e-4) == pytest.approx(2535, rel=0.01)  # muscle
    assert tissues.perfusion_coefficient(0.0) == 0.0
    assert tissues.BLOOD_DENSITY_KG_PER_M3 == BLOOD_RHO
    assert tissues.BLOOD_SPECIFIC_HEAT_J_PER_KGK == BLOOD_C


@pytest.mark.parametrize("alias, target", sorted(ALIASES.items()))
def test_aliases(lib, alias, target):
    assert lib[alias] == lib[target]


def test_names(lib):
    names = tissues.names()
    assert names == sorted(names)
    assert set(names) == set(PHYSICS_TABLE) | {"tumour"} | set(ALIASES)
    assert set(names) == set(lib)


def test_library_returns_fresh_copies():
    a = tissues.library()
    a["muscle"]["conductivity_W_per_mK"] = 99.0
    a["fat"]["density_kg_per_m3"] = 1.0
    b = tissues.library()
    assert b["muscle"]["conductivity_W_per_mK"] == 0.49
    assert b["fat"]["density_kg_per_m3"] == 911
    assert b["epidural_fat"]["density_kg_per_m3"] == 911


@pytest.mark.parametrize("name", sorted(PHYSICS_TABLE) + ["tumour"] + sorted(ALIASES))
def test_every_library_tissue_is_usable_in_a_case(lib, name):
    case = parse_case(
        {
            "name": "t",
            "geometry": {"kind": "sphere", "radius_m": 0.01, "mesh_size_m": 0.002},
            "regions": {"body": name},
        }
    )
    t = case.resolved_tissues()["body"]
    assert t.name == name
    assert t.conductivity_W_per_mK == lib[name]["conductivity_W_per_mK"]
    assert t.perfusion_W_per_m3K == lib[name]["perfusion_W_per_m3K"]
