"""Several applicators at once: each is its own emitter with its own schedule; the light of
both is solved once; the energies add up and each heats its own neighbourhood."""

from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from meshes import build_mesh
from solver.coupler import Coupler
from solver.case_loader import parse_case
from solver.probes import evaluate, locate

pytestmark = pytest.mark.mpi


def test_two_applicators_with_separate_schedules():
    case = parse_case(
        {
            "name": "two",
            "geometry": {"kind": "box", "lower_m": [-0.02, -0.02, -0.02], "upper_m": [0.02, 0.02, 0.02],
                         "mesh_size_m": 0.004},
            "regions": {"body": "muscle"},
            "boundary": [{"type": "dirichlet", "surface": "outer", "temperature_C": 37.0}],
            "applicator": [
                {"name": "a", "tip_center_m": [-0.007, 0, 0], "direction": [0, 0, 1], "tip_length_m": 0.006,
                 "power_W": 4.0},
                {"name": "b", "tip_center_m": [0.007, 0, 0], "direction": [0, 0, 1], "tip_length_m": 0.006,
                 "schedule": [[0.0, 0.0], [10.0, 0.0], [10.0001, 6.0]], "interpolation": "step"},
            ],
            "time": {"mode": "transient", "dt_s": 1.0, "end_time_s": 20.0},
            "solver": {"rtol": 1e-12},
        }
    )
    problem = Coupler(case, build_mesh(case.geometry, MPI.COMM_WORLD))
    assert len(problem.laser.emitters) == 2
    assert problem.laser.solves == 1  # one light solve per emitter at set-up, none later
    problem.set_initial()
    probes = locate(problem.mesh, [[-0.004, 0, 0], [0.004, 0, 0]])
    history = []
    for i in range(20):
        problem.step(float(i), float(i + 1))
        history.append(evaluate(problem.T, probes))
    history = np.array(history)
    summary = problem.laser.summary(20.0)
    energies = {e["applicator"]: e["delivered_energy_J"] for e in summary["emitters"]}
    assert energies["a"] == pytest.approx(80.0)
    assert energies["b"] == pytest.approx(6.0 * (20.0 - 10.0001))
    assert summary["delivered_energy_J"] == pytest.approx(energies["a"] + energies["b"])
    # before b switches on, the probe next to a warms much more than the one next to b
    assert history[9, 0] - 37.0 > 5 * (history[9, 1] - 37.0)
    # afterwards b's neighbourhood heats faster than a's
    assert history[19, 1] - history[10, 1] > history[19, 0] - history[10, 0]
    assert problem.laser.solves == 1
