"""Schema traps of issue 15 (no mesh): error paths name real keys (union tags read from the
models), parse_case reads schedule_csv like load_case and an unread CSV is refused, tumour
regions are declared, one catheter entry, one namer of the cavity surfaces, one home of the
errors."""

from __future__ import annotations

import copy
import math
import tomllib
from pathlib import Path

import pytest

from meshes import spine_dimensions as sd
from meshes.cavities import CatheterCavity, cavity_surface_names
from solver import case_errors
from solver.case_loader import load_case, parse_case
from solver.config import CATHETER_WITHOUT_ENTRY_LENGTH_M, Case, CaseError

ROOT = Path(__file__).resolve().parents[2]
T8 = ROOT / "cases" / "spine" / "T8_lytic_intact.toml"
LASER = ROOT / "cases" / "laser_980nm_15W_muscle.toml"
DEMO = ROOT / "cases" / "demo_tumour_heating.toml"


def toml(path: Path) -> dict:
    return tomllib.loads(path.read_text())


def refused(data: dict, case_dir=".") -> str:
    with pytest.raises(CaseError) as info:
        parse_case(data, case_dir=case_dir)
    return str(info.value)


# --------------------------------------------------------------------------- error paths


def test_an_error_in_a_spine_geometry_names_the_real_key():
    data = toml(T8)
    data["geometry"]["tip_size_m"] = -1.0
    msg = refused(data)
    assert "  geometry.tip_size_m = -1.0: Input should be greater than 0" in msg, msg
    assert "geometry.spine" not in msg


def test_unknown_keys_in_unions_name_the_path_and_the_allowed_keys():
    data = toml(T8)
    data["geometry"]["tip_size_mm"] = 0.001
    data["boundary"] = [{"surface": "outer", "type": "dirichlet", "temperature_c": 37.0}]
    msg = refused(data)
    assert "geometry.tip_size_mm = 0.001: unknown key (did you mean 'tip_size_m'?)" in msg, msg
    assert "boundary[0].temperature_c = 37.0: unknown key (did you mean 'temperature_C'?)" in msg, msg


def test_union_tags_come_from_the_models():
    loc = ("geometry", "spine", "tip_size_m")
    assert case_errors.key_path(loc, Case) == "geometry.tip_size_m"
    assert case_errors.key_path(("boundary", 2, "robin", "surface"), Case) == "boundary[2].surface"
    assert case_errors.key_path(("tissues", "spine", "base"), Case) == "tissues.spine.base"  # a dict key, not a tag
    assert case_errors.union_at(("geometry",), Case) == ["box", "sphere", "shell", "cylinder", "file", "spine"]
    assert case_errors.union_at(("source", 0), Case) == ["uniform", "point", "segment"]
    assert "cord_size_m" in case_errors.model_keys(("geometry", "spine"), Case)


def test_a_tissue_named_like_a_union_tag_keeps_its_name_in_messages():
    data = toml(DEMO)
    data["regions"]["tumour"] = "spine"
    data["tissues"] = {"spine": {"base": "muscle", "conductivity_W_per_mK": -1.0}}
    msg = refused(data)
    assert "tissues.spine.conductivity_W_per_mK = -1.0" in msg, msg


# --------------------------------------------------------------------------- schedule_csv


def _csv_case(tmp_path: Path, csv: str | None) -> dict:
    data = toml(LASER)
    ap = data["applicator"][0]
    del ap["schedule"]
    ap["schedule_csv"] = "power.csv"
    if csv is not None:
        (tmp_path / "power.csv").write_text(csv)
    return data


def test_parse_case_reads_schedule_csv_like_load_case(tmp_path):
    data = _csv_case(tmp_path, "time_s,power_W\n0,12\n60,0\n")
    before = copy.deepcopy(data)
    case = parse_case(data, case_dir=tmp_path)
    assert data == before  # the caller's tables are not changed
    assert case.applicator[0].schedule == [(0.0, 12.0), (60.0, 0.0)]
    assert case.applicator[0].energy_between(0.0, 120.0) == pytest.approx(720.0, rel=1e-14)
    import tomli_w

    (tmp_path / "case.toml").write_text(tomli_w.dumps(data))
    assert load_case(tmp_path / "case.toml").applicator[0].schedule == case.applicator[0].schedule


def test_parse_case_refuses_a_missing_schedule_csv(tmp_path):
    msg = refused(_csv_case(tmp_path, None), case_dir=tmp_path)
    assert "applicator[0].schedule_csv" in msg and "power.csv" in msg and "not found" in msg, msg


