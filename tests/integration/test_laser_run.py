"""Laser runs end to end through `bioheat run` (serial subprocesses, small meshes): a cooled
cavity applicator (probes.csv columns, fluence on/off with the schedule, light energy balance,
catheter cooling), kernel vs diffusion light for a line source, a two-position pull-back, and
a failing heat solve (exit 3, nothing written).

Every case is the demo case (cases/laser_980nm_15W_muscle.toml) made small: sphere radius
30 mm, mesh size 6 mm, 1.5 mm around the tip, dt 2 s, 40 s. One run takes about a second.
"""

from __future__ import annotations

import csv
import json
import subprocess
import tomllib
from pathlib import Path

import pytest
import tomli_w
from mpi4py import MPI

from solver.case_loader import load_case

if MPI.COMM_WORLD.size > 1:  # pragma: no cover - these tests launch their own processes
    pytest.skip("CLI tests run serially", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "cases" / "laser_980nm_15W_muscle.toml"
TIMEOUT = 300
P_ON_W, T_OFF_S, END_S, DT_S = 15.0, 20.0, 40.0, 2.0


def small_demo() -> dict:
    with open(DEMO, "rb") as fh:
        d = tomllib.load(fh)
    d["geometry"].update(radius_m=0.03, mesh_size_m=0.006)
    d["geometry"]["refinement"][0].update(size_m=0.0015, distance_m=0.01)
    d["time"].update(dt_s=DT_S, end_time_s=END_S, output_interval_s=DT_S)
    d["applicator"][0]["schedule"] = [[0.0, P_ON_W], [T_OFF_S, 0.0]]  # step: on for 20 s
    d["probe"] = [
        {"name": "r1mm", "position_m": [0.001, 0.0, 0.0]},  # 0.175 mm outside the catheter wall
        {"name": "r3mm", "position_m": [0.003, 0.0, 0.0]},
        {"name": "r6mm", "position_m": [0.006, 0.0, 0.0]},
    ]
    d["output"] = {"fields": False}
    return d


@pytest.fixture(scope="module", autouse=True)
def _no_report(bioheat_cmd, cli_env):
    """Skip the PNG report where the CLI has one (it is not what these tests check)."""
    r = subprocess.run([*bioheat_cmd, "run", "--help"], env=cli_env, capture_output=True, text=True)
    NO_REPORT[:] = ["--no-report"] if "--no-report" in r.stdout else []


NO_REPORT: list[str] = []


def run(bioheat_cmd, env, folder: Path, data: dict, expect: int = 0) -> tuple[subprocess.CompletedProcess, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    case = folder / "case.toml"
    case.write_text(tomli_w.dumps(data))
    load_case(case)  # valid input
    out = folder / "out"
    r = subprocess.run(
        [*bioheat_cmd, "run", str(case), "--out", str(out), "--quiet", *NO_REPORT],
        env=env, cwd=folder, capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert r.returncode == expect, r.stdout + r.stderr
    return r, out


def read_probes(out: Path) -> tuple[list[str], dict[str, list[float]]]:
    with open(out / "probes.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    header = rows[0]
    cols = {name: [float(row[i]) for row in rows[1:]] for i, name in enumerate(header)}
    return header, cols


def summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


# --------------------------------------------------------------------------- cooled cavity


@pytest.fixture(scope="module")
def cavity_runs(bioheat_cmd, cli_env, tmp_path_factory):
    """The small demo with the catheter wall held at 20 C and, for comparison, at 37 C
    (cooling = "fixed_temperature"), and with the default convective cooling by 20 C coolant
    (key "convective")."""
    base = tmp_path_factory.mktemp("laser_cavity")
    outs = {}
    for coolant in (20.0, 37.0):
        d = small_demo()
        d["applicator"][0]["coolant_temperature_C"] = coolant
        d["applicator"][0]["cooling"] = "fixed_temperature"
        _, outs[coolant] = run(bioheat_cmd, cli_env, base / f"coolant{coolant:g}", d)
    _, outs["convective"] = run(bioheat_cmd, cli_env, base / "convective", small_demo())
    return outs


@pytest.mark.timeout(TIMEOUT)
def test_cavity_probe_columns(cavity_runs):
    header, cols = read_probes(cavity_runs[20.0])
    assert header[0] == "time_s"
    # per probe, in probe order: NAME, NAME.fluence_W_per_m2, NAME.laser_heat_W_per_m3, then
    # any further NAME.<quantity> columns (damage, ...)
    starts = [header.index(name) for name in ("r1mm", "r3mm", "r6mm")]
    assert starts == sorted(starts) and starts[0] == 1
    for name, i in zip(("r1mm", "r3mm", "r6mm"), starts):
        assert header[i : i + 3] == [name, f"{name}.fluence_W_per_m2", f"{name}.laser_heat_W_per_m3"]
    for name, i, j in zip(("r1mm", "r3mm", "r6mm"), starts, starts[1:] + [len(header)]):
        assert all(c.startswith(f"{name}.") for c in header[i + 1 : j])
    assert cols["time_s"] == pytest.approx([DT_S * n for n in range(int(END_S / DT_S) + 1)])


@pytest.mark.timeout(TIMEOUT)
def test_fluence_follows_the_schedule(cavity_runs):
    _, cols = read_probes(cavity_runs[20.0])
    t = cols["time_s"]
    for name in ("r1mm", "r3mm", "r6mm"):
        phi, q = cols[f"{name}.fluence_W_per_m2"], cols[f"{name}.laser_heat_W_per_m3"]
        on = [i for i, ti in enumerate(t) if ti < T_OFF_S]
        off = [i for i, ti in enumerate(t) if ti >= T_OFF_S]
        assert on and off
        assert all(phi[i] > 0.0 and q[i] > 0.0 for i in on), name
        assert all(phi[i] == 0.0 and q[i] == 0.0 for i in off), name
        # constant power while on: the same light field every row
        assert len({phi[i] for i in on}) == 1
        # Q = mu_a phi, muscle at 980 nm: mu_a = 49 /m
        assert q[0] == pytest.approx(49.0 * phi[0], rel=1e-9)
    # the light decays away from the tip
    assert cols["r1mm.fluence_W_per_m2"][0] > cols["r3mm.fluence_W_per_m2"][0] > cols["r6mm.fluence_W_per_m2"][0]


@pytest.mark.timeout(TIMEOUT)
def test_light_energy_balance(cavity_runs):
    light = summary(cavity_runs[20.0])["light"]
    assert light["model"] == "diffusion" and light["wavelength_nm"] == 980
    expected = P_ON_W * T_OFF_S  # step schedule: 15 W for 20 s
    assert abs(light["delivered_energy_J"] - expected) <= 1e-12 * expected
    assert abs(light["max_relative_imbalance"]) < 1e-8
    assert light["absorbed_energy_J"] + light["lost_energy_J"] == pytest.approx(light["delivered_energy_J"], rel=1e-12)
    # a 30 mm sphere around the tip (mu_eff = 0.3 /mm) absorbs practically everything
    assert abs(light["lost_energy_J"]) < 1e-2 * expected
    (em,) = light["emitters"]
    assert em["applicator"] == "fibre" and em["position"] == 0
    assert em["active_s"] == [0.0, END_S]
    assert em["delivered_energy_J"] == pytest.approx(expected, rel=1e-12)
    pw = em["per_watt"]
    assert pw["source_W"] == 1.0
    assert abs(pw["absorbed_W"] + pw["boundary_loss_W"] - 1.0) < 1e-8


@pytest.mark.timeout(TIMEOUT)
def test_catheter_cooling(cavity_runs):
    cooled, warm = cavity_runs[20.0], cavity_runs[37.0]
    s = summary(cooled)
    _, cols = read_probes(cooled)
    _, warm_cols = read_probes(warm)
    peak = s["max_temperature_C"]
    assert peak > 60.0  # 15 W for 20 s ablates
    # next to the 20 C catheter wall the tissue stays far below the peak, which sits further out
    assert max(cols["r1mm"]) < peak - 20.0
    assert max(cols["r1mm"]) < max(cols["r3mm"])
    wall_distance = (sum(c * c for c in s["max_temperature_location_m"][:2]) ** 0.5)
    assert wall_distance > 0.000825 + 1e-4
    # the same run with coolant at body temperature: warmer at the wall, at every output time
    assert all(c < w for c, w in zip(cols["r1mm"][1:], warm_cols["r1mm"][1:]))
    assert warm_cols["r1mm"][-1] - cols["r1mm"][-1] > 5.0
    assert summary(warm)["max_temperature_C"] > peak


@pytest.mark.timeout(TIMEOUT)
def test_convective_catheter_cooling_is_weaker_than_a_fixed_wall(cavity_runs):
    """The default coolant model (h = 850 W/m2/K to 20 C coolant, docs/MODEL.md section 2)
    removes less heat than a wall held at 20 C (its h -> infinity limit): warmer next to the
    wall at every output time, a higher peak; the summary lists the Robin condition."""
    fixed, conv = cavity_runs[20.0], cavity_runs["convective"]
    _, cols_f = read_probes(fixed)
    _, cols_c = read_probes(conv)
    assert all(f < c for f, c in zip(cols_f["r1mm"][1:], cols_c["r1mm"][1:]))
    assert cols_c["r1mm"][-1] - cols_f["r1mm"][-1] > 1.0
    s = summary(conv)
    assert s["max_temperature_C"] > summary(fixed)["max_temperature_C"]
    bcs = [b for b in s["boundaries"] if b.get("type") == "robin"]
    assert bcs and any("fibre" in str(b) for b in bcs), s["boundaries"]


# --------------------------------------------------------------------------- kernel vs diffusion


@pytest.mark.timeout(TIMEOUT)
def test_line_source_kernel_and_diffusion_agree(bioheat_cmd, cli_env, tmp_path):
    """Homogeneous muscle, a 10 mm line emitter at 5 W for 40 s. Both light models solve the
    same diffusion physics: the kernel is exact for the infinite medium, and the 30 mm sphere is
    practically infinite (exp(-mu_eff 25 mm) ~ 6e-4). What differs is the FE discretisation of
    the diffusion fluence (1 mm elements at the tip against 1/mu_eff = 3.3 mm). On this mesh
    the temperature rises agree to 0.3 % at 3 mm and 1.4 % at 8 mm (and converge with h: 2.8 %
    and 6 % on 1.5 mm elements); asserted: 4 % of the rise, 10 % for the fluence."""
    results = {}
    for model in ("kernel", "diffusion"):
        d = small_demo()
        d["geometry"]["mesh_size_m"] = 0.004
        d["geometry"]["refinement"][0].update(size_m=0.001, distance_m=0.012)
        d["light"]["model"] = model
        ap = d["applicator"][0]
        ap["representation"] = "line"
        del ap["schedule"], ap["interpolation"]
        ap["power_W"] = 5.0
        d["probe"] = [{"name": "r3mm", "position_m": [0.003, 0.0, 0.0]},
                      {"name": "r8mm", "position_m": [0.008, 0.0, 0.0]}]
        _, out = run(bioheat_cmd, cli_env, tmp_path / model, d)
        results[model] = (read_probes(out)[1], summary(out))
    (k, ks), (f, fs) = results["kernel"], results["diffusion"]
    assert ks["light"]["model"] == "kernel" and fs["light"]["model"] == "diffusion"
    for name in ("r3mm", "r8mm"):
        rise_k, rise_f = k[name][-1] - 37.0, f[name][-1] - 37.0
        assert rise_k > 3.0 and rise_f > 3.0
        assert abs(rise_k - rise_f) < 0.04 * rise_k, (name, rise_k, rise_f)
        phi_k, phi_f = k[f"{name}.fluence_W_per_m2"][0], f[f"{name}.fluence_W_per_m2"][0]
        assert abs(phi_k - phi_f) < 0.10 * phi_k, (name, phi_k, phi_f)
    for s in (ks, fs):
        assert s["light"]["delivered_energy_J"] == pytest.approx(5.0 * END_S, rel=1e-12)
        assert s["light"]["absorbed_energy_J"] == pytest.approx(5.0 * END_S, rel=0.03)


# --------------------------------------------------------------------------- pull-back


@pytest.mark.timeout(TIMEOUT)
def test_pull_back_two_positions(bioheat_cmd, cli_env, tmp_path):
    d = small_demo()
    d["geometry"]["refinement"][0]["segment_end_m"] = [0.0, 0.0, 0.012]
    ap = d["applicator"][0]
    del ap["entry_m"], ap["tip_end_m"], ap["schedule"], ap["interpolation"]
    ap.update(tip_center_m=[0.0, 0.0, -0.004], direction=[0.0, 0.0, 1.0], power_W=10.0)
    ap["position"] = [
        {"start_s": 0.0, "tip_center_m": [0.0, 0.0, -0.004]},
        {"start_s": 20.0, "tip_center_m": [0.0, 0.0, 0.004]},
    ]
    d["probe"] = [{"name": "near2", "position_m": [0.003, 0.0, 0.008]},
                  {"name": "near1", "position_m": [0.003, 0.0, -0.008]}]
    _, out = run(bioheat_cmd, cli_env, tmp_path, d)
    light = summary(out)["light"]
    ems = light["emitters"]
    assert [e["position"] for e in ems] == [0, 1]
    assert [e["active_s"] for e in ems] == [[0.0, 20.0], [20.0, END_S]]
    assert ems[0]["tip_center_m"] == pytest.approx([0.0, 0.0, -0.004])
    assert ems[1]["tip_center_m"] == pytest.approx([0.0, 0.0, 0.004])
    for e in ems:
        assert e["delivered_energy_J"] == pytest.approx(10.0 * 20.0, rel=1e-12)
        assert abs(e["per_watt"]["relative_imbalance"]) < 1e-8
    assert light["delivered_energy_J"] == pytest.approx(10.0 * END_S, rel=1e-12)

    _, cols = read_probes(out)
    t, near2, near1 = cols["time_s"], cols["near2"], cols["near1"]
    i20 = t.index(20.0)
    before = (near2[i20] - near2[0]) / 20.0
    after = (near2[-1] - near2[i20]) / (END_S - 20.0)
    assert after > before + 0.3, (before, after)  # K/s
    # and the probe at the first position the other way round
    assert (near1[i20] - near1[0]) / 20.0 > (near1[-1] - near1[i20]) / (END_S - 20.0)
    # the light moves with the tip at t = 20 s
    phi2, phi1 = cols["near2.fluence_W_per_m2"], cols["near1.fluence_W_per_m2"]
    assert phi2[i20] > 5 * phi2[0] and phi1[i20] < phi1[0] / 5


# --------------------------------------------------------------------------- failure


@pytest.mark.timeout(TIMEOUT)
def test_failing_heat_solve_exits_3_without_output(bioheat_cmd, cli_env, tmp_path):
    """One Krylov iteration cannot reach rtol 1e-14 (the light solve keeps its own settings)."""
    d = small_demo()
    d["solver"] = {"rtol": 1e-14, "max_iterations": 1}
    r, out = run(bioheat_cmd, cli_env, tmp_path, d, expect=3)
    assert "did not converge" in r.stderr and "Traceback" not in r.stderr
    assert not out.exists()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")]
