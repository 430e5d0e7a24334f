"""Case schema (solver.config): the shipped cases validate, defaults and tissue resolution,
the case hash, power schedules, and every rejected input names key, value and what is allowed.

No mesh is built here: validation happens before any FEM work.
"""

from __future__ import annotations

import copy
import math
import tomllib
from pathlib import Path

import pytest

from solver import tissues as tissue_library
from solver.config import CaseError, PointSource
from solver.case_loader import load_case, parse_case

ROOT = Path(__file__).resolve().parents[2]
CASE_FILES = sorted((ROOT / "cases").glob("*.toml")) + sorted((ROOT / "cases" / "verification").glob("*.toml"))
SLAB = ROOT / "cases" / "verification" / "slab_steady.toml"
TRANSIENT = ROOT / "cases" / "verification" / "uniform_source_transient.toml"

# library numbers (docs/MODEL.md section 4, IT'IS v4.x) used below
MUSCLE = dict(rho=1090.0, c=3421.0, k=0.49, W=2535.0)
CANCELLOUS = dict(rho=1178.0, c=2274.0, k=0.31, W=2237.0)


def _load(path: Path) -> dict:
    with open(path, "rb") as fh:
        return tomllib.load(fh)


@pytest.fixture
def slab() -> dict:
    """The slab verification case as a plain dict (box 40 x 4 x 4 mm, muscle, 3 probes)."""
    return _load(SLAB)


def _box_case(**geometry) -> dict:
    return {
        "name": "t",
        "geometry": {"kind": "box", "lower_m": [0, 0, 0], "upper_m": [0.01, 0.01, 0.01], "mesh_size_m": 0.002, **geometry},
        "regions": {"body": "muscle"},
    }


def _geometry_case(geometry: dict) -> dict:
    return {"name": "t", "geometry": {"mesh_size_m": 0.002, **geometry}, "regions": {"body": "muscle"}}


def case_error(data: dict, *fragments: str) -> str:
    """parse_case must raise CaseError whose message contains every fragment."""
    with pytest.raises(CaseError) as info:
        parse_case(data)
    msg = str(info.value)
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in CaseError message:\n{msg}"
    return msg


# --------------------------------------------------------------------------- shipped cases


def test_case_files_exist():
    names = {p.name for p in CASE_FILES}
    assert {"slab_steady.toml", "uniform_source_transient.toml"} <= names
    assert len(CASE_FILES) >= 5


@pytest.mark.parametrize("path", CASE_FILES, ids=[p.name for p in CASE_FILES])
def test_every_case_file_validates(path):
    case = load_case(path)
    assert case.name
    assert Path(case.case_dir) == path.resolve().parent
    # every region of the geometry resolves to a complete tissue
    for region, t in case.resolved_tissues().items():
        assert t.density_kg_per_m3 > 0 and t.specific_heat_J_per_kgK > 0 and t.conductivity_W_per_mK > 0
        assert t.perfusion_W_per_m3K >= 0


# --------------------------------------------------------------------------- defaults


def test_defaults_are_filled(slab):
    case = parse_case(slab)
    assert case.time.mode == "steady"  # given
    assert case.time.scheme == "backward_euler"
    assert case.time.dt_s == 1.0 and case.time.end_time_s == 60.0
    assert case.time.output_interval_s is None
    assert case.solver.element_degree == 1
    assert case.solver.ksp_type == "cg" and case.solver.pc_type is None
    assert case.solver.rtol == 1e-12  # given
    assert case.initial.temperature_C == 37.0
    assert case.geometry.region == "body"
    assert case.output.fields is True and case.output.field_format == "vtx"
    assert case.source == [] and case.manufactured is None
    resolved = case.resolved_dict()
    assert resolved["time"]["scheme"] == "backward_euler"
    assert resolved["initial"]["temperature_C"] == 37.0
    assert resolved["solver"]["element_degree"] == 1


def test_transient_defaults(slab):
    data = copy.deepcopy(slab)
    del data["time"]
    case = parse_case(data)
    assert case.time.mode == "transient"
    assert case.time.num_steps == 60


# --------------------------------------------------------------------------- tissues


