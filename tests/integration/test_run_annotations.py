"""What a run reports about its input: the region of every probe and monitor (a monitor
named after a region it does not sit in is warned), and a critical region whose maximum came
at the last step (still heating: the verdict is a lower bound). Also on 2 ranks."""

from __future__ import annotations

import copy

import pytest

from solver.case_loader import parse_case
from solver.simulation import run_case

BASE = {
    "name": "annotations",
    "geometry": {
        "kind": "box", "lower_m": [0, 0, 0], "upper_m": [0.03, 0.03, 0.03], "mesh_size_m": 0.004,
        "inclusion": [{"name": "cord", "center_m": [0.021, 0.015, 0.015], "radius_m": 0.003}],
        "refinement": [{"point_m": [0.015, 0.015, 0.015], "size_m": 0.0015, "distance_m": 0.01}],
    },
    "regions": {"body": "muscle", "cord": "spinal_cord"},
    "boundary": [{"surface": "outer", "type": "dirichlet", "temperature_C": 37.0}],
    "source": [{"type": "point", "position_m": [0.014, 0.015, 0.015], "power_W": 1.0}],
    "damage": {"critical_regions": ["cord"]},
    "time": {"dt_s": 5.0, "end_time_s": 30.0},
    "probe": [{"name": "in_cord", "position_m": [0.021, 0.015, 0.015]},
              {"name": "in_body", "position_m": [0.005, 0.015, 0.015]}],
    "monitor": [{"name": "cord_guard", "position_m": [0.0175, 0.015, 0.015], "high_limit_C": 45.0}],
    "output": {"fields": False},
}


@pytest.mark.mpi
def test_regions_of_probes_and_still_heating_flag(shared_tmp):
    case = parse_case(copy.deepcopy(BASE))
    s = run_case(case, shared_tmp / "heating", progress=False)
    regions = {p["name"]: p["region"] for p in s["probes"]}
    assert regions == {"in_cord": "cord", "in_body": "body", "cord_guard": "body"}
    assert any("monitor[0] ('cord_guard')" in w and "region 'body', not in 'cord'" in w for w in s["warnings"])
    cord = s["damage"]["critical"]["cord"]
    assert cord["max_temperature_time_s"] == pytest.approx(30.0)
    assert cord["still_heating_at_end"] is True
    assert s["safety"]["lower_bound"] is True
    assert "LOWER BOUND: cord still heating at the end (t = 30 s)" in s["safety"]["verdict"]
    assert any("critical region 'cord' was hottest at the last step" in w for w in s["warnings"])


@pytest.mark.mpi
def test_cooled_down_case_is_not_flagged(shared_tmp):
    data = copy.deepcopy(BASE)
    data["source"][0] = {"type": "point", "position_m": [0.014, 0.015, 0.015],
                         "schedule": [[0.0, 1.0], [10.0, 0.0]], "interpolation": "step"}
    data["time"] = {"dt_s": 10.0, "end_time_s": 300.0}
    s = run_case(parse_case(data), shared_tmp / "cooled", progress=False)
    cord = s["damage"]["critical"]["cord"]
    assert cord["max_temperature_time_s"] < 300.0
    assert cord["still_heating_at_end"] is False
    assert s["safety"]["lower_bound"] is False and "LOWER BOUND" not in s["safety"]["verdict"]
