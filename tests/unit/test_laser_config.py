"""Laser applicators in case files (no mesh): the demo case validates; bad applicator, light
and coagulation inputs raise CaseError naming the key, the value and what is allowed;
schedule_csv is read into the schedule; pull-back windows, energies and cavities."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest
import tomli_w

from solver.config import CaseError
from solver.case_loader import load_case, parse_case

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "cases" / "laser_980nm_15W_muscle.toml"


@pytest.fixture(scope="module")
def demo_data() -> dict:
    with open(DEMO, "rb") as fh:
        return tomllib.load(fh)


@pytest.fixture
def data(demo_data) -> dict:
    return copy.deepcopy(demo_data)


def by_centre(d: dict, centre, direction=(0.0, 0.0, 1.0)) -> dict:
    """Switch the demo applicator from entry_m/tip_end_m to tip_center_m/direction."""
    ap = d["applicator"][0]
    ap.pop("entry_m", None)
    ap.pop("tip_end_m", None)
    ap["tip_center_m"] = list(centre)
    ap["direction"] = list(direction)
    return ap


def rejected(d: dict, *fragments: str) -> str:
    with pytest.raises(CaseError) as info:
        parse_case(d, source="laser.toml")
    msg = str(info.value)
    for f in fragments:
        assert f in msg, f"{f!r} not in:\n{msg}"
    return msg


# --------------------------------------------------------------------------- good input


def test_demo_case_validates():
    case = load_case(DEMO)
    assert case.light.model == "diffusion" and case.light.wavelength_nm == 980
    (ap,) = case.applicator
    assert ap.representation == "cavity" and ap.interpolation == "step"
    assert ap.axis == pytest.approx((0.0, 0.0, 1.0))
    # tip centre half a tip length behind the distal end
    assert ap.home_tip_center_m == pytest.approx((0.0, 0.0, 0.0))
    assert ap.power_at(0.0) == 15.0 and ap.power_at(119.9) == 15.0 and ap.power_at(120.0) == 0.0
    assert ap.energy_between(0.0, 180.0) == pytest.approx(15.0 * 120.0, rel=1e-14)
    # muscle has a 980 nm entry in the optical table: the resolved tissue carries it
    body = case.resolved_tissues()["body"]
    assert body.absorption_per_m == pytest.approx(49.0) and body.reduced_scattering_per_m == pytest.approx(580.0)


def test_explicit_optics_for_a_tissue_without_table_entry(data):
    data["regions"] = {"body": "cancellous_bone"}
    data["tissues"] = {"cancellous_bone": {"absorption_per_m": 30.0, "reduced_scattering_per_m": 1500.0}}
    case = parse_case(data)
    t = case.resolved_tissues()["body"]
    assert (t.absorption_per_m, t.reduced_scattering_per_m) == (30.0, 1500.0)


# --------------------------------------------------------------------------- bad input


def test_tip_poking_out_of_the_sphere(data):
    # radius 40 mm; tip 10 mm long centred at z = 37 mm: distal end at 42 mm
    by_centre(data, (0.0, 0.0, 0.037))
    rejected(data, "applicator[0].tip", "distal end", "0.042", "outside the sphere",
             "allowed: sphere of radius_m = 0.04")


def test_tip_end_outside_with_entry_and_tip_end(data):
    data["applicator"][0]["tip_end_m"] = [0.0, 0.0, 0.045]
    rejected(data, "applicator[0]", "distal end", "0.045", "radius_m = 0.04")


def test_pull_back_position_outside(data):
    data["applicator"][0]["position"] = [
        {"start_s": 0.0, "tip_center_m": [0.0, 0.0, 0.0]},
        {"start_s": 60.0, "tip_center_m": [0.0, 0.0, -0.05]},
    ]
    rejected(data, "applicator[0].position[1].tip_center_m", "proximal end", "-0.055",
             "allowed: sphere of radius_m = 0.04")


def test_negative_power(data):
    ap = data["applicator"][0]
    del ap["schedule"]
    ap["power_W"] = -1.0
    rejected(data, "applicator[0].power_W", "-1.0", "greater than or equal to 0")


def test_negative_power_in_schedule(data):
    data["applicator"][0]["schedule"] = [[0.0, 15.0], [60.0, -2.0], [120.0, 0.0]]
    rejected(data, "applicator[0].schedule[1]", "-2.0", "power must be >= 0 W")


@pytest.mark.parametrize("schedule", [[[0.0, 15.0], [60.0, 5.0], [60.0, 0.0]], [[0.0, 15.0], [60.0, 5.0], [30.0, 0.0]]])
def test_schedule_times_not_increasing(data, schedule):
    data["applicator"][0]["schedule"] = schedule
    rejected(data, "applicator[0].schedule", str(schedule[2][0]), "must increase strictly")


def test_pull_back_start_not_increasing(data):
    data["applicator"][0]["position"] = [
        {"start_s": 0.0, "tip_center_m": [0.0, 0.0, 0.0]},
        {"start_s": 60.0, "tip_center_m": [0.0, 0.0, -0.004]},
        {"start_s": 30.0, "tip_center_m": [0.0, 0.0, -0.008]},
    ]
    rejected(data, "applicator[0]", "start_s", "[0.0, 60.0, 30.0]", "increase strictly")


def test_negative_pull_back_start(data):
    data["applicator"][0]["position"] = [{"start_s": -5.0, "tip_center_m": [0.0, 0.0, 0.0]}]
    rejected(data, "applicator[0].position[0].start_s", "-5.0", "greater than or equal to 0")


def test_region_without_optical_data(data):
    data["regions"] = {"body": "red_marrow"}
    msg = rejected(data, "tissues.red_marrow", "980 nm", "'body'", "absorption_per_m",
                   "reduced_scattering_per_m")
    assert "muscle" in msg  # what the table has


def test_region_with_only_absorption_given(data):
    data["regions"] = {"body": "red_marrow"}
    data["tissues"] = {"red_marrow": {"absorption_per_m": 30.0}}
    rejected(data, "tissues.red_marrow", "absorption_per_m", "reduced_scattering_per_m")


def test_power_and_schedule_both(data):
    data["applicator"][0]["power_W"] = 15.0
    rejected(data, "applicator[0]", "exactly one of power_W or schedule")


def test_neither_power_nor_schedule(data):
    del data["applicator"][0]["schedule"]
    rejected(data, "applicator[0]", "exactly one of power_W or schedule")


@pytest.mark.parametrize("keep", [(), ("entry_m",), ("tip_center_m",)])
def test_tip_placement_incomplete(data, keep):
    ap = data["applicator"][0]
    given = {"entry_m": ap.pop("entry_m"), "tip_end_m": ap.pop("tip_end_m"), "tip_center_m": [0.0, 0.0, 0.0]}
    for k in keep:
        ap[k] = given[k]
    rejected(data, "applicator[0]", "tip_center_m and direction", "entry_m and tip_end_m")


def test_zero_direction(data):
    by_centre(data, (0.0, 0.0, 0.0), direction=(0.0, 0.0, 0.0))
    rejected(data, "applicator[0]", "direction", "non-zero vector")


def test_entry_equal_to_tip_end(data):
    data["applicator"][0]["entry_m"] = list(data["applicator"][0]["tip_end_m"])
    rejected(data, "applicator[0]", "tip_end_m - entry_m", "non-zero vector")


def test_cavity_in_a_mesh_file(data):
    data["geometry"] = {"kind": "file", "path": "spine.msh"}
    rejected(data, "applicator[0].representation = 'cavity'", "primitive geometry", "'line'")


def test_line_in_a_mesh_file_is_accepted(data):
    data["geometry"] = {"kind": "file", "path": "spine.msh"}
    data["applicator"][0]["representation"] = "line"
    parse_case(data)


def test_coagulation_needs_transient(data):
    data["coagulation"] = {"enabled": True}
    data["time"]["mode"] = "steady"
    rejected(data, "coagulation.enabled = true", "time.mode = 'transient'")


def test_coagulation_refuses_p2(data):
    """Coagulation lumps perfusion by row sums, which are negative at P2 vertices: refused
    before any mesh, naming both keys."""
    data["coagulation"] = {"enabled": True}
    data["time"]["mode"] = "transient"
    data["solver"] = {"element_degree": 2}
    rejected(data, "coagulation.enabled = true", "solver.element_degree = 2", "allowed")
    data["solver"] = {"element_degree": 1}
    parse_case(data)
    data["solver"] = {"element_degree": 2}
    data["coagulation"] = {"enabled": False}
    parse_case(data)


def test_p2_row_sum_lumping_is_negative_at_vertices():
    """Why P2 is refused: the row sums of the P2 mass matrix on a tetrahedron are -|K|/20 at
    the vertices (and |K|/5 at the edges), so row-sum lumped perfusion would heat tissue."""
    import basix

    pts, wts = basix.make_quadrature(basix.CellType.tetrahedron, 4)
    element = basix.create_element(basix.ElementFamily.P, basix.CellType.tetrahedron, 2)
    phi = element.tabulate(0, pts)[0, :, :, 0]  # (points, 10 basis functions)
    row_sums = (wts[:, None] * phi).sum(axis=0) / wts.sum()
    assert row_sums[:4] == pytest.approx([-0.05] * 4, abs=1e-12)
    assert row_sums[4:] == pytest.approx([0.2] * 6, abs=1e-12)


@pytest.mark.parametrize(
    "key, value, allowed",
    [
        ("tip_length_m", 0.0, "greater than 0"),
        ("tip_length_m", 0.06, "less than or equal to 0.05"),
        ("catheter_radius_m", -0.001, "greater than 0"),
        ("coolant_temperature_C", 60.0, "less than or equal to 45"),
        ("coolant_heat_transfer_W_per_m2K", 0.0, "greater than 0"),
        ("representation", "tube", "'line' or 'cavity'"),
    ],
)
def test_bad_applicator_values(data, key, value, allowed):
    data["applicator"][0][key] = value
    rejected(data, f"applicator[0].{key}", repr(value), allowed)


def test_bad_wavelength(data):
    data["light"]["wavelength_nm"] = 810
    rejected(data, "light.wavelength_nm", "810", "980", "1064")


def test_duplicate_applicator_name(data):
    data["applicator"].append(copy.deepcopy(data["applicator"][0]))
    rejected(data, "applicator[1].name = 'fibre'", "used twice")


# --------------------------------------------------------------------------- schedule_csv


def _case_with_csv(tmp_path: Path, data: dict, csv_text: str | None, name: str = "power.csv") -> Path:
    ap = data["applicator"][0]
    del ap["schedule"]
    ap["schedule_csv"] = name
    if csv_text is not None:
        (tmp_path / name).write_text(csv_text)
    path = tmp_path / "case.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def test_schedule_csv_is_read(tmp_path, data):
    data["applicator"][0]["interpolation"] = "linear"
    path = _case_with_csv(tmp_path, data, "time_s,power_W\n0,0\n10,10\n30,10\n40,0\n")
    case = load_case(path)
    ap = case.applicator[0]
    assert ap.schedule == [(0.0, 0.0), (10.0, 10.0), (30.0, 10.0), (40.0, 0.0)]
    assert ap.power_at(5.0) == pytest.approx(5.0)
    assert ap.power_at(20.0) == 10.0
    assert ap.power_at(35.0) == pytest.approx(5.0)
    assert ap.power_at(100.0) == 0.0
    assert ap.energy_between(0.0, 60.0) == pytest.approx(50.0 + 200.0 + 50.0, rel=1e-14)


def test_schedule_csv_extra_columns_and_order(tmp_path, data):
    path = _case_with_csv(tmp_path, data, "power_W,note,time_s\n15,on,0\n0,off,120\n")
    ap = load_case(path).applicator[0]
    assert ap.schedule == [(0.0, 15.0), (120.0, 0.0)]
    assert ap.power_at(60.0) == 15.0  # demo interpolation: step


def test_schedule_csv_missing_file(tmp_path, data):
    path = _case_with_csv(tmp_path, data, None, name="nowhere.csv")
    with pytest.raises(CaseError) as info:
        load_case(path)
    msg = str(info.value)
    assert "applicator[0].schedule_csv" in msg and "nowhere.csv" in msg and "not found" in msg


def test_schedule_csv_bad_header(tmp_path, data):
    path = _case_with_csv(tmp_path, data, "t,P\n0,15\n120,0\n")
    with pytest.raises(CaseError) as info:
        load_case(path)
    msg = str(info.value)
    assert "applicator[0].schedule_csv" in msg and "power.csv" in msg
    # issue 10: the file's content is never echoed (only its name and what is expected)
    assert "time_s, power_W" in msg and "'t'" not in msg and "15" not in msg.split("power.csv")[-1]


def test_schedule_csv_bad_number(tmp_path, data):
    path = _case_with_csv(tmp_path, data, "time_s,power_W\n0,15\n120,off\n")
    with pytest.raises(CaseError) as info:
        load_case(path)
    assert "applicator[0].schedule_csv" in str(info.value) and "line 3" in str(info.value)


def test_schedule_csv_values_are_validated(tmp_path, data):
    path = _case_with_csv(tmp_path, data, "time_s,power_W\n0,15\n60,-3\n")
    with pytest.raises(CaseError) as info:
        load_case(path)
    assert "applicator[0].schedule[1]" in str(info.value) and "-3.0" in str(info.value)


def test_schedule_csv_and_schedule_both(tmp_path, data):
    path = _case_with_csv(tmp_path, data, "time_s,power_W\n0,15\n")
    raw = tomllib.loads(path.read_text())
    raw["applicator"][0]["schedule"] = [[0.0, 1.0]]
    path.write_text(tomli_w.dumps(raw))
    with pytest.raises(CaseError, match=r"applicator\[0\]: give schedule or schedule_csv, not both"):
        load_case(path)


def test_schedule_csv_and_power_both(data):
    ap = data["applicator"][0]
    del ap["schedule"]
    ap["schedule_csv"] = "power.csv"
    ap["power_W"] = 3.0
    rejected(data, "applicator[0]", "power_W, schedule or schedule_csv")


# --------------------------------------------------------------------------- pull-back, cavities


def _pull_back(data: dict, first_start: float = 0.0) -> dict:
    ap = by_centre(data, (0.0, 0.0, 0.0))
    ap["representation"] = "cavity"
    ap["position"] = [
        {"start_s": first_start, "tip_center_m": [0.0, 0.0, 0.008]},
        {"start_s": 60.0, "tip_center_m": [0.0, 0.0, 0.0]},
        {"start_s": 100.0, "tip_center_m": [0.0, 0.0, -0.008]},
    ]
    return data


def test_positions_and_energy_windows(data):
    ap = parse_case(_pull_back(data)).applicator[0]
    assert ap.positions() == [(0.0, (0.0, 0.0, 0.008)), (60.0, (0.0, 0.0, 0.0)), (100.0, (0.0, 0.0, -0.008))]
    # demo schedule: 15 W until 120 s (step), then 0
    windows = [(0.0, 60.0), (60.0, 100.0), (100.0, float("inf"))]
    energies = [ap.energy_in_window(0.0, 180.0, *w) for w in windows]
    assert energies == pytest.approx([900.0, 600.0, 300.0], rel=1e-14)
    assert sum(energies) == pytest.approx(ap.energy_between(0.0, 180.0), rel=1e-14)
    # a time step straddling a position change splits exactly
    assert ap.energy_in_window(55.0, 65.0, *windows[0]) == pytest.approx(75.0)
    assert ap.energy_in_window(55.0, 65.0, *windows[1]) == pytest.approx(75.0)
    # disjoint step and window: nothing
    assert ap.energy_in_window(0.0, 50.0, *windows[2]) == 0.0
    assert ap.energy_in_window(130.0, 180.0, *windows[2]) == 0.0


def test_positions_start_late_from_the_home_position(data):
    ap = parse_case(_pull_back(data, first_start=10.0)).applicator[0]
    assert ap.positions()[0] == (0.0, (0.0, 0.0, 0.0))  # tip_center_m until the first position
    assert ap.positions()[1] == (10.0, (0.0, 0.0, 0.008))
    assert len(ap.positions()) == 4


def test_cavities_of_the_demo():
    case = load_case(DEMO)
    (cav,) = case.cavities()
    assert cav["name"] == "fibre"
    assert cav["entry_m"] == pytest.approx((0.0, 0.0, -0.05))
    assert cav["end_m"] == pytest.approx((0.0, 0.0, 0.005))
    assert cav["radius_m"] == 0.000825 and cav["tip_length_m"] == 0.010


def test_cavity_ends_at_the_deepest_pull_back_position(data):
    case = parse_case(_pull_back(data))
    (cav,) = case.cavities()
    # direction +z: the deepest distal end is that of the first position, 8 + 5 mm
    assert cav["end_m"] == pytest.approx((0.0, 0.0, 0.013), abs=1e-15)
    # no entry point: the cavity comes from 1 m outside along the axis
    assert cav["entry_m"] == pytest.approx((0.0, 0.0, 0.013 - 1.0))


def test_cavity_deepest_end_along_an_oblique_axis(data):
    s = 2.0**-0.5
    ap = by_centre(data, (0.0, 0.0, 0.0), direction=(1.0, 0.0, 1.0))
    ap["position"] = [
        {"start_s": 0.0, "tip_center_m": [-0.004 * s, 0.0, -0.004 * s]},
        {"start_s": 30.0, "tip_center_m": [0.006 * s, 0.0, 0.006 * s]},
        {"start_s": 60.0, "tip_center_m": [0.0, 0.0, 0.0]},
    ]
    (cav,) = parse_case(data).cavities()
    assert cav["end_m"] == pytest.approx((0.011 * s, 0.0, 0.011 * s), abs=1e-15)


def test_line_applicators_have_no_cavity(data):
    data["applicator"][0]["representation"] = "line"
    assert parse_case(data).cavities() == []