def test_library_tissue_resolves_to_itis_numbers(slab):
    t = parse_case(slab).resolved_tissues()["body"]
    assert t.name == "muscle"
    assert (t.density_kg_per_m3, t.specific_heat_J_per_kgK, t.conductivity_W_per_mK, t.perfusion_W_per_m3K) == (
        MUSCLE["rho"], MUSCLE["c"], MUSCLE["k"], MUSCLE["W"]
    )
    assert t.arterial_temperature_C == 37.0 and t.metabolic_heat_W_per_m3 == 0.0
    assert "IT'IS" in t.source
    assert t.volumetric_heat_capacity_J_per_m3K == pytest.approx(1090.0 * 3421.0)


def test_override_one_property_keeps_the_library_rest(slab):
    data = copy.deepcopy(slab)
    data["tissues"] = {"muscle": {"conductivity_W_per_mK": 0.6}}
    t = parse_case(data).resolved_tissues()["body"]
    assert t.conductivity_W_per_mK == 0.6
    assert t.density_kg_per_m3 == MUSCLE["rho"]
    assert t.specific_heat_J_per_kgK == MUSCLE["c"]
    assert t.perfusion_W_per_m3K == MUSCLE["W"]
    assert t.arterial_temperature_C == 37.0
    # the library itself is untouched
    assert tissue_library.library()["muscle"]["conductivity_W_per_mK"] == 0.49


def test_new_tissue_from_base(slab):
    data = copy.deepcopy(slab)
    data["regions"] = {"body": "blastic_met"}
    data["tissues"] = {"blastic_met": {"base": "cancellous_bone", "perfusion_W_per_m3K": 0.0}}
    t = parse_case(data).resolved_tissues()["body"]
    assert t.name == "blastic_met"
    assert t.density_kg_per_m3 == CANCELLOUS["rho"]
    assert t.specific_heat_J_per_kgK == CANCELLOUS["c"]
    assert t.conductivity_W_per_mK == CANCELLOUS["k"]
    assert t.perfusion_W_per_m3K == 0.0  # overridden; the library says 2237


def test_new_tissue_without_base_gets_zero_perfusion_and_37C(slab):
    data = copy.deepcopy(slab)
    data["regions"] = {"body": "gel"}
    data["tissues"] = {"gel": {"density_kg_per_m3": 1000.0, "specific_heat_J_per_kgK": 4000.0, "conductivity_W_per_mK": 0.6}}
    t = parse_case(data).resolved_tissues()["body"]
    assert (t.density_kg_per_m3, t.specific_heat_J_per_kgK, t.conductivity_W_per_mK) == (1000.0, 4000.0, 0.6)
    assert t.perfusion_W_per_m3K == 0.0 and t.arterial_temperature_C == 37.0 and t.metabolic_heat_W_per_m3 == 0.0


@pytest.mark.parametrize(
    "given, missing",
    [
        ({"density_kg_per_m3": 1000.0, "specific_heat_J_per_kgK": 4000.0}, "conductivity_W_per_mK"),
        ({"conductivity_W_per_mK": 0.5, "specific_heat_J_per_kgK": 4000.0}, "density_kg_per_m3"),
        ({"conductivity_W_per_mK": 0.5, "density_kg_per_m3": 1000.0}, "specific_heat_J_per_kgK"),
    ],
)
def test_new_tissue_without_base_missing_key(slab, given, missing):
    data = copy.deepcopy(slab)
    data["regions"] = {"body": "gel"}
    data["tissues"] = {"gel": given}
    msg = case_error(data, "tissues.gel", missing, "base")
    for present in given:
        assert present not in msg.split("needs", 1)[1]


def test_unknown_base_rejected(slab):
    data = copy.deepcopy(slab)
    data["tissues"] = {"gel": {"base": "bone"}}
    case_error(data, "tissues.gel.base", "'bone'", "unknown library tissue", "'cancellous_bone'", "'cortical_bone'")


@pytest.mark.parametrize(
    "key, value, allowed",
    [
        ("conductivity_W_per_mK", -0.5, "greater than 0"),
        ("conductivity_W_per_mK", 0.0, "greater than 0"),
        ("density_kg_per_m3", 0.0, "greater than 0"),
        ("specific_heat_J_per_kgK", -1.0, "greater than 0"),
        ("perfusion_W_per_m3K", -10.0, "greater than or equal to 0"),
        ("arterial_temperature_C", 137.0, "less than or equal to 100"),
    ],
)
def test_bad_tissue_value(slab, key, value, allowed):
    data = copy.deepcopy(slab)
    data["tissues"] = {"muscle": {key: value}}
    case_error(data, f"tissues.muscle.{key} = {value!r}", allowed)


