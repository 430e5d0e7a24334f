"""Steady cases without a heat sink are refused at validation (no steady state exists), and a
steady solve that fails never advises a smaller time step."""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

import pytest
from mpi4py import MPI

from meshes.structured import structured_box
from solver.coupler import Coupler
from solver.errors import SolverError
from solver.config import CaseError
from solver.case_loader import load_case, parse_case

DATA = Path(__file__).resolve().parents[1] / "data"
REASON = ["time.mode = 'steady'", "no steady state exists", "nothing removes heat",
          "body (csf)", "time.mode = 'transient'", "dirichlet or robin"]


@pytest.fixture
def data() -> dict:
    with open(DATA / "steady_no_sink.toml", "rb") as fh:
        return tomllib.load(fh)


def _refused(d: dict) -> str:
    with pytest.raises(CaseError) as err:
        parse_case(d)
    return str(err.value)


def test_case_file_is_refused():
    with pytest.raises(CaseError) as err:
        load_case(DATA / "steady_no_sink.toml")
    for frag in REASON:
        assert frag in str(err.value), str(err.value)


def test_zero_net_heat_is_refused_too(data):
    """No heat at all and no sink: the operator's null space is the constants (singular)."""
    del data["boundary"]
    msg = _refused(data)
    for frag in REASON + ["fixed only up to a constant"]:
        assert frag in msg, msg


@pytest.mark.parametrize(
    "sink",
    ["perfusion", "dirichlet", "robin", "cavity", "transient"],
)
def test_any_heat_sink_makes_it_valid(data, sink):
    d = copy.deepcopy(data)
    if sink == "perfusion":
        d["tissues"] = {"csf": {"perfusion_W_per_m3K": 100.0}}
    elif sink == "dirichlet":
        d["boundary"].append({"surface": "xmax", "type": "dirichlet", "temperature_C": 37.0})
    elif sink == "robin":
        d["boundary"].append({"surface": "xmax", "type": "robin", "heat_transfer_coefficient_W_per_m2K": 10.0,
                              "ambient_temperature_C": 25.0})
    elif sink == "cavity":
        d["regions"]["body"] = "muscle"
        d["tissues"] = {"muscle": {"perfusion_W_per_m3K": 0.0}}
        d["applicator"] = [{"tip_center_m": [0.01, 0.005, 0.005], "direction": [1, 0, 0], "tip_length_m": 0.005,
                            "representation": "cavity", "power_W": 1.0}]
    else:
        d["time"] = {"mode": "transient", "dt_s": 1.0, "end_time_s": 10.0}
    parse_case(d)


@pytest.mark.mpi
@pytest.mark.parametrize("mode", ["steady", "transient"])
def test_failed_solve_advice_fits_the_mode(mode):
    """One Krylov iteration cannot reach rtol 1e-14. Steady mode has no time step to shrink."""
    case = parse_case(
        {
            "name": "advice",
            "geometry": {"kind": "box", "lower_m": [0, 0, 0], "upper_m": [0.01] * 3, "mesh_size_m": 0.002},
            "regions": {"body": "muscle"},
            "boundary": [{"surface": "xmin", "type": "dirichlet", "temperature_C": 60.0}],
            "time": {"mode": mode, "dt_s": 1.0, "end_time_s": 1.0},
            "solver": {"rtol": 1e-14, "atol": 1e-30, "max_iterations": 1, "pc_type": "jacobi"},
        }
    )
    problem = Coupler(case, structured_box(MPI.COMM_WORLD, (0, 0, 0), (0.01,) * 3, 4))
    problem.set_initial()
    with pytest.raises(SolverError) as err:
        problem.solve_steady() if mode == "steady" else problem.step(0.0, 1.0)
    msg = str(err.value)
    assert "did not converge" in msg
    assert "solver.pc_type = 'lu'" in msg
    assert ("time step" in msg) == (mode == "transient"), msg
