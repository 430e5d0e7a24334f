"""The catheter coolant model (solver.catheter, docs/MODEL.md section 2): the default
heat-transfer coefficient, the case keys and the boundary condition they make."""

from __future__ import annotations

import math

import pytest

from solver import catheter
from solver.case_checks import coolant_boundaries
from solver.case_loader import parse_case
from solver.config import CaseError, DirichletBC, RobinBC


def test_coefficient_is_the_series_of_wall_conduction_and_laminar_convection():
    r_o, t, k_w, r_f, k_c, nu = 1e-3, 2e-4, 0.25, 3e-4, 0.6, 4.0
    r_i = r_o - t
    h_wall = k_w / (r_o * math.log(r_o / r_i))
    h_flow = nu * k_c / (2 * (r_i - r_f)) * r_i / r_o
    got = catheter.catheter_heat_transfer_coefficient(r_o, t, k_w, r_f, k_c, nu)
    assert got == pytest.approx(1.0 / (1.0 / h_wall + 1.0 / h_flow), rel=1e-12)
    # a thin wall conducts like a plane one: h_wall -> k / t; with a very good coolant h -> h_wall
    thin = catheter.catheter_heat_transfer_coefficient(1e-3, 1e-6, 0.2, 0.0, 1e9)
    assert thin == pytest.approx(0.2 / 1e-6, rel=1e-3)


def test_default_value_and_its_range():
    h = catheter.catheter_heat_transfer_coefficient()
    assert catheter.DEFAULT_COOLANT_HEAT_TRANSFER_W_PER_M2K == pytest.approx(h, rel=0.01)
    assert catheter.DEFAULT_COOLANT_HEAT_TRANSFER_W_PER_M2K == 850.0
    # the documented range: wall 0.1-0.2 mm, polymer 0.15-0.3 W/m/K
    corners = [catheter.catheter_heat_transfer_coefficient(wall_thickness_m=t, wall_conductivity_W_per_mK=k)
               for t in (1e-4, 2e-4) for k in (0.15, 0.3)]
    assert 530 < min(corners) < 550 and 1370 < max(corners) < 1390


@pytest.mark.parametrize("bad", [dict(wall_thickness_m=0.0), dict(fibre_radius_m=0.7e-3),
                                 dict(wall_conductivity_W_per_mK=-1.0), dict(outer_radius_m=float("nan"))])
def test_coefficient_refuses_impossible_inputs(bad):
    with pytest.raises(ValueError):
        catheter.catheter_heat_transfer_coefficient(**bad)


def _case(**ap):
    base = {"name": "fibre", "tip_center_m": [0.0, 0.0, 0.0], "direction": [0.0, 0.0, 1.0],
            "representation": "cavity", "power_W": 5.0}
    return parse_case({
        "name": "t",
        "geometry": {"kind": "sphere", "radius_m": 0.02, "mesh_size_m": 0.004},
        "regions": {"body": "muscle"},
        "applicator": [base | ap],
    })


def test_convective_cooling_is_the_default_on_the_whole_catheter():
    case = _case()
    ap = case.applicator[0]
    assert ap.cooling == "convective" and ap.cooled_surface == "catheter"
    assert ap.coolant_heat_transfer_W_per_m2K == catheter.DEFAULT_COOLANT_HEAT_TRANSFER_W_PER_M2K
    (bc,) = coolant_boundaries(case)
    assert isinstance(bc, RobinBC) and bc.surfaces() == ["fibre"]
    assert bc.heat_transfer_coefficient_W_per_m2K == 850.0 and bc.ambient_temperature_C == 20.0
    # the resolved case states the coefficient used
    assert case.model_dump()["applicator"][0]["coolant_heat_transfer_W_per_m2K"] == 850.0


def test_cooling_choices():
    (bc,) = coolant_boundaries(_case(coolant_heat_transfer_W_per_m2K=2000.0, cooled_surface="tip"))
    assert isinstance(bc, RobinBC) and bc.surfaces() == ["fibre_tip"]
    assert bc.heat_transfer_coefficient_W_per_m2K == 2000.0
    (bc,) = coolant_boundaries(_case(cooling="fixed_temperature", coolant_temperature_C=15.0))
    assert isinstance(bc, DirichletBC) and bc.surfaces() == ["fibre"] and bc.temperature_C == 15.0
    # a line applicator has no wall: no coefficient is filled in, no condition made
    line = _case(representation="line")
    assert line.applicator[0].coolant_heat_transfer_W_per_m2K is None and coolant_boundaries(line) == []


def test_fixed_temperature_with_a_coefficient_is_refused():
    with pytest.raises(CaseError) as err:
        _case(cooling="fixed_temperature", coolant_heat_transfer_W_per_m2K=850.0)
    assert "coolant_heat_transfer_W_per_m2K = 850.0 is used only with cooling = 'convective'" in str(err.value)
    with pytest.raises(CaseError) as err:
        _case(cooling="water")
    assert "cooling" in str(err.value)