def test_unknown_tissue_lists_the_library(slab):
    data = copy.deepcopy(slab)
    data["regions"] = {"body": "muscel"}
    case_error(data, "regions.body = 'muscel'", "unknown tissue", "'muscle'", "'spinal_cord'")


def test_unknown_tissue_key_rejected(slab):
    data = copy.deepcopy(slab)
    data["tissues"] = {"muscle": {"conductivity": 0.5}}
    case_error(data, "tissues.muscle.conductivity = 0.5", "unknown key")


# --------------------------------------------------------------------------- hash


def test_hash_is_stable(slab):
    h = parse_case(slab).hash()
    assert len(h) == 64
    assert parse_case(copy.deepcopy(slab)).hash() == h
    assert load_case(SLAB).hash() == h  # case_dir differs, hash does not
    # writing a default explicitly, or a library value as an override, is the same case
    data = copy.deepcopy(slab)
    data["time"]["scheme"] = "backward_euler"
    data["initial"] = {"temperature_C": 37.0}
    data["tissues"] = {"muscle": {"conductivity_W_per_mK": 0.49}}
    assert parse_case(data).hash() == h


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["geometry"].update(mesh_size_m=0.0015),
        lambda d: d["boundary"][0].update(temperature_C=47.5),
        lambda d: d["probe"][0].update(position_m=[0.006, 0.002, 0.002]),
        lambda d: d["solver"].update(rtol=1e-11),
        lambda d: d.update(tissues={"muscle": {"perfusion_W_per_m3K": 2500.0}}),
        lambda d: d.update(name="another_name"),
    ],
    ids=["mesh_size", "dirichlet", "probe", "rtol", "tissue", "name"],
)
def test_hash_changes_with_a_value(slab, change):
    data = copy.deepcopy(slab)
    change(data)
    assert parse_case(data).hash() != parse_case(slab).hash()


# --------------------------------------------------------------------------- power schedules


def _point(**power) -> PointSource:
    return PointSource.model_validate({"type": "point", "position_m": [0, 0, 0], **power})


def test_constant_power():
    src = _point(power_W=2.5)
    assert [src.power_at(t) for t in (-1.0, 0.0, 7.0, 1e6)] == [2.5] * 4


def test_linear_schedule():
    src = _point(schedule=[[10.0, 1.0], [20.0, 3.0], [40.0, 0.0]])
    assert src.interpolation == "linear"
    assert src.power_at(10.0) == pytest.approx(1.0)
    assert src.power_at(15.0) == pytest.approx(2.0)
    assert src.power_at(20.0) == pytest.approx(3.0)
    assert src.power_at(30.0) == pytest.approx(1.5)
    assert src.power_at(40.0) == pytest.approx(0.0)
    # beyond the ends the end values hold
    assert src.power_at(0.0) == pytest.approx(1.0)
    assert src.power_at(100.0) == pytest.approx(0.0)


def test_linear_schedule_holds_last_value():
    src = _point(schedule=[[0.0, 0.0], [60.0, 6.0]])
    assert src.power_at(30.0) == pytest.approx(3.0)
    assert src.power_at(60.0) == pytest.approx(6.0)
    assert src.power_at(1000.0) == pytest.approx(6.0)


def test_step_schedule():
    src = _point(schedule=[[0.0, 5.0], [30.0, 0.0], [60.0, 2.0]], interpolation="step")
    assert src.power_at(0.0) == 5.0
    assert src.power_at(29.999) == 5.0
    assert src.power_at(30.0) == 0.0
    assert src.power_at(45.0) == 0.0
    assert src.power_at(60.0) == 2.0
    assert src.power_at(600.0) == 2.0  # beyond the end: the last value holds


@pytest.mark.parametrize("schedule", [[[0.0, 1.0], [10.0, 2.0], [5.0, 3.0]], [[0.0, 1.0], [10.0, 2.0], [10.0, 3.0]]])
def test_non_monotone_schedule_rejected(slab, schedule):
    data = copy.deepcopy(slab)
    data["source"] = [{"type": "point", "position_m": [0.01, 0.002, 0.002], "schedule": schedule}]
    times = [t for t, _ in schedule]
    case_error(data, "source[0].schedule", str(times), "increase strictly")


