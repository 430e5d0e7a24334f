"""Validation case cases/validation/rabbit_brain_nd_yag_0p75W.toml (docs/VALIDATION.md section 4):
interstitial Nd:YAG (1064 nm), 0.75 W for 1000 s, in normal rabbit brain in vivo (Schatz, Bown,
Wyman, Groves, Wilson, Lasers Med Sci 1992;7:433-439): lesions 6 mm across, measured at their
largest (48 h), so the acute coagulation that Omega >= 1 describes is at most 6 mm. The model
over-predicts it without boiling tissue (the low-power partner of the pig-brain case).

The coarse variant (refinement 0.8 mm instead of 0.5 mm, dt 4 s instead of 1 s) runs serially
and once on 2 ranks. Mesh study of the case (docs/VALIDATION.md section 4), Omega >= 1 volume /
equivalent-sphere diameter: 0.412 mL / 9.23 mm (0.8 mm, 5 mm far field, dt 4 s), 0.415 / 9.25
(0.5 / 5 mm, case), 0.448 / 9.49 (0.35 / 3 mm), 0.465 mL / 9.61 mm (0.25 / 2 mm, finest). The
volume still grows with refinement (steps 0.033, 0.017 mL): the coarse volume is 11 % below the
finest (bound 15 %), its diameter 4 % (bound 5 %); the converged diameter is near 9.8 mm.
"""

from __future__ import annotations

import math

import pytest

from ..conftest import CASES, skip_unless_serial
from .test_validation_cases import _run

pytestmark = pytest.mark.timeout(900)

CASE = CASES / "validation" / "rabbit_brain_nd_yag_0p75W.toml"
COARSE = ["--set", "geometry.refinement[0].size_m=0.0008", "--set", "time.dt_s=4.0",
          "--set", "time.output_interval_s=20.0"]
FINEST_ML = 0.4647  # 0.25 mm at the fibre, 2 mm far field, dt 1 s (55 276 cells)
FINEST_DIAMETER_MM = 9.61  # its equivalent-sphere diameter
MEASURED_DIAMETER_MM = 6.0  # Schatz 1992: 0.75 W x 1000 s, largest at 48 h


def _equivalent_diameter_mm(volume_m3: float) -> float:
    return 1e3 * (6.0 * volume_m3 / math.pi) ** (1.0 / 3.0)


@pytest.fixture(scope="module")
def coarse(tmp_path_factory, bioheat_cmd, cli_env):
    skip_unless_serial()
    return _run(bioheat_cmd, cli_env, CASE, tmp_path_factory.mktemp("rabbit_brain"), COARSE)


def test_rabbit_brain_lesion_over_predicted(coarse):
    """Omega >= 1 zone: volume within 15 % and equivalent diameter within 5 % of the finest run
    (mesh study above), about 9-10 mm across on both axes against 6 mm measured at 48 h (an upper
    bound of the acute lesion): the model is at least 50 % too wide."""
    d = coarse["damage"]
    v_ml = d["ablation_volume_m3"] * 1e6
    assert v_ml == pytest.approx(FINEST_ML, rel=0.15), v_ml
    eq_mm = _equivalent_diameter_mm(d["ablation_volume_m3"])
    assert eq_mm == pytest.approx(FINEST_DIAMETER_MM, rel=0.05), eq_mm
    along_mm, across_mm = 1e3 * d["extent_along_axis_m"], 1e3 * d["extent_across_axis_m"]
    for x in (eq_mm, along_mm, across_mm):
        assert 8.5 < x < 10.5, (eq_mm, along_mm, across_mm)
        assert x > 1.4 * MEASURED_DIAMETER_MM, (x, "the model now reaches the measurement: update docs/VALIDATION.md")


def test_rabbit_brain_hardly_boils(coarse):
    """Unlike the pig case (0.56 mL above 100 C), only the nodes on the fibre pass 100 C here:
    the zone above 100 C is below 0.01 mL (about 0.002 mL, under 1 % of the lesion) and the
    peak stays below 150 C, so the run needs no raised ceiling. The over-prediction is not
    explained by boiling."""
    tr = coarse["temperature_range"]
    assert tr["ceiling_C"] == 150.0
    assert tr["above_model_limit"] and 100.0 < tr["peak_C"] < 150.0
    v100 = tr["volume_above_model_limit_m3"]
    assert 0.0 < v100 < 0.01e-6, v100
    assert v100 < 0.01 * coarse["damage"]["ablation_volume_m3"]
    p = coarse["final_probe_temperatures_C"]
    assert all(math.isfinite(t) for t in p.values())
    assert p["r2mm"] > p["r3mm"] > p["r6mm"] > 37.0, p


def test_rabbit_brain_on_two_ranks_matches_serial(coarse, bioheat_cmd, cli_env, mpiexec_exe, tmp_path):
    par = _run([mpiexec_exe, "-n", "2", *bioheat_cmd], cli_env, CASE, tmp_path / "mpi", COARSE)
    assert par["ranks"] == 2 and par["mesh"]["cells"] == coarse["mesh"]["cells"]
    # an indicator's quadrature: partition round-off may flip a point at the threshold (as Marqa)
    assert par["damage"]["ablation_volume_m3"] == pytest.approx(coarse["damage"]["ablation_volume_m3"], rel=1e-3)
    assert par["max_temperature_C"] == pytest.approx(coarse["max_temperature_C"], rel=1e-6)
