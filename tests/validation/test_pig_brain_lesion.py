"""Validation case cases/validation/pig_brain_nd_yag_4W.toml (docs/VALIDATION.md section 3):
interstitial Nd:YAG (1064 nm) through a bare fibre, 4 W for 300 s, in normal pig brain in vivo;
the largest lesion measured by histology was 12 mm across. The model over-predicts it, and
these tests pin that miss and its cause (tissue above 100 C, where the model ignores boiling).

The coarse variant (refinement 0.8 mm instead of 0.5 mm, dt 3 s instead of 1 s) runs serially
and once on 2 ranks. Mesh study of the case (docs/VALIDATION.md section 3): Omega >= 1 volume
3.747 / 3.776 / 3.783 mL at 0.8 mm + dt 3 s / 0.5 mm / 0.35 mm (3 mm far field), so the coarse
volume is within 1 % of the finest.
"""

from __future__ import annotations

import math

import pytest

from ..conftest import CASES, skip_unless_serial
from .test_validation_cases import _run

pytestmark = pytest.mark.timeout(900)

CASE = CASES / "validation" / "pig_brain_nd_yag_4W.toml"
COARSE = ["--set", "geometry.refinement[0].size_m=0.0008", "--set", "time.dt_s=3.0",
          "--set", "time.output_interval_s=30.0"]
FINEST_ML = 3.783  # 0.35 mm at the fibre, 3 mm far field, dt 1 s
MEASURED_MAX_DIAMETER_MM = 12.0  # largest lesion of the study (4 W, 5 min), histology
POWER_W, ON_S = 4.0, 300.0
WATER_LATENT_HEAT_J_PER_KG = 2.26e6
WATER_FRACTION = 0.77  # water mass fraction of brain: about 0.7 (white) to 0.8 (grey matter)
DENSITY_KG_PER_M3 = 1075.0  # the case's tissue (library spinal_cord, IT'IS)


@pytest.fixture(scope="module")
def coarse(tmp_path_factory, bioheat_cmd, cli_env):
    skip_unless_serial()
    return _run(bioheat_cmd, cli_env, CASE, tmp_path_factory.mktemp("pig_brain"), COARSE)


def test_pig_brain_lesion_over_predicted(coarse):
    """Omega >= 1 zone: within the mesh study's 1 % (bound 3 %) of the finest run, and about 19-20 mm
    across on both axes against 12 mm measured (the largest lesion of the study): the model is
    more than 40 % too wide, far outside any scatter the abstract allows."""
    d = coarse["damage"]
    v_ml = d["ablation_volume_m3"] * 1e6
    assert v_ml == pytest.approx(FINEST_ML, rel=0.03), v_ml
    eq_mm = 1e3 * (6.0 * d["ablation_volume_m3"] / math.pi) ** (1.0 / 3.0)
    along_mm, across_mm = 1e3 * d["extent_along_axis_m"], 1e3 * d["extent_across_axis_m"]
    for x in (eq_mm, along_mm, across_mm):
        assert 18.0 < x < 21.5, (eq_mm, along_mm, across_mm)
        assert x > 1.4 * MEASURED_MAX_DIAMETER_MM, (x, "the model now reaches the measurement: update docs/VALIDATION.md")


def test_pig_brain_boiling_zone_explains_the_energy(coarse):
    """The model heats about 0.56 mL above 100 C (the run reports it and warns). Boiling the water
    of that volume would take about as much energy as the laser delivers (1.2 kJ), which the model
    puts into conduction instead: why its lesion is too large. Bounds: 0.4-0.8 mL, and the latent
    heat of that water is 60-150 % of the delivered energy."""
    tr = coarse["temperature_range"]
    assert tr["above_model_limit"] and tr["peak_C"] > 100.0
    assert any("above 100 C" in w for w in coarse["warnings"])
    v100 = tr["volume_above_model_limit_m3"]
    assert 0.4e-6 < v100 < 0.8e-6, v100
    latent_j = v100 * DENSITY_KG_PER_M3 * WATER_FRACTION * WATER_LATENT_HEAT_J_PER_KG
    assert 0.6 < latent_j / (POWER_W * ON_S) < 1.5, latent_j
    assert all(math.isfinite(t) for t in coarse["final_probe_temperatures_C"].values())


def test_pig_brain_on_two_ranks_matches_serial(coarse, bioheat_cmd, cli_env, mpiexec_exe, tmp_path):
    par = _run([mpiexec_exe, "-n", "2", *bioheat_cmd], cli_env, CASE, tmp_path / "mpi", COARSE)
    assert par["ranks"] == 2 and par["mesh"]["cells"] == coarse["mesh"]["cells"]
    # an indicator's quadrature: partition round-off may flip a point at the threshold (as Marqa)
    assert par["damage"]["ablation_volume_m3"] == pytest.approx(coarse["damage"]["ablation_volume_m3"], rel=1e-3)
    assert par["max_temperature_C"] == pytest.approx(coarse["max_temperature_C"], rel=1e-6)