def test_negative_power_rejected(slab):
    data = copy.deepcopy(slab)
    data["source"] = [{"type": "point", "position_m": [0.01, 0.002, 0.002], "power_W": -1.0}]
    case_error(data, "source[0].power_W = -1.0", "greater than or equal to 0")
    data["source"] = [{"type": "point", "position_m": [0.01, 0.002, 0.002], "schedule": [[0.0, 1.0], [10.0, -2.0]]}]
    case_error(data, "source[0].schedule[1]", "-2.0", ">= 0 W")


def test_power_and_schedule_exclusive(slab):
    data = copy.deepcopy(slab)
    data["source"] = [{"type": "point", "position_m": [0.01, 0.002, 0.002], "power_W": 1.0, "schedule": [[0.0, 1.0]]}]
    case_error(data, "source[0]", "exactly one of power_W or schedule")
    data["source"] = [{"type": "point", "position_m": [0.01, 0.002, 0.002]}]
    case_error(data, "source[0]", "exactly one of power_W or schedule")


# --------------------------------------------------------------------------- geometry


@pytest.mark.parametrize("upper", [[0.0, 0.004, 0.004], [0.04, -0.001, 0.004]])
def test_box_upper_not_above_lower_rejected(slab, upper):
    data = copy.deepcopy(slab)
    data["geometry"]["upper_m"] = upper
    case_error(data, f"geometry.upper_m = {upper}", "must exceed lower_m = [0.0, 0.0, 0.0]")


@pytest.mark.parametrize("inner", [0.01, 0.02])
def test_shell_inner_not_below_outer_rejected(inner):
    data = _geometry_case({"kind": "shell", "outer_radius_m": 0.01, "inner_radius_m": inner})
    case_error(data, f"geometry.inner_radius_m = {inner}", "smaller than outer_radius_m = 0.01")


def test_inclusion_outside_rejected(slab):
    data = copy.deepcopy(slab)
    data["geometry"]["inclusion"] = [{"name": "tumour", "center_m": [0.1, 0.0, 0.0], "radius_m": 0.001}]
    data["regions"]["tumour"] = "tumour"
    case_error(
        data,
        "geometry.inclusion[0].center_m = [0.1, 0.0, 0.0]",
        "inside the box from lower_m = [0.0, 0.0, 0.0] to upper_m = [0.04, 0.004, 0.004]",
    )


def test_box_inclusion_poking_out_rejected():
    data = _box_case(inclusion=[{"name": "t", "shape": "box", "center_m": [0.005, 0.005, 0.005], "size_m": [0.004, 0.004, 0.012]}])
    data["regions"]["t"] = "tumour"
    case_error(data, "geometry.inclusion[0].center_m = [0.005, 0.005, 0.005]", "must lie inside")


def test_inclusion_inside_accepted():
    data = _box_case(inclusion=[{"name": "t", "center_m": [0.005, 0.005, 0.005], "radius_m": 0.002}])
    data["regions"]["t"] = "tumour"
    case = parse_case(data)
    assert case.geometry.region_names() == ["body", "t"]
    assert case.resolved_tissues()["t"].perfusion_W_per_m3K == 22545.0


def test_refinement_larger_than_mesh_size_rejected(slab):
    data = copy.deepcopy(slab)
    data["geometry"]["refinement"] = [{"point_m": [0.0, 0.0, 0.0], "size_m": 0.01, "distance_m": 0.01}]
    case_error(data, "geometry.refinement[0].size_m = 0.01", "<= mesh_size_m = 0.002")


def test_refinement_needs_one_target(slab):
    data = copy.deepcopy(slab)
    data["geometry"]["refinement"] = [{"size_m": 0.001, "distance_m": 0.01}]
    case_error(data, "geometry.refinement[0]", "point_m", "segment_start_m")


def test_negative_mesh_size_rejected(slab):
    data = copy.deepcopy(slab)
    data["geometry"]["mesh_size_m"] = -0.002
    case_error(data, "geometry.mesh_size_m = -0.002", "greater than 0")


def test_unknown_geometry_kind_rejected(slab):
    data = copy.deepcopy(slab)
    data["geometry"]["kind"] = "cube"
    case_error(data, "geometry", "'cube'", "'box'", "'sphere'")


# --------------------------------------------------------------------------- probes and sources


def test_duplicate_probe_name_rejected(slab):
    data = copy.deepcopy(slab)
    data["probe"].append({"name": "x10mm", "position_m": [0.03, 0.002, 0.002]})
    case_error(data, "probe[3].name = 'x10mm'", "used twice")


