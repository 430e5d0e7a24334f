"""Validation cases (cases/validation/, docs/VALIDATION.md) in coarse variants: the model's
numbers beside published measurements, including where the model misses them.

Coarse settings (mesh, time step) are passed with --set; the mesh-refinement studies behind the
tolerances are in docs/VALIDATION.md. The runs are serial CLI runs; one of them is repeated on
2 ranks and must give the serial numbers.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from ..conftest import CASES, run_cli_summary, skip_unless_serial

pytestmark = pytest.mark.timeout(900)

VALIDATION = CASES / "validation"
# Marqa 2011 coarse: refinement 0.8 mm (case: 0.6 mm), dt 3 s. Mesh study of the case with dt 1 s
# (docs/VALIDATION.md section 1): 0.760 / 0.807 / 0.823 mL at h = 0.6 / 0.3 / 0.2 mm near the fibre
# (5 / 3 / 2 mm far field).
MARQA_COARSE = ["--set", "geometry.refinement[0].size_m=0.0008", "--set", "time.dt_s=3.0",
                "--set", "time.output_interval_s=30.0"]
MARQA_CONVERGED_ML = 0.83  # Richardson-type estimate from the three meshes above
MARQA_HISTOLOGY_ML = (0.974, 0.059)  # mean +- SD, Marqa et al. 2011
# minipig coarse: 1.5 mm in cord, cortex and at the tip (case: 0.8-1 mm), dt 4 s (case: 1 s)
MINIPIG_COARSE = ["--set", "geometry.mesh_size_m=0.008", "--set", "geometry.soft_tissue_margin_m=0.012",
                  "--set", "geometry.tip_size_m=0.0015", "--set", "geometry.cortex_size_m=0.0015",
                  "--set", "geometry.cord_size_m=0.0015", "--set", "time.dt_s=4.0",
                  "--set", "time.output_interval_s=20.0"]


def _run(cmd, cli_env, case: Path, out: Path, extra) -> dict:
    return run_cli_summary(cmd, cli_env, case, out, "--no-report", *extra)[0]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, bioheat_cmd, cli_env):
    skip_unless_serial()
    base = tmp_path_factory.mktemp("validation")
    out = {"marqa": _run(bioheat_cmd, cli_env, VALIDATION / "marqa2011_rat_prostate.toml", base / "marqa", MARQA_COARSE)}
    for name in ("intact", "breached"):
        out[name] = _run(bioheat_cmd, cli_env, VALIDATION / f"minipig_vertebra_{name}.toml", base / name, MINIPIG_COARSE)
    return out


def test_marqa2011_necrosis_volume(runs):
    """Omega >= 1 volume: the coarse run is within its measured mesh error (-9 %, bound 12 %) of
    the converged 0.83 mL, which lies 15 % (2.4 SD) below the histological 0.974 +- 0.059 mL:
    the model under-predicts this necrosis (docs/VALIDATION.md section 1 says why)."""
    v_ml = runs["marqa"]["damage"]["ablation_volume_m3"] * 1e6
    assert v_ml == pytest.approx(MARQA_CONVERGED_ML, rel=0.12), v_ml
    mean, sd = MARQA_HISTOLOGY_ML
    assert v_ml < mean - sd, (v_ml, "the model now reaches the measured range: update docs/VALIDATION.md")
    assert v_ml > 0.7 * mean, v_ml


def test_minipig_breach_contrast(runs):
    """Same applicator and (assumed) dose, intact wall and a 4 mm hole in the posterior cortex.
    With the cited anatomy and convective catheter cooling the dose heats the canal so much that
    both walls fail at the dura and the cord sits near its threshold in both: the model does not
    show the study's contrast (cord injury only where the cortex was breached), and the coarse
    variant resolves no difference between the two (docs/VALIDATION.md section 2)."""
    i, b = runs["intact"], runs["breached"]
    for s in (i, b):
        assert not s["safety"]["pass"]
        dura, cord = s["damage"]["critical"]["dura"], s["damage"]["critical"]["spinal_cord"]
        assert dura["max_temperature_C"] > 48.0 and dura["max_cem43_min"] > 50.0, dura
        assert 43.5 < cord["max_temperature_C"] < 46.5 and 1.0 < cord["max_cem43_min"] < 10.0, cord
    # no contrast resolved at the cord: within 1 K and within a factor 2 of the dose
    ci, cb = i["damage"]["critical"]["spinal_cord"], b["damage"]["critical"]["spinal_cord"]
    assert abs(cb["max_temperature_C"] - ci["max_temperature_C"]) < 1.0, (ci, cb)
    assert 0.5 < cb["max_cem43_min"] / ci["max_cem43_min"] < 2.0, (ci, cb)
    # lesion size: equivalent-sphere diameter of the Omega >= 1 zone, about 17 mm under the
    # assumed dose (6 W, 120 s) against 8-11 mm measured with the paper's (unknown) dose
    d_mm = 1e3 * (6.0 * i["damage"]["ablation_volume_m3"] / math.pi) ** (1.0 / 3.0)
    assert 15.5 < d_mm < 19.0, d_mm


def test_marqa2011_on_two_ranks_matches_serial(runs, bioheat_cmd, cli_env, mpiexec_exe, tmp_path):
    par = _run([mpiexec_exe, "-n", "2", *bioheat_cmd], cli_env, VALIDATION / "marqa2011_rat_prostate.toml",
               tmp_path / "mpi", MARQA_COARSE)
    ser = runs["marqa"]
    assert par["ranks"] == 2 and par["mesh"]["cells"] == ser["mesh"]["cells"]
    # partition round-off can switch a node's coagulation state at the threshold (1e-4 in the
    # spine test); the volume is a quadrature of an indicator, so allow 1e-3
    assert par["damage"]["ablation_volume_m3"] == pytest.approx(ser["damage"]["ablation_volume_m3"], rel=1e-3)
