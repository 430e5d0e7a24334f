"""The `bioheat` command line, end to end in subprocesses: schema/tissues/validate, rejected
inputs (exit code 2, nothing written), output-folder protection, real steady and transient
runs with their output files, a 2-rank MPI run, and a diverging solve (exit code 3).

Serial module: it starts its own `mpiexec` where needed.
"""

from __future__ import annotations

import copy
import csv
import json
import math
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
import tomli_w
from mpi4py import MPI

from solver import analytic, compat
from solver import __version__ as SPINE_LITT_VERSION
from solver.case_loader import load_case

if MPI.COMM_WORLD.size > 1:  # pragma: no cover - these tests launch their own processes
    pytest.skip("CLI tests run serially (they start mpiexec themselves)", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
SLAB = ROOT / "cases" / "verification" / "slab_steady.toml"
TRANSIENT = ROOT / "cases" / "verification" / "uniform_source_transient.toml"
TIMEOUT = 300


def bioheat(cmd, env, *args, cwd=None, timeout=TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*cmd, *map(str, args)], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def load_toml(path: Path) -> dict:
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def write_case(path: Path, data: dict) -> Path:
    path.write_text(tomli_w.dumps(data))
    return path


def read_probes(path: Path) -> tuple[list[str], list[list[float]]]:
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], [[float(v) for v in row] for row in rows[1:]]


def leftovers(parent: Path, name: str) -> list[str]:
    """Staging or backup siblings of DIR that a run may leave behind."""
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{name}."))


# --------------------------------------------------------------------------- schema, tissues