def test_probe_name_pattern(slab):
    data = copy.deepcopy(slab)
    data["probe"][0]["name"] = "x 5mm"
    case_error(data, "probe[0].name = 'x 5mm'", "pattern")


OUTSIDE = [
    ("box", {"kind": "box", "lower_m": [0, 0, 0], "upper_m": [0.01, 0.02, 0.03]}, [0.005, 0.021, 0.01],
     "box from lower_m = [0.0, 0.0, 0.0] to upper_m = [0.01, 0.02, 0.03] m"),
    ("sphere", {"kind": "sphere", "radius_m": 0.01, "center_m": [0.0, 0.0, 0.01]}, [0.0, 0.0, -0.0005],
     "sphere of radius_m = 0.01 around center_m = [0.0, 0.0, 0.01] m"),
    ("cylinder_radial", {"kind": "cylinder", "radius_m": 0.005, "length_m": 0.02}, [0.004, 0.004, 0.0],
     "cylinder of radius_m = 0.005, length_m = 0.02"),
    ("cylinder_axial", {"kind": "cylinder", "radius_m": 0.005, "length_m": 0.02, "axis": [1, 0, 0]}, [0.0105, 0.0, 0.0],
     "cylinder of radius_m = 0.005, length_m = 0.02"),
    ("shell_cavity", {"kind": "shell", "outer_radius_m": 0.02, "inner_radius_m": 0.005}, [0.004, 0.0, 0.0],
     "shell between inner_radius_m = 0.005 and outer_radius_m = 0.02"),
    ("shell_outside", {"kind": "shell", "outer_radius_m": 0.02, "inner_radius_m": 0.005}, [0.0, 0.0, 0.021],
     "shell between inner_radius_m = 0.005 and outer_radius_m = 0.02"),
]


@pytest.mark.parametrize("geometry, point, extent", [o[1:] for o in OUTSIDE], ids=[o[0] for o in OUTSIDE])
def test_probe_outside_rejected(geometry, point, extent):
    data = _geometry_case(geometry)
    data["probe"] = [{"name": "p", "position_m": point}]
    case_error(data, f"probe[0].position_m = {point}", "('p')", "lies outside", f"allowed: inside the {extent}")


@pytest.mark.parametrize("geometry, point, extent", [o[1:] for o in OUTSIDE], ids=[o[0] for o in OUTSIDE])
def test_point_source_outside_rejected(geometry, point, extent):
    data = _geometry_case(geometry)
    data["source"] = [{"type": "point", "position_m": point, "power_W": 1.0}]
    case_error(data, f"source[0].position_m = {point}", "lies outside", f"allowed: inside the {extent}")


def test_segment_end_outside_rejected(slab):
    data = copy.deepcopy(slab)
    data["source"] = [{"type": "segment", "start_m": [0.01, 0.002, 0.002], "end_m": [0.01, 0.002, 0.005], "power_W": 1.0}]
    case_error(data, "source[0].end_m = [0.01, 0.002, 0.005]", "lies outside", "upper_m = [0.04, 0.004, 0.004]")


@pytest.mark.parametrize(
    "geometry, point",
    [
        ({"kind": "box", "lower_m": [0, 0, 0], "upper_m": [0.01, 0.02, 0.03]}, [0.01, 0.02, 0.0]),
        ({"kind": "sphere", "radius_m": 0.01}, [0.0, 0.01, 0.0]),
        ({"kind": "shell", "outer_radius_m": 0.02, "inner_radius_m": 0.005}, [0.005, 0.0, 0.0]),
        ({"kind": "cylinder", "radius_m": 0.005, "length_m": 0.02}, [0.005, 0.0, -0.01]),
    ],
    ids=["box_corner", "sphere_surface", "shell_inner_surface", "cylinder_rim"],
)
def test_probe_on_the_boundary_accepted(geometry, point):
    data = _geometry_case(geometry)
    data["probe"] = [{"name": "p", "position_m": point}]
    data["source"] = [{"type": "point", "position_m": point, "power_W": 1.0}]
    assert parse_case(data).probe[0].position_m == tuple(point)


def test_unknown_surface_rejected(slab):
    data = copy.deepcopy(slab)
    data["boundary"][0]["surface"] = "left"
    case_error(data, "boundary[0].surface = 'left'", "unknown surface", "['xmin', 'xmax', 'ymin', 'ymax', 'zmin', 'zmax', 'outer']")


