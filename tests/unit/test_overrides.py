"""`--set KEY=VALUE` overrides (solver.overrides, load_case, the CLI): dotted paths with list
indices reach every kind of key, values are TOML, and a bad path or value is refused naming it,
exactly as the same value typed into the file would be. No mesh is built here."""

from __future__ import annotations

from pathlib import Path

import pytest

from solver.cli import main
from solver.config import CaseError
from solver.case_loader import load_case
from solver.overrides import OverrideError, apply_overrides, parse_path, parse_value

ROOT = Path(__file__).resolve().parents[2]
T8 = ROOT / "cases" / "spine" / "T8_lytic_intact.toml"
SLAB = ROOT / "cases" / "verification" / "slab_steady.toml"


def test_parse_path_and_value():
    assert parse_path("geometry.tumour[0].center_m[1]") == ["geometry", "tumour", 0, "center_m", 1]
    assert parse_path("applicator[0].power_W") == ["applicator", 0, "power_W"]
    assert parse_value("8") == 8 and parse_value("8.5") == 8.5 and parse_value("true") is True
    assert parse_value("[1, 2.5]") == [1, 2.5]
    assert parse_value("kernel") == "kernel" and parse_value('"kernel"') == "kernel"
    for bad in ("", "a..b", "a[x]", "1a", "a.[0]"):
        with pytest.raises(OverrideError):
            parse_path(bad)


def test_apply_overrides_copies_and_creates_tables():
    data = {"applicator": [{"power_W": 6.0}], "geometry": {"tumour": [{"center_m": [0.0, 0.005, 0.0]}]}}
    out = apply_overrides(
        data,
        [
            "applicator[0].power_W=8",
            "geometry.tumour[0].center_m[1]=0.006",
            "tissues.epidural_fat.conductivity_W_per_mK=0.49",
        ],
    )
    assert out["applicator"][0]["power_W"] == 8
    assert out["geometry"]["tumour"][0]["center_m"] == [0.0, 0.006, 0.0]
    assert out["tissues"] == {"epidural_fat": {"conductivity_W_per_mK": 0.49}}
    assert data["applicator"][0]["power_W"] == 6.0  # the input is not modified


@pytest.mark.parametrize(
    "item, words",
    [
        ("applicator[3].power_W=8", ["applicator", "1 entry", "no index 3"]),
        ("geometry.tumour[0].center_m[5]=1", ["center_m", "3 entries", "no index 5"]),
        ("applicator.power_W=8", ["applicator", "not a table"]),
        ("probe[0].name=x", ["probe", "not in the case"]),
        ("power_W", ["expected KEY=VALUE"]),
    ],
)
def test_bad_overrides_name_the_path(item, words):
    data = {"applicator": [{"power_W": 6.0}], "geometry": {"tumour": [{"center_m": [0.0, 0.005, 0.0]}]}}
    with pytest.raises(OverrideError) as err:
        apply_overrides(data, [item])
    for w in words:
        assert w in str(err.value)


def test_load_case_applies_overrides_before_validation():
    base = load_case(T8)
    case = load_case(T8, ["applicator[0].schedule=[[0, 8.0], [120, 0]]", "geometry.tumour[0].center_m[1]=0.006"])
    assert case.applicator[0].schedule[0][1] == 8.0
    assert case.geometry.tumour[0].center_m[1] == pytest.approx(0.006)
    assert case.hash() != base.hash()  # the resolved case (and so its hash) carries the override
    # an override is validated like the file: a negative power is refused naming the key
    with pytest.raises(CaseError) as err:
        load_case(T8, ["applicator[0].schedule=[[0, -1.0], [120, 0]]"])
    assert "applicator[0].schedule" in str(err.value)
    # the T8 applicator has a schedule: adding power_W is refused as in the file
    with pytest.raises(CaseError) as err:
        load_case(T8, ["applicator[0].power_W=8"])
    assert "applicator[0]" in str(err.value) and "power_W or schedule" in str(err.value)
    with pytest.raises(CaseError) as err:
        load_case(T8, ["light.model=laser_beam"])
    assert "light.model" in str(err.value) and "laser_beam" in str(err.value)


def test_cli_validate_with_set(capsys):
    assert main(["validate", str(SLAB), "--set", "time.mode=steady"]) == 0
    assert main(["validate", str(SLAB), "--set", "geometry.mesh_size_m=-0.001"]) == 2
    err = capsys.readouterr().err
    assert "geometry.mesh_size_m" in err
    assert main(["validate", str(SLAB), "--set", "probe[99].name=x"]) == 2
    assert "no index 99" in capsys.readouterr().err


def test_override_of_an_unused_or_misspelt_tissue_is_refused():
    """A --set on a tissue no region uses would change nothing (a silent no-op with a new hash)."""
    laser = ROOT / "cases" / "laser_980nm_15W_muscle.toml"
    with pytest.raises(CaseError) as err:
        load_case(laser, ["tissues.muscel.base=muscle"])
    assert "tissues.muscel: no region uses this tissue (did you mean 'muscle'?)" in str(err.value)
    with pytest.raises(CaseError, match="tissues.epidural_fat: no region uses this tissue"):
        load_case(laser, ["tissues.epidural_fat.conductivity_W_per_mK=0.5"])
    assert load_case(laser, ["tissues.muscle.conductivity_W_per_mK=0.5"]).resolved_tissues()["body"].conductivity_W_per_mK == 0.5


def test_misspelt_list_key_gets_a_suggestion():
    with pytest.raises(CaseError, match=r"aplicator is not in the case \(did you mean 'applicator'\?\)"):
        load_case(ROOT / "cases" / "laser_980nm_15W_muscle.toml", ["aplicator[0].power_W=5"])