def test_schema_lists_keys_with_units(bioheat_cmd, cli_env, tmp_path):
    r = bioheat(bioheat_cmd, cli_env, "schema", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()

    def line(key: str) -> str:
        found = [ln for ln in lines if ln.split() and ln.split()[0] == key]
        assert found, f"{key} not in `bioheat schema`:\n{r.stdout}"
        return found[0]

    assert "(W/m/K)" in line("tissues.NAME.conductivity_W_per_mK")
    assert "(s)" in line("time.dt_s") and "default 1.0" in line("time.dt_s")
    assert "(m)" in line("probe.position_m") and "required" in line("probe.position_m")
    assert "(m)" in line("source.position_m")
    assert "(C)" in line("initial.temperature_C") and "default 37.0" in line("initial.temperature_C")
    assert "(W/m3/K)" in line("tissues.NAME.perfusion_W_per_m3K")
    assert "backward_euler" in line("time.scheme")
    assert "spinal_cord" in r.stdout  # library tissue names at the end
    assert "FieldInfo" not in r.stdout and "Annotated[" not in r.stdout  # readable types


def test_schema_json(bioheat_cmd, cli_env, tmp_path):
    r = bioheat(bioheat_cmd, cli_env, "schema", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    schema = json.loads(r.stdout)
    assert {"name", "geometry", "regions", "time", "probe"} <= set(schema["properties"])
    assert set(schema["required"]) >= {"name", "geometry", "regions"}
    tissue = schema["$defs"]["Tissue"]["properties"]
    assert "conductivity_W_per_mK" in tissue
    assert schema["$defs"]["TimeStepping"]["properties"]["dt_s"]["exclusiveMinimum"] == 0.0


def test_tissues(bioheat_cmd, cli_env, tmp_path):
    r = bioheat(bioheat_cmd, cli_env, "tissues", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    row = [ln for ln in r.stdout.splitlines() if ln.startswith("spinal_cord ")]
    assert len(row) == 1
    assert row[0].split()[1:5] == ["1075", "3630", "0.51", "10907"]
    r = bioheat(bioheat_cmd, cli_env, "tissues", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lib = json.loads(r.stdout)
    assert lib["muscle"]["perfusion_W_per_m3K"] == 2535.0
    assert lib["spinal_cord"]["conductivity_W_per_mK"] == 0.51


# --------------------------------------------------------------------------- validate


def test_validate_good_case(bioheat_cmd, cli_env, tmp_path):
    r = bioheat(bioheat_cmd, cli_env, "validate", SLAB, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "valid case 'verify_slab_steady'" in r.stdout
    assert load_case(SLAB).hash()[:12] in r.stdout
    assert r.stderr == ""


def test_validate_missing_file(bioheat_cmd, cli_env, tmp_path):
    r = bioheat(bioheat_cmd, cli_env, "validate", tmp_path / "nope.toml", cwd=tmp_path)
    assert r.returncode == 2
    assert "not found" in r.stderr and "Traceback" not in r.stderr


# --------------------------------------------------------------------------- bad inputs


def _set(path: list, value):
    def change(d):
        for key in path[:-1]:
            d = d.setdefault(key, {}) if isinstance(key, str) else d[key]
        d[path[-1]] = value

    return change


def _typo(d):
    d["geometry"]["mesh_sise_m"] = d["geometry"].pop("mesh_size_m")


def _region_without_tissue(d):
    d["geometry"]["inclusion"] = [{"name": "tumour", "center_m": [0.02, 0.002, 0.002], "radius_m": 0.001}]


# (id, case file, change, fragments stderr must contain: key, value, allowed)
BAD_INPUTS = [
    ("negative_conductivity", SLAB, _set(["tissues", "muscle", "conductivity_W_per_mK"], -0.5),
     ["tissues.muscle.conductivity_W_per_mK = -0.5", "greater than 0"]),
    ("zero_conductivity", SLAB, _set(["tissues", "muscle", "conductivity_W_per_mK"], 0.0),
     ["tissues.muscle.conductivity_W_per_mK = 0.0", "greater than 0"]),
    ("unknown_tissue", SLAB, _set(["regions", "body"], "muscel"),
     ["regions.body = 'muscel'", "unknown tissue", "'muscle'", "'spinal_cord'"]),
    ("region_without_tissue", SLAB, _region_without_tissue,
     ["regions.tumour", "'tumour' has no tissue", "['body', 'tumour']"]),
    ("region_not_in_geometry", SLAB, _set(["regions", "vertebra"], "cortical_bone"),
     ["regions.vertebra", "no region 'vertebra'", "['body']"]),
    ("dt_zero", TRANSIENT, _set(["time", "dt_s"], 0.0), ["time.dt_s = 0.0", "greater than 0"]),
    ("dt_negative", TRANSIENT, _set(["time", "dt_s"], -20.0), ["time.dt_s = -20.0", "greater than 0"]),
    ("probe_outside", SLAB, _set(["probe", 1, "position_m"], [0.05, 0.002, 0.002]),
     ["probe[1].position_m = [0.05, 0.002, 0.002]", "('x10mm')", "lies outside",
      "lower_m = [0.0, 0.0, 0.0] to upper_m = [0.04, 0.004, 0.004]"]),
    ("unknown_key", SLAB, _typo, ["geometry.mesh_sise_m = 0.002", "unknown key", "geometry.mesh_size_m"]),
    ("unknown_surface", SLAB, _set(["boundary", 0, "surface"], "x_min"),
     ["boundary[0].surface = 'x_min'", "unknown surface", "['xmin', 'xmax', 'ymin', 'ymax', 'zmin', 'zmax', 'outer']"]),
]


@pytest.mark.timeout(TIMEOUT)
@pytest.mark.parametrize("source, change, fragments", [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_rejected_before_any_output(bioheat_cmd, cli_env, tmp_path, source, change, fragments):
    data = load_toml(source)
    changed = copy.deepcopy(data)
    change(changed)
    assert changed != data
    case = write_case(tmp_path / "case.toml", changed)
    out = tmp_path / "out"

    for args in (["validate", case], ["run", case, "--out", out, "--quiet"]):
        r = bioheat(bioheat_cmd, cli_env, *args, cwd=tmp_path)
        assert r.returncode == 2, f"{args[0]}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
        assert "Traceback" not in r.stderr
        assert r.stderr.startswith("error: ")
        assert str(case) in r.stderr
        for frag in fragments:
            assert frag in r.stderr, f"{args[0]}: {frag!r} not in stderr:\n{r.stderr}"
        assert not out.exists()
        assert leftovers(tmp_path, "out") == []


# --------------------------------------------------------------------------- output folder


@pytest.mark.timeout(TIMEOUT)
def test_existing_output_folder(bioheat_cmd, cli_env, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious.txt").write_text("keep me\n")
    (out / "sub").mkdir()
    (out / "sub" / "data.csv").write_text("1,2\n")

    r = bioheat(bioheat_cmd, cli_env, "run", SLAB, "--out", out, "--quiet", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--overwrite" in r.stderr and str(out) in r.stderr
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == ["precious.txt", "sub", "sub/data.csv"]
    assert (out / "precious.txt").read_text() == "keep me\n"
    assert leftovers(tmp_path, "out") == []

    # issue 10: --overwrite replaces only a result folder of this tool; a foreign one is kept
    r = bioheat(bioheat_cmd, cli_env, "run", SLAB, "--out", out, "--overwrite", "--quiet", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "only replaces result folders" in r.stderr
    assert (out / "precious.txt").read_text() == "keep me\n" and (out / "sub" / "data.csv").is_file()
    assert leftovers(tmp_path, "out") == []

    res = tmp_path / "res"
    r = bioheat(bioheat_cmd, cli_env, "run", SLAB, "--out", res, "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    (res / "stale.txt").write_text("from the first run\n")
    r = bioheat(bioheat_cmd, cli_env, "run", SLAB, "--out", res, "--overwrite", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not (res / "stale.txt").exists()
    # a steady run has a report too (maps.png, report.md/html from report_data.npz)
    report = {"report_data.npz", "maps.png", "report.md", "report.html"}
    assert {"probes.csv", "summary.json", "case.toml", "fields", "provenance.json", ".bioheat-result"} | report == {
        p.name for p in res.iterdir()
    }
    assert leftovers(tmp_path, "res") == []


@pytest.mark.timeout(TIMEOUT)
def test_empty_output_folder_is_used(bioheat_cmd, cli_env, tmp_path):
    out = tmp_path / "empty"
    out.mkdir()
    r = bioheat(bioheat_cmd, cli_env, "run", SLAB, "--out", out, "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / "probes.csv").is_file()


def test_output_path_is_a_file(bioheat_cmd, cli_env, tmp_path):
    out = tmp_path / "out"
    out.write_text("not a folder")
    r = bioheat(bioheat_cmd, cli_env, "run", SLAB, "--out", out, "--overwrite", "--quiet", cwd=tmp_path)
    assert r.returncode == 2
    assert "not a folder" in r.stderr
    assert out.read_text() == "not a folder"


# --------------------------------------------------------------------------- steady run


@pytest.fixture(scope="module")
def slab_run(tmp_path_factory, bioheat_cmd, cli_env):
    """One serial run of the slab verification case (steady, 444 cells, about a second)."""
    tmp = tmp_path_factory.mktemp("slab")
    out = tmp / "out"
    r = bioheat(bioheat_cmd, cli_env, "run", SLAB, "--out", out, cwd=tmp)
    assert r.returncode == 0, r.stdout + r.stderr
    return out, r


SUMMARY_KEYS = {
    "case", "mesh", "ranks", "wall_time_s", "max_temperature_C", "max_temperature_location_m",
    "final_probe_temperatures_C", "versions", "case_hash",
}


def test_steady_report(slab_run, bioheat_cmd, cli_env):
    """A steady run gets maps and a report, and no time-course figure (nothing to plot over
    time); `bioheat report` redraws it in either display convention."""
    out, r = slab_run
    assert "report: maps.png, report.md, report.html" in r.stdout
    assert not (out / "probes.png").exists() and not (out / "dose_histogram.png").exists()
    md = (out / "report.md").read_text()
    assert "steady state" in md and "![maps.png](maps.png)" in md and "commit" in md
    import numpy as np

    d = np.load(out / "report_data.npz")
    assert list(d["planes"]) == ["axial", "coronal", "sagittal"]
    assert not bool(d["anatomical_frame"])
    rr = bioheat(bioheat_cmd, cli_env, "report", out, "--convention", "neurological")
    assert rr.returncode == 0, rr.stdout + rr.stderr
    assert "maps.png" in rr.stdout and "probes.png" not in rr.stdout
    rr = bioheat(bioheat_cmd, cli_env, "report", out, "--convention", "sideways")
    assert rr.returncode == 2 and "sideways" in rr.stderr
    # without report_data.npz the maps cannot be redrawn: said, not silently skipped
    copy = out.parent / "report_copy"
    shutil.copytree(out, copy)
    (copy / "report_data.npz").unlink()
    rr = bioheat(bioheat_cmd, cli_env, "report", copy)
    assert rr.returncode == 0 and "report_data.npz is missing" in rr.stdout, rr.stdout + rr.stderr


def test_slab_outputs(slab_run, bioheat_cmd, cli_env, tmp_path):
    out, r = slab_run
    assert "case 'verify_slab_steady'" in r.stdout and "probe x10mm" in r.stdout
    assert {"probes.csv", "summary.json", "case.toml", "fields"} <= {p.name for p in out.iterdir()}
    assert leftovers(out.parent, "out") == []

    header, rows = read_probes(out / "probes.csv")
    assert header == ["time_s", "x5mm", "x10mm", "x20mm"]
    assert len(rows) == 1 and rows[0][0] == 0.0

    summary = json.loads((out / "summary.json").read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["case"] == "verify_slab_steady"
    assert summary["ranks"] == 1
    assert summary["mesh"]["cells"] > 0 and summary["mesh"]["dofs"] > 0
    assert summary["wall_time_s"] > 0
    assert summary["versions"] == {
        "spine_litt": SPINE_LITT_VERSION, "dolfinx": compat.DOLFINX_VERSION, "petsc": compat.PETSC_VERSION
    }
    # maximum principle: the hottest point is on the 47 C face x = 0
    assert summary["max_temperature_C"] == pytest.approx(47.0, abs=1e-8)
    assert len(summary["max_temperature_location_m"]) == 3
    assert summary["max_temperature_location_m"][0] == pytest.approx(0.0, abs=1e-12)
    final = summary["final_probe_temperatures_C"]
    assert list(final) == header[1:]
    assert [final[n] for n in header[1:]] == pytest.approx(rows[0][1:], rel=1e-11)

    # case.toml: the resolved case, valid on its own, same hash
    saved = out / "case.toml"
    r = bioheat(bioheat_cmd, cli_env, "validate", saved, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert load_case(saved).hash() == summary["case_hash"] == load_case(SLAB).hash()
    assert load_toml(saved)["tissues"]["muscle"]["conductivity_W_per_mK"] == 0.49

    fields = out / "fields"
    assert any(p.is_file() and p.stat().st_size > 0 for p in fields.rglob("*"))


def test_slab_matches_analytic(slab_run):
    """P1 on h = 2 mm against theta0 cosh(m (L - x)) / cosh(m L), m = sqrt(W / k) = 71.9 /m.

    Pointwise P1 error ~ h_e^2 / 8 max|theta''| with theta'' = m^2 theta (interpolation,
    probes are not at nodes) plus a FE error of the same order. Unstructured gmsh tets have
    edges up to about 1.5 h, and theta is largest at the element's side nearer x = 0:
    tol(x) = 2 (m 1.5 h)^2 / 8 theta(x - 1.5 h), 1.2 % of the rise there: 0.10 K at x = 5 mm
    (about 1 % of theta0 = 10 K), 0.07 K at 10 mm, 0.03 K at 20 mm. A 10 % error in W or k
    moves theta(10 mm) by about 0.17 K. (Observed errors: 0.003, 0.009, 0.0003 K.)"""
    out, _ = slab_run
    header, rows = read_probes(out / "probes.csv")
    k, W, L, theta0, h = 0.49, 2535.0, 0.04, 10.0, 0.002
    m = math.sqrt(W / k)
    positions = {p.name: p.position_m[0] for p in load_case(SLAB).probe}
    for name, value in zip(header[1:], rows[0][1:]):
        x = positions[name]
        exact = float(analytic.pennes_slab(x, theta0, k=k, W=W, length_m=L)) + 37.0
        theta_near = float(analytic.pennes_slab(max(x - 1.5 * h, 0.0), theta0, k=k, W=W, length_m=L))
        tol = 2.0 * (m * 1.5 * h) ** 2 / 8.0 * theta_near
        assert tol < 0.02 * theta0  # the bound itself stays a tight check
        assert abs(value - exact) < tol, f"{name}: {value} vs exact {exact} (tol {tol:.3g} K)"


@pytest.mark.timeout(TIMEOUT)
def test_mpi_two_ranks_match_serial(slab_run, bioheat_cmd, mpiexec_exe, cli_env, tmp_path):
    assert load_case(SLAB).solver.rtol == 1e-12
    out = tmp_path / "mpi"
    r = bioheat(
        [mpiexec_exe, "-n", "2", *bioheat_cmd], cli_env, "run", SLAB, "--out", out, "--quiet", cwd=tmp_path
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("case 'verify_slab_steady'") == 1  # rank 0 speaks alone
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ranks"] == 2
    serial_out, _ = slab_run
    serial = json.loads((serial_out / "summary.json").read_text())
    assert summary["mesh"]["cells"] == serial["mesh"]["cells"]
    assert summary["mesh"]["dofs"] == serial["mesh"]["dofs"]
    assert summary["case_hash"] == serial["case_hash"]
    h2, rows2 = read_probes(out / "probes.csv")
    h1, rows1 = read_probes(serial_out / "probes.csv")
    assert h1 == h2 and len(rows1) == len(rows2) == 1
    for a, b in zip(rows1[0][1:], rows2[0][1:]):
        assert abs(a - b) <= 1e-8 * abs(a), (a, b)
    assert leftovers(tmp_path, "mpi") == []


# --------------------------------------------------------------------------- transient run


@pytest.mark.timeout(TIMEOUT)
def test_transient_run_rows(bioheat_cmd, cli_env, tmp_path):
    case = load_case(TRANSIENT)
    dt, end = case.time.dt_s, case.time.end_time_s
    assert case.time.output_interval_s is None  # a row every step
    out = tmp_path / "out"
    r = bioheat(bioheat_cmd, cli_env, "run", TRANSIENT, "--out", out, "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr

    header, rows = read_probes(out / "probes.csv")
    assert header == ["time_s", "centre", "centre.omega", "centre.cem43"]
    n = round(end / dt)
    assert len(rows) == n + 1
    assert [row[0] for row in rows] == pytest.approx([i * dt for i in range(n + 1)], abs=1e-9)
    assert rows[0][1] == pytest.approx(37.0, abs=1e-9)
    temps = [row[1] for row in rows]
    assert all(b > a for a, b in zip(temps, temps[1:]))  # heating, monotone

    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == n
    assert summary["final_probe_temperatures_C"]["centre"] == pytest.approx(rows[-1][1], rel=1e-11)
    assert summary["max_temperature_C"] >= rows[-1][1] - 1e-9

    # uniform field: only the time error remains. Crank-Nicolson's is O((beta dt)^2) ~ 1e-4
    # relative. The damped start-up (solver/startup.py: the first two steps as four
    # backward-Euler half steps) adds each half step's local error (dt/2)^2 / 2 |theta''|, with
    # theta'' = -beta Q / (rho c): (dt^2 / 4) beta Q / (rho c) per damped step (3.6e-3 K here).
    t = case.resolved_tissues()["body"]
    Q = case.source[0].power_density_W_per_m3
    rho_c = t.volumetric_heat_capacity_J_per_m3K
    exact = analytic.pennes_uniform_transient(
        [row[0] for row in rows], Q, t.perfusion_W_per_m3K, rho_c
    )
    beta = t.perfusion_W_per_m3K / rho_c
    per_damped_step = dt**2 / 4.0 * beta * Q / rho_c
    for (time_s, value, *_), theta in zip(rows, exact):
        startup = min(round(time_s / dt), 2) * per_damped_step
        assert abs(value - 37.0 - theta) <= 1e-3 * theta + startup + 1e-9, time_s


@pytest.mark.timeout(TIMEOUT)
def test_transient_output_interval(bioheat_cmd, cli_env, tmp_path):
    data = load_toml(TRANSIENT)
    data["time"]["output_interval_s"] = 100.0
    data["output"] = {"fields": False}
    case = write_case(tmp_path / "case.toml", data)
    out = tmp_path / "out"
    r = bioheat(bioheat_cmd, cli_env, "run", case, "--out", out, "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    _, rows = read_probes(out / "probes.csv")
    assert [row[0] for row in rows] == pytest.approx([0, 100, 200, 300, 400, 500, 600])


# --------------------------------------------------------------------------- solver failure


@pytest.mark.timeout(TIMEOUT)
def test_diverging_solve_exits_3_without_output(bioheat_cmd, cli_env, tmp_path):
    """One Krylov iteration cannot reach rtol 1e-14: PETSc reports DIVERGED_ITS."""
    data = load_toml(SLAB)
    data["solver"].update(rtol=1e-14, max_iterations=1)
    case = write_case(tmp_path / "case.toml", data)
    r = bioheat(bioheat_cmd, cli_env, "validate", case, cwd=tmp_path)
    assert r.returncode == 0, r.stderr  # the input itself is valid
    out = tmp_path / "out"
    r = bioheat(bioheat_cmd, cli_env, "run", case, "--out", out, "--quiet", cwd=tmp_path)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "did not converge" in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists()
    assert leftovers(tmp_path, "out") == []


@pytest.mark.timeout(TIMEOUT)
def test_steady_case_without_heat_sink_refused(bioheat_cmd, cli_env, tmp_path):
    """No perfusion, no Dirichlet/Robin surface, net heat in: no steady state exists. Refused
    by validate and run (exit 2, before any mesh or solve), with the reason and the remedies."""
    case = ROOT / "tests" / "data" / "steady_no_sink.toml"
    out = tmp_path / "out"
    for args in (["validate", case], ["run", case, "--out", out, "--quiet"]):
        r = bioheat(bioheat_cmd, cli_env, *args, cwd=tmp_path)
        assert r.returncode == 2, f"{args[0]}: exit {r.returncode}\n{r.stdout}\n{r.stderr}"
        assert "Traceback" not in r.stderr
        for frag in ("time.mode = 'steady'", "no steady state exists", "nothing removes heat",
                     "perfusion_W_per_m3K", "dirichlet or robin", "time.mode = 'transient'"):
            assert frag in r.stderr, r.stderr
        assert "time step" not in r.stderr
        assert not out.exists()