def test_unknown_surface_in_list_rejected():
    data = _geometry_case({"kind": "shell", "outer_radius_m": 0.02, "inner_radius_m": 0.005})
    data["boundary"] = [{"type": "dirichlet", "surface": ["outer", "xmin"], "temperature_C": 37.0}]
    case_error(data, "boundary[0].surface = 'xmin'", "['outer', 'inner']")


def test_uniform_source_unknown_region_rejected():
    data = _load(TRANSIENT)
    data["source"][0]["region"] = "tumour"
    case_error(data, "source[0].region = 'tumour'", "unknown region", "['body']")


def test_uniform_source_density_and_power_exclusive():
    data = _load(TRANSIENT)
    data["source"][0]["power_W"] = 1.0
    case_error(data, "source[0]", "not both")


# --------------------------------------------------------------------------- regions, time, keys


def test_geometry_region_without_tissue_rejected(slab):
    data = copy.deepcopy(slab)
    data["geometry"]["inclusion"] = [{"name": "tumour", "center_m": [0.02, 0.002, 0.002], "radius_m": 0.001}]
    case_error(data, "regions.tumour", "'tumour' has no tissue", "['body', 'tumour']")


def test_region_not_in_geometry_rejected(slab):
    data = copy.deepcopy(slab)
    data["regions"]["vertebra"] = "cortical_bone"
    case_error(data, "regions.vertebra", "no region 'vertebra'", "['body']")


@pytest.mark.parametrize("dt", [0.0, -20.0])
def test_bad_dt_rejected(dt):
    data = _load(TRANSIENT)
    data["time"]["dt_s"] = dt
    case_error(data, f"time.dt_s = {dt!r}", "greater than 0")


def test_dt_longer_than_end_time_rejected():
    data = _load(TRANSIENT)
    data["time"]["dt_s"] = 700.0
    case_error(data, "time.dt_s = 700.0", "<= end_time_s = 600.0")


def test_unknown_scheme_rejected():
    data = _load(TRANSIENT)
    data["time"]["scheme"] = "rk4"
    case_error(data, "time.scheme = 'rk4'", "'backward_euler'", "'crank_nicolson'")


def test_typo_key_rejected(slab):
    data = copy.deepcopy(slab)
    data["geometry"]["mesh_sise_m"] = data["geometry"].pop("mesh_size_m")
    case_error(data, "geometry.mesh_sise_m = 0.002", "unknown key", "geometry.mesh_size_m", "required")


def test_top_level_unknown_key_rejected(slab):
    data = copy.deepcopy(slab)
    data["probes"] = data.pop("probe")
    case_error(data, "probes", "unknown key")


def test_load_case_errors(tmp_path):
    with pytest.raises(CaseError, match="not found"):
        load_case(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("name = 'x'\n[geometry\n")
    with pytest.raises(CaseError, match="not valid TOML"):
        load_case(bad)


def test_errors_name_the_file(tmp_path, slab):
    text = SLAB.read_text().replace("mesh_size_m = 0.002", "mesh_size_m = 0.0")
    path = tmp_path / "slab.toml"
    path.write_text(text)
    with pytest.raises(CaseError) as info:
        load_case(path)
    assert str(path) in str(info.value)
    assert "geometry.mesh_size_m = 0.0" in str(info.value)


def test_steady_case_ignores_transient_limits(slab):
    # dt_s > end_time_s only matters for transient cases
    data = copy.deepcopy(slab)
    data["time"].update(dt_s=100.0, end_time_s=10.0)
    assert math.isclose(parse_case(data).time.dt_s, 100.0)


@pytest.mark.parametrize("rtol, ok", [(1e-6, True), (1e-8, True), (1e-5, False), (1e-2, False), (0.5, False)])
def test_solver_rtol_at_most_1e_6(rtol, ok):
    """A loose Krylov tolerance accepts a step's initial guess unchanged (T8 at rtol 0.5: never
    heated, PASS): refused before any work, naming the key, the value and the bound."""
    data = _load(ROOT / "cases" / "spine" / "T8_lytic_intact.toml")
    data.setdefault("solver", {})["rtol"] = rtol
    if ok:
        assert parse_case(data).solver.rtol == rtol
    else:
        with pytest.raises(CaseError, match=r"solver\.rtol = .*less than or equal to 0\.000001"):
            parse_case(data)
