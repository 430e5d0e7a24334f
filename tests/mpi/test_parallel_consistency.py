"""The same case gives the same probe values on any number of ranks.

Under `mpiexec -n 2` each test solves the case on COMM_WORLD (distributed) and on COMM_SELF
(every rank alone) and compares; run serially, both are the same one-rank solve and the test
still checks the machinery. Solver tolerance 1e-12, so the partition-dependent round-off of
the Krylov iteration stays far below the asserted 1e-8.
"""

from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI

from meshes import build_mesh
from solver.coupler import Coupler
from solver.case_loader import parse_case
from solver.probes import evaluate, locate

pytestmark = pytest.mark.mpi


def _case(mode: str, degree: int):
    return parse_case(
        {
            "name": "parallel",
            "geometry": {
                "kind": "sphere",
                "radius_m": 0.015,
                "mesh_size_m": 0.003,
                "inclusion": [{"name": "tumour", "center_m": [0.002, 0, 0], "radius_m": 0.005}],
                "refinement": [{"point_m": [0, 0, 0], "size_m": 0.001, "distance_m": 0.006}],
            },
            "regions": {"body": "muscle", "tumour": "tumour"},
            "boundary": [
                {"type": "robin", "surface": "outer", "heat_transfer_coefficient_W_per_m2K": 20.0,
                 "ambient_temperature_C": 30.0}
            ],
            "source": [
                {"type": "point", "position_m": [0.0, 0.0, 0.0], "power_W": 0.3},
                # a schedule within end_time_s (past it, or in steady mode, is refused); steady
                # mode solves with the schedule's P(t = 0) = 0 W
                {"type": "segment", "start_m": [0.0, -0.004, 0.001], "end_m": [0.0, 0.004, 0.001],
                 **({"schedule": [[0.0, 0.0], [10.0, 1.0], [20.0, 1.0]]} if mode == "transient" else {"power_W": 0.0})},
                {"type": "uniform", "region": "tumour", "power_W": 0.2},
            ],
            "time": {"mode": mode, "scheme": "crank_nicolson", "dt_s": 2.0, "end_time_s": 20.0},
            "solver": {"element_degree": degree, "rtol": 1e-12, "atol": 1e-18},
            "probe": [
                {"name": "a", "position_m": [0.003, 0.0, 0.0]},
                {"name": "b", "position_m": [0.0, 0.004, 0.001]},
                {"name": "c", "position_m": [-0.006, 0.002, -0.003]},
                {"name": "origin", "position_m": [0.0, 0.0, 0.0]},
            ],
        }
    )


def _solve(case, comm):
    bundle = build_mesh(case.geometry, comm)
    problem = Coupler(case, bundle)
    problem.set_initial()
    located = locate(problem.mesh, [p.position_m for p in case.probe])
    history = []
    if case.time.mode == "steady":
        problem.solve_steady()
        history.append(evaluate(problem.T, located))
    else:
        for i in range(case.time.num_steps):
            problem.step(i * case.time.dt_s, (i + 1) * case.time.dt_s)
            history.append(evaluate(problem.T, located))
    return np.array(history), problem.max_temperature()[0], problem.num_dofs()


@pytest.mark.parametrize("mode, degree", [("transient", 1), ("steady", 2)])
def test_same_probes_on_world_and_self(mode, degree):
    case = _case(mode, degree)
    world, tmax_world, dofs_world = _solve(case, MPI.COMM_WORLD)
    alone, tmax_alone, dofs_alone = _solve(case, MPI.COMM_SELF)
    assert dofs_world == dofs_alone
    rise_world, rise_alone = world - 30.0, alone - 30.0
    np.testing.assert_allclose(rise_world, rise_alone, rtol=1e-8, atol=0)
    assert abs(tmax_world - tmax_alone) <= 1e-8 * abs(tmax_alone)


def test_point_load_sums_to_power_on_any_partition():
    """Partition of unity: the exact delta assembly delivers exactly the requested power,
    also when the point sits on a vertex shared between ranks."""
    from solver.probes import point_load

    case = _case("steady", 1)
    bundle = build_mesh(case.geometry, MPI.COMM_WORLD)
    problem = Coupler(case, bundle)
    for load in problem.heat.loads:
        total = load.vector.sum()
        assert abs(total - 1.0) < 1e-12, (load.name, total)
    pts = [[0.0, 0.0, 0.0], [0.0031, -0.0022, 0.0017]]
    f = point_load(problem.V, locate(problem.mesh, pts), [2.0, 3.0])
    n = problem.V.dofmap.index_map.size_local
    total = problem.comm.allreduce(f.x.array[:n].sum())
    assert abs(total - 5.0) < 1e-12
