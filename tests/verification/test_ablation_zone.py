"""The ablation zone against a closed form: a temperature field held fixed in time whose
isotherms are spheres, so the Omega, CEM43 and isotherm zones are balls of known radius.

The field is the manufactured solution 'hot_sphere' (37 + 23 (1 - r^2/R^2) C in a ball of
R = 1 cm): quadratic, so P2 represents it exactly and a P2 run sees only the sampling error
of the zone; P1 adds its O(h^2) temperature error. Held for t_end, the Arrhenius dose is
Omega(r) = t_end A exp(-E_a / (R_gas T(r))), hence the Omega = 1 surface is the sphere where
the rate equals 1/t_end; CEM43 = (t_end / 60) 0.5^(43 - T) >= 240 min likewise.
"""

from __future__ import annotations

import math

import pytest

from solver.analytic import hot_sphere_radius
from solver.case_loader import parse_case
from solver.damage import ARRHENIUS_SETS, GAS_CONSTANT_J_PER_MOLK, KELVIN
from solver.simulation import run_case

pytestmark = pytest.mark.mpi

T_END = 100.0  # s


def omega_level_C() -> float:
    """Temperature (C) whose Henriques rate is 1 / T_END: Omega = 1 after T_END."""
    A, Ea = ARRHENIUS_SETS["henriques"]
    return Ea / (GAS_CONSTANT_J_PER_MOLK * math.log(A * T_END)) - KELVIN


def cem43_level_C(dose_min: float = 240.0) -> float:
    return 43.0 + math.log2(dose_min * 60.0 / T_END)


def ball(r: float) -> float:
    return 4.0 / 3.0 * math.pi * r**3


def _case(h: float, degree: int, criterion: str):
    return parse_case(
        {
            "name": f"hot_sphere_{criterion}",
            "geometry": {"kind": "sphere", "radius_m": 0.01, "mesh_size_m": h},
            "regions": {"body": "muscle"},
            "boundary": [{"type": "dirichlet", "surface": "outer", "temperature_C": 37.0}],
            "time": {"mode": "transient", "dt_s": 20.0, "end_time_s": T_END},
            "damage": {"ablation_criterion": criterion, "critical_regions": []},
            "manufactured": {"solution": "hot_sphere"},
            "solver": {"element_degree": degree, "rtol": 1e-12, "atol": 1e-14},
            "output": {"fields": False},
        }
    )


def _volume(tmp, h, degree, criterion) -> float:
    s = run_case(_case(h, degree, criterion), tmp / f"{criterion}_p{degree}_h{h}", progress=False)
    return s["damage"]["ablation_volume_m3"]


def test_omega_zone_converges_and_p1_p2_agree(shared_tmp):
    """Omega = 1 surface: radius 5.6 mm, at h = 2 and 1 mm. The volume error follows the
    temperature error at the surface (dV/V = 3 dT / (r |dT/dr|)): order 2 for P1, 3 for P2
    (whose T is exact up to the faceted boundary), plus the sampling error of the indicator.
    Measured: P1 9.7 % -> 2.4 % (order 2.05), P2 0.49 % -> 0.050 % (order 3.3); the old
    nodal-interpolant zone gave P2 volumes off by tens of per cent."""
    exact = ball(hot_sphere_radius(omega_level_C()))
    sizes = (0.002, 0.001)
    err = {}
    vol = {}
    for degree in (1, 2):
        vol[degree] = [_volume(shared_tmp, h, degree, "omega") for h in sizes]
        err[degree] = [abs(v - exact) / exact for v in vol[degree]]
    orders = {d: math.log(err[d][0] / err[d][1]) / math.log(2.0) for d in err}
    print("omega zone: exact", exact, "volumes", vol, "errors", err, "orders", orders)
    assert orders[1] > 1.7 and orders[2] > 2.5, orders
    assert err[1][-1] < 0.03 and err[2][-1] < 2e-3, err
    # P1 and P2 agree to within the P1 error (the P2 error is ten times smaller)
    assert abs(vol[1][-1] - vol[2][-1]) / exact < 1.2 * err[1][-1] + err[2][-1]


@pytest.mark.parametrize("criterion, level", [("cem43", cem43_level_C()), ("isotherm", 57.0)])
def test_cem43_and_isotherm_zones(shared_tmp, criterion, level):
    exact = ball(hot_sphere_radius(level))
    vols = [_volume(shared_tmp, 0.001, degree, criterion) for degree in (1, 2)]
    errors = [abs(v - exact) / exact for v in vols]
    print(criterion, "exact", exact, "P1, P2", vols, "errors", errors)
    # Bounds scaled from the omega test at this size (P1 < 3 %, P2 < 0.3 %): with a similar
    # temperature error dT, dV/V = 3 dT / (r |dT/dr|) = 3 dT R^2 / (46 K r^2) grows as 1/r^2
    # (the 57 C sphere has r = 3.6 mm against 5.6 mm). Measured: CEM43 1.6 % / 0.17 %,
    # 57 C 5.1 % / 0.20 %.
    scale = (hot_sphere_radius(omega_level_C()) / hot_sphere_radius(level)) ** 2
    assert errors[0] < 0.03 * scale and errors[1] < 3e-3 * scale, (errors, scale)
