"""Kernel light model: values at points are the closed form, and the tip may sit in a cavity.

- Probe columns fluence_W_per_m2 and laser_heat_W_per_m3 are the kernel's closed form at the
  probe points (not the P1 interpolant, 25 % low at r = 6 mm on a 6 mm mesh), with mu_a of the
  cell that holds the probe. Checked against an independent evaluation of the same emitters
  and against uniform emission along the tip (the emitters' limit, segment_fluence_infinite).
- A cut-out catheter (representation = "cavity") or any hole of a mesh file at the tip: the
  kernel takes the optics of the tissue at the wall around the tip (muscle in these cases;
  the tumour for the T8 vertebra), instead of failing on the tip centre outside the mesh.
"""

from __future__ import annotations

import csv
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from solver.case_loader import load_case, parse_case
from solver.light import segment_fluence_infinite
from solver.light_kernel import default_emitter_count, emitter_points, kernel_fluence_numpy
from solver.optics import OpticalProperties
from solver.simulation import build_case_mesh, run_case

pytestmark = pytest.mark.mpi

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
MUSCLE_980 = OpticalProperties(absorption_per_m=49.0, reduced_scattering_per_m=580.0)  # Cassano 2019


def _columns(out: Path) -> dict[str, np.ndarray]:
    with open(out / "probes.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    return {name: np.array([float(r[j]) for r in rows[1:]]) for j, name in enumerate(rows[0])}


def _run(case, folder: Path, bundle=None):
    summary = run_case(case, folder, progress=False, bundle=bundle)
    return summary, _columns(folder)


def _model_fluence(points, tip_center, axis, optics, n=None, radius=0.000825):
    n = n or default_emitter_count(0.010, optics.mu_eff_per_m)
    return kernel_fluence_numpy(points, emitter_points(tip_center, axis, 0.010, n), optics, radius)


def test_muscle_optics_at_980nm():
    t = load_case(DATA / "kernel_probe.toml").resolved_tissues()["body"]
    assert (t.absorption_per_m, t.reduced_scattering_per_m) == (49.0, 580.0)
    assert default_emitter_count(0.010, MUSCLE_980.mu_eff_per_m) == 7  # ceil(2 x 304.08/m x 10 mm)


def test_kernel_probe_columns_are_the_closed_form(shared_tmp):
    case = load_case(DATA / "kernel_probe.toml")
    _, cols = _run(case, shared_tmp / "out")
    points = np.array([p.position_m for p in case.probe])
    expected = _model_fluence(points, (0, 0, 0), (0, 0, 1), MUSCLE_980)
    for name, phi in zip(("r6mm", "r10mm"), expected):
        np.testing.assert_allclose(cols[f"{name}.fluence_W_per_m2"], phi, rtol=1e-10)
        np.testing.assert_allclose(cols[f"{name}.laser_heat_W_per_m3"], 49.0 * phi, rtol=1e-10)
    # the model's own 7 emitters (was 2323.1 and 681.4 from the P1 interpolant)
    assert cols["r6mm.fluence_W_per_m2"][0] == pytest.approx(3116.904, abs=1e-3)
    assert cols["r10mm.fluence_W_per_m2"][0] == pytest.approx(618.2136, abs=1e-4)
    # Uniform emission along the tip: 3108.47 and 616.87 W/m2. 7 midpoint emitters differ by
    # O((L/N)^2): 0.27 % and 0.22 % here (default_emitter_count documents up to 1.7 %).
    line = segment_fluence_infinite(points, (0, 0, -0.005), (0, 0, 0.005), 1.0, 49.0, 580.0)
    np.testing.assert_allclose(line, [3108.474, 616.866], atol=1e-3)
    np.testing.assert_allclose(expected, line, rtol=3e-3)


def test_kernel_probe_converges_to_line_emission(shared_tmp):
    """With 100 emitters the probe values are those of uniform emission to the midpoint rule's
    O((L/N)^2) error: 0.27 % x (7 / 100)^2 = 1.3e-5 at r = 6 mm."""
    case = load_case(DATA / "kernel_probe.toml")
    data = case.model_dump(exclude={"case_dir"})
    data["light"]["kernel_emitters"] = 100
    _, cols = _run(parse_case(data), shared_tmp / "out")
    points = np.array([p.position_m for p in case.probe])
    line = segment_fluence_infinite(points, (0, 0, -0.005), (0, 0, 0.005), 1.0, 49.0, 580.0)
    got = [cols["r6mm.fluence_W_per_m2"][0], cols["r10mm.fluence_W_per_m2"][0]]
    np.testing.assert_allclose(got, line, rtol=2e-5)


def test_kernel_with_a_catheter_cavity(shared_tmp):
    case = load_case(DATA / "kernel_cavity.toml")
    bundle = build_case_mesh(case, MPI.COMM_WORLD)
    summary, cols = _run(case, shared_tmp / "cavity", bundle=bundle)
    em = summary["light"]["emitters"][0]["per_watt"]
    assert em["kernel_region"] == "body"
    probe = np.array([case.probe[0].position_m])
    phi = 10.0 * _model_fluence(probe, (0, 0, 0), (0, 0, 1), MUSCLE_980)[0]
    np.testing.assert_allclose(cols["r5mm.fluence_W_per_m2"], phi, rtol=1e-10)
    np.testing.assert_allclose(cols["r5mm.laser_heat_W_per_m3"], 49.0 * phi, rtol=1e-10)
    assert phi == pytest.approx(48080.65, abs=0.01)
    T = cols["r5mm"]
    assert np.all(np.isfinite(T)) and np.all(np.diff(T) > 0.0), T  # heating at 5 mm
    # absorbed power of the muscle kernel in the meshed tissue: less than the 1 W per W emitted
    assert 0.9 < em["absorbed_W"] < 1.0, em

    # The same mesh as a mesh file with a hole at the tip, and the applicator as a line in it.
    msh = shared_tmp / "catheter_hole.msh"
    if MPI.COMM_WORLD.rank == 0:
        shutil.copy(bundle.cache_path, msh)
    MPI.COMM_WORLD.barrier()
    with open(DATA / "kernel_cavity.toml", "rb") as fh:
        data = tomllib.load(fh)
    data["geometry"] = {"kind": "file", "path": str(msh)}
    ap = data["applicator"][0]
    ap["representation"] = "line"
    del ap["coolant_temperature_C"]
    data["boundary"].append({"surface": ["fibre_tip", "fibre_shaft"], "type": "dirichlet", "temperature_C": 20.0})
    summary, cols_file = _run(parse_case(data, case_dir=str(shared_tmp)), shared_tmp / "file")
    assert summary["light"]["emitters"][0]["per_watt"]["kernel_region"] == "body"
    np.testing.assert_allclose(cols_file["r5mm.fluence_W_per_m2"], phi, rtol=1e-10)
    np.testing.assert_allclose(cols_file["r5mm"], T, rtol=1e-9)


def test_kernel_tip_outside_the_body_is_refused(shared_tmp):
    """A mesh file and a line applicator whose tip lies beside the mesh: no tissue surrounds
    it, so there is no tissue to take the optics from (CaseError, not a traceback)."""
    from solver.config import CaseError

    case = load_case(DATA / "kernel_cavity.toml")
    bundle = build_case_mesh(case, MPI.COMM_WORLD)
    msh = shared_tmp / "sphere.msh"
    if MPI.COMM_WORLD.rank == 0:
        shutil.copy(bundle.cache_path, msh)
    MPI.COMM_WORLD.barrier()
    with open(DATA / "kernel_cavity.toml", "rb") as fh:
        data = tomllib.load(fh)
    data["geometry"] = {"kind": "file", "path": str(msh)}
    data["applicator"] = [{"name": "fibre", "tip_center_m": [0.0, 0.0, 0.045], "direction": [0, 0, 1],
                           "power_W": 1.0}]
    with pytest.raises(CaseError, match="no tissue surrounds it"):
        run_case(parse_case(data, case_dir=str(shared_tmp)), shared_tmp / "out", progress=False)


def test_T8_with_the_kernel_model(shared_tmp):
    """The shipped T8 case (cooled catheter cut out of the vertebra) with model = "kernel": the
    kernel takes the tumour's optics (the tissue at the catheter wall around the tip)."""
    with open(ROOT / "cases" / "spine" / "T8_lytic_intact.toml", "rb") as fh:
        data = tomllib.load(fh)
    data["light"]["model"] = "kernel"
    data["time"].update(dt_s=1.0, end_time_s=2.0, output_interval_s=1.0)
    data["applicator"][0]["schedule"] = [[0.0, 6.0], [2.0, 6.0]]  # 6 W throughout the 2 s run
    data["output"] = {"fields": False}
    case = parse_case(data, case_dir=str(ROOT / "cases" / "spine"))
    summary, cols = _run(case, shared_tmp / "t8")
    em = summary["light"]["emitters"][0]
    assert em["per_watt"]["kernel_region"] == "tumour"
    tumour = OpticalProperties(49.0, 580.0)  # tissues.tumour in the case file
    ap = case.applicator[0]
    points = np.array([p.position_m for p in case.probe])
    phi = 6.0 * kernel_fluence_numpy(
        points, emitter_points(ap.home_tip_center_m, ap.axis, ap.tip_length_m, mu_eff_per_m=tumour.mu_eff_per_m),
        tumour, ap.catheter_radius_m,
    )
    for p, expected in zip(case.probe, phi):
        np.testing.assert_allclose(cols[f"{p.name}.fluence_W_per_m2"], expected, rtol=1e-10)
        assert np.all(np.isfinite(cols[p.name]))
    assert cols["tumour_target"][-1] > 37.5  # heating next to the tip
