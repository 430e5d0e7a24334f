"""The shipped T8 spine cases end to end (mesh, light, heat, damage, safety, report).

Intact posterior cortex: the cord and dura stay within the limits (45 C, 6 CEM43).
Breached posterior wall, same applicator and dose: the tumour conducts and transmits light
into the epidural space and the dura exceeds 45 C, so the verdict fails.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ..conftest import CASES

pytestmark = pytest.mark.timeout(600)


def _run(bioheat_cmd, cli_env, case: Path, out: Path) -> dict:
    r = subprocess.run(
        [*bioheat_cmd, "run", str(case), "--out", str(out), "--quiet"],
        capture_output=True, text=True, env=cli_env, timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "spinal_cord: max" in r.stdout  # what `make run` shows a person
    return json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def spine_runs(tmp_path_factory, bioheat_cmd, cli_env):
    from mpi4py import MPI

    if MPI.COMM_WORLD.size > 1:
        pytest.skip("runs the CLI serially")
    base = tmp_path_factory.mktemp("spine")
    return {
        name: _run(bioheat_cmd, cli_env, CASES / "spine" / f"T8_lytic_{name}.toml", base / name)
        | {"dir": str(base / name)}
        for name in ("intact", "breached")
    }


def test_intact_case_is_safe_and_ablates_the_tumour(spine_runs):
    s = spine_runs["intact"]
    assert s["safety"]["pass"], s["safety"]["verdict"]
    crit = s["damage"]["critical"]
    assert crit["spinal_cord"]["max_temperature_C"] < 45.0
    assert crit["dura"]["max_cem43_min"] < 6.0
    assert crit["spinal_cord"]["margin_m"] > 0.0  # the ablation zone does not reach the cord
    assert s["damage"]["tumour_coverage"]["tumour"] > 0.5
    assert abs(s["light"]["max_relative_imbalance"]) < 1e-8
    assert "csf" in s["light"]["diffusion_invalid_regions"]
    for png in ("maps.png", "probes.png", "dose_histogram.png", "report.md"):
        assert (Path(s["dir"]) / png).stat().st_size > 0


def test_breached_wall_fails_safety_with_the_same_dose(spine_runs):
    """Same applicator and requested dose. Intact: the whole dose runs, nothing trips, the
    verdict passes. Breached: the tumour carries heat and light to the dura, which runs more
    than 1 K hotter, so a safety point trips or the verdict fails (in the shipped case the
    dura's hottest node, on its face against the tumour, exceeds 45 C while the safety point
    0.3 mm inside the dura stays below its limit: the verdict fails)."""
    intact, breached = spine_runs["intact"], spine_runs["breached"]
    stops_i = [e for e in intact["control"]["events"] if e["event"].startswith("laser stopped")]
    stops_b = [e for e in breached["control"]["events"] if e["event"].startswith("laser stopped")]
    assert not stops_i and intact["safety"]["pass"]
    assert intact["control"]["delivered_energy_J"] == pytest.approx(intact["control"]["requested_energy_J"])
    assert breached["control"]["requested_energy_J"] == pytest.approx(intact["control"]["requested_energy_J"])
    assert stops_b or not breached["safety"]["pass"], (breached["control"], breached["safety"])
    dura_i = intact["damage"]["critical"]["dura"]["max_temperature_C"]
    dura_b = breached["damage"]["critical"]["dura"]["max_temperature_C"]
    assert dura_b > dura_i + 1.0, (dura_i, dura_b)


def test_intact_case_on_two_ranks_matches_serial(spine_runs, bioheat_cmd, cli_env, mpiexec_exe, tmp_path):
    """The whole pipeline (spine mesh distributed, light, coagulation, dose, metrics) on
    2 ranks gives the serial numbers (Krylov tolerance 1e-10 bounds the difference)."""
    out = tmp_path / "mpi"
    r = subprocess.run(
        [mpiexec_exe, "-n", "2", *bioheat_cmd, "run", str(CASES / "spine" / "T8_lytic_intact.toml"),
         "--out", str(out), "--quiet", "--no-report"],
        capture_output=True, text=True, env=cli_env, timeout=600,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    par = json.loads((out / "summary.json").read_text())
    ser = spine_runs["intact"]
    assert par["ranks"] == 2 and par["mesh"]["cells"] == ser["mesh"]["cells"]
    for region in ("spinal_cord", "dura"):
        assert par["damage"]["critical"][region]["max_temperature_C"] == pytest.approx(
            ser["damage"]["critical"][region]["max_temperature_C"], rel=1e-6
        )
    assert par["damage"]["ablation_volume_m3"] == pytest.approx(ser["damage"]["ablation_volume_m3"], rel=1e-4)
    assert par["safety"]["pass"] == ser["safety"]["pass"]
