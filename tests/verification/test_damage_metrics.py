"""Ablation-zone metrics and the safety-point control loop on designed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from mpi4py import MPI

from solver.config import CaseError
from solver.case_loader import parse_case
from solver.simulation import run_case

pytestmark = pytest.mark.mpi

RI, RO, TI = 0.004, 0.02, 80.0  # shell radii (m), inner wall temperature (C)
K, W = 0.49, 2535.0  # muscle


def shell_theta(r):
    """Steady Pennes in a shell, theta(RI) = TI - 37, theta(RO) = 0:
    theta = theta_i RI sinh(m (RO - r)) / (r sinh(m (RO - RI)))."""
    m = math.sqrt(W / K)
    return (TI - 37.0) * RI * np.sinh(m * (RO - r)) / (r * math.sinh(m * (RO - RI)))


def isotherm_radius(level_C):
    lo, hi = RI, RO
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if shell_theta(mid) + 37.0 > level_C:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _shell_case(h):
    return parse_case(
        {
            "name": "shell_isotherm",
            "geometry": {"kind": "shell", "outer_radius_m": RO, "inner_radius_m": RI, "mesh_size_m": h,
                         "refinement": [{"point_m": [0, 0, 0], "size_m": h / 2, "distance_m": 0.012}]},
            "regions": {"body": "muscle"},
            "boundary": [
                {"type": "dirichlet", "surface": "inner", "temperature_C": TI},
                {"type": "dirichlet", "surface": "outer", "temperature_C": 37.0},
            ],
            # backward Euler with dt >> rho c / W reaches the steady state in a few steps
            "time": {"mode": "transient", "dt_s": 1.0e5, "end_time_s": 1.0e6},
            "damage": {"ablation_criterion": "isotherm", "ablation_isotherm_C": 57.0},
            "solver": {"rtol": 1e-12, "atol": 1e-14},
        }
    )


def test_isotherm_ablation_volume_of_a_heated_shell(shared_tmp):
    """The 57 C isotherm of the steady shell solution is a sphere of radius r57: the ablated
    volume is 4/3 pi (r57^3 - RI^3). The mesh's faceted inner sphere and the P1 level set
    make the error O(h^2); measured against the closed form at two sizes."""
    r57 = isotherm_radius(57.0)
    exact = 4.0 / 3.0 * math.pi * (r57**3 - RI**3)
    errors = []
    for h in (0.003, 0.0015):
        summary = run_case(_shell_case(h), shared_tmp / f"h{h}", progress=False)
        errors.append(abs(summary["damage"]["ablation_volume_m3"] - exact) / exact)
    order = math.log(errors[0] / errors[-1]) / math.log(2.0)
    print("shell isotherm volume errors", errors, "order", order)
    # measured: 12.7 % and 4.3 % (order 1.6): the 57 C isotherm lies 2.3 mm from a wall at
    # 80 C, a steep gradient on these meshes; the order is that of the P1 field (2) spoiled
    # a little by the non-nested unstructured meshes.
    assert errors[-1] < 0.05 and order > 1.3, (errors, exact)


def test_metrics_equal_on_world_and_self(shared_tmp):
    case = _shell_case(0.003)
    world = run_case(case, shared_tmp / "world", progress=False)
    out_self = shared_tmp / f"self{MPI.COMM_WORLD.rank}"
    alone = run_case(case, out_self, comm=MPI.COMM_SELF, progress=False)
    a, b = world["damage"], alone["damage"]
    assert a["ablation_volume_m3"] == pytest.approx(b["ablation_volume_m3"], rel=1e-9)
    assert a["region_volume_m3"]["body"] == pytest.approx(b["region_volume_m3"]["body"], rel=1e-12)
    assert world["max_temperature_C"] == pytest.approx(alone["max_temperature_C"], rel=1e-10)


def _trip_case(monitor: bool):
    data = {
        "name": "trip",
        "geometry": {
            "kind": "box", "lower_m": [-0.02, -0.02, -0.02], "upper_m": [0.02, 0.02, 0.02], "mesh_size_m": 0.004,
            "inclusion": [{"name": "spinal_cord", "shape": "box", "center_m": [0.0, 0.012, 0.0],
                           "size_m": [0.008, 0.006, 0.03]}],
            "refinement": [{"segment_start_m": [0, 0, -0.005], "segment_end_m": [0, 0, 0.005],
                            "size_m": 0.0015, "distance_m": 0.01}],
        },
        "regions": {"body": "muscle", "spinal_cord": "spinal_cord"},
        "boundary": [{"type": "dirichlet", "surface": "outer", "temperature_C": 37.0}],
        "applicator": [{"name": "fibre", "tip_center_m": [0, 0, 0], "direction": [0, 0, 1], "power_W": 8.0}],
        "time": {"mode": "transient", "dt_s": 2.0, "end_time_s": 100.0},
        # unguarded, the 8 W line tip reaches 150.5 C at 100 s, past the default ceiling (150 C)
        "solver": {"rtol": 1e-10, "temperature_ceiling_C": 200.0},
    }
    if monitor:
        data["monitor"] = [{"name": "cord_edge", "position_m": [0.0, 0.0095, 0.0], "high_limit_C": 43.0}]
    return parse_case(data)


def test_safety_point_trips_within_one_step_and_protects_the_cord(shared_tmp):

    free = run_case(_trip_case(False), shared_tmp / "free", progress=False)
    guarded_case = _trip_case(True)
    guarded = run_case(guarded_case, shared_tmp / "guarded", progress=False)
    events = guarded["control"]["events"]
    assert len(events) == 1 and events[0]["event"].startswith("laser stopped"), events
    t_trip = events[0]["time_s"]
    # the crossing happened during the step ending at t_trip: the reading then exceeds the
    # limit, the reading one step earlier did not (probes.csv has every step)
    import csv

    rows = list(csv.DictReader(open(shared_tmp / "guarded" / "probes.csv")))
    series = {float(r["time_s"]): float(r["cord_edge"]) for r in rows}
    assert series[t_trip] > 43.0 >= series[t_trip - 2.0]
    # the laser delivers nothing from the next step on
    power = list(csv.DictReader(open(shared_tmp / "guarded" / "power.csv")))
    after = [float(p["delivered_power_W"]) for p in power if float(p["time_s"]) > t_trip]
    before = [float(p["delivered_power_W"]) for p in power if float(p["time_s"]) <= t_trip]
    assert after and max(after) == 0.0 and min(before) == pytest.approx(8.0)
    assert guarded["control"]["delivered_energy_J"] == pytest.approx(8.0 * t_trip)
    cord_free = free["damage"]["critical"]["spinal_cord"]["max_temperature_C"]
    cord_guarded = guarded["damage"]["critical"]["spinal_cord"]["max_temperature_C"]
    assert cord_guarded < cord_free - 0.5, (cord_guarded, cord_free)


def test_bad_damage_inputs():
    base = _trip_case(True).model_dump(exclude={"case_dir"})
    bad = dict(base, damage={"critical_regions": ["nerve_roots"]})
    with pytest.raises(CaseError, match=r"damage.critical_regions\[0\] = 'nerve_roots'.*allowed"):
        parse_case(bad)
    bad = dict(base, monitor=[{"name": "m", "position_m": [0.5, 0, 0], "high_limit_C": 45.0}])
    with pytest.raises(CaseError, match=r"monitor\[0\].position_m = \[0.5, 0.0, 0.0\].*outside"):
        parse_case(bad)
    bad = dict(base, monitor=[{"name": "m", "position_m": [0, 0.009, 0], "high_limit_C": 36.0}])
    with pytest.raises(CaseError, match=r"monitor\[0\].high_limit_C = 36.0.*greater than 37"):
        parse_case(bad)