def test_a_schedule_csv_not_read_by_the_loader_is_refused_not_zero_watts(tmp_path):
    data = _csv_case(tmp_path, "time_s,power_W\n0,12\n60,0\n")
    data["case_dir"] = str(tmp_path)
    with pytest.raises(Exception) as info:  # pydantic's ValidationError: the model alone cannot read files
        Case.model_validate(data)
    assert "schedule_csv = 'power.csv' has not been read" in str(info.value)


# --------------------------------------------------------------------------- tumour regions


def test_tumour_regions_are_declared():
    spine = parse_case(toml(T8))
    assert spine.tumour_regions() == [t.name for t in spine.geometry.tumour] == ["tumour"]
    demo = toml(DEMO)
    assert parse_case(demo).tumour_regions() == ["tumour"]  # tissue 'tumour' of the library

    renamed = copy.deepcopy(demo)  # a region named like a tumour is not one by its name ...
    renamed["regions"]["tumour"] = "muscle"
    case = parse_case(renamed)
    assert case.tumour_regions() == []
    assert any("regions.tumour = 'muscle': not scored as tumour" in w for w in case.warnings())

    alias = copy.deepcopy(renamed)  # ... its tissue makes it one: alias, or [tissues.X] base
    alias["regions"]["tumour"] = "tumor"
    assert parse_case(alias).tumour_regions() == ["tumour"]
    based = copy.deepcopy(renamed)
    based["regions"] = {"body": "metastasis", "tumour": "muscle"}
    based["tissues"] = {"metastasis": {"base": "tumour", "perfusion_W_per_m3K": 0.0}}
    assert parse_case(based).tumour_regions() == ["body"]
    given = copy.deepcopy(renamed)
    given["damage"] = {"tumour_regions": ["tumour"]}
    case = parse_case(given)
    assert case.tumour_regions() == ["tumour"] and not any("not scored" in w for w in case.warnings())


# --------------------------------------------------------------------------- catheter entry


def test_one_catheter_entry_for_mesh_checks_and_distances():
    data = toml(LASER)
    ap = data["applicator"][0]
    for key in ("entry_m", "tip_end_m"):
        ap.pop(key, None)
    ap["tip_center_m"], ap["direction"] = [0.0, 0.0, 0.0], [0.0, 0.6, 0.8]
    ap["representation"] = "cavity"
    case = parse_case(data)
    a = case.applicator[0]
    end = a.tip_segment(a.home_tip_center_m)[1]
    entry = a.catheter_entry_m(end)
    assert CATHETER_WITHOUT_ENTRY_LENGTH_M == 1.0
    assert math.dist(entry, end) == pytest.approx(1.0, rel=1e-14)
    assert case.cavities()[0]["entry_m"] == entry  # the meshed cavity starts there
    given = parse_case(toml(LASER)).applicator[0]
    assert given.catheter_entry_m((9.0, 9.0, 9.0)) == given.entry_m


def test_bioheat_mesh_distances_use_the_catheter_entry():
    from solver.cli import _anatomy_distances

    data = toml(T8)
    case = parse_case(data)
    ap = case.applicator[0]
    end = ap.tip_segment(ap.home_tip_center_m)[1]
    d = sd.check_track(case.geometry, ap.catheter_entry_m(end), end, ap.catheter_radius_m, ap.tip_length_m)
    out = _anatomy_distances(case)
    assert out[f"catheter_{ap.name}@0_canal_clearance_m"] == d.canal_m
    assert out[f"tip_{ap.name}@0_to_dura_m"] == d.dura_m


# --------------------------------------------------------------------------- names, errors


def test_cavity_surfaces_are_named_in_one_place():
    assert cavity_surface_names("fibre") == ("fibre_tip", "fibre_shaft", "fibre")
    cav = CatheterCavity("fibre", (0, 0, -0.05), (0, 0, 0.005), 8e-4, 0.01)
    assert cav.surface_names == cavity_surface_names("fibre")


def test_errors_have_one_home():
    import solver.checkpoint as ck
    import solver.config as config
    import solver.errors as errors

    assert ck.RunInterrupted is errors.RunInterrupted
    assert config.CaseError is errors.CaseError and config.OutputError is errors.OutputError
    err = errors.RunInterrupted("SIGTERM", 3, 1.5, Path("x.checkpoint"), True)
    assert "stopped after step 3 (t = 1.5 s)" in str(err) and "--resume" in str(err)
