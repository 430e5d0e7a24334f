"""TemperatureWatch on a real (small) mesh, serially and on 2 ranks: non-finite values and
the ceiling stop with step, time and place; the singular neighbourhood of a point source is
left out of the region maxima."""

from __future__ import annotations

import math

import numpy as np
import pytest
from mpi4py import MPI

from solver.coupler import Coupler
from solver.errors import SolverError
from solver.case_loader import parse_case
from solver.metrics import RegionNodes
from solver.simulation import build_case_mesh
from solver.temperature_range import TemperatureWatch

pytestmark = pytest.mark.mpi


@pytest.fixture(scope="module")
def problem():
    case = parse_case(
        {
            "name": "watch",
            "geometry": {"kind": "box", "lower_m": [-0.01, -0.01, -0.01], "upper_m": [0.01, 0.01, 0.01],
                         "mesh_size_m": 0.002},
            "regions": {"body": "muscle"},
            "source": [{"type": "point", "position_m": [0.0, 0.0, 0.0], "power_W": 0.1,
                        "exclusion_radius_m": 0.003}],
            "time": {"dt_s": 1.0, "end_time_s": 2.0},
        }
    )
    p = Coupler(case, build_case_mesh(case, MPI.COMM_WORLD))
    p.set_initial()
    return p


def test_exclusion_mask_and_region_maxima(problem):
    watch = TemperatureWatch(problem)
    src = watch.sources[0]
    r = src["exclusion_radius_m"]
    assert r == pytest.approx(max(0.003, 2.0 * src["local_cell_size_m"]))
    d = np.linalg.norm(watch.coords, axis=1)
    assert np.array_equal(watch.excluded, d <= r)
    T = problem.T.x.array
    T[:] = 37.0 + 1e-3 / np.maximum(d, 1e-6)  # a 1/r field: 1000 C at the source node
    nodes = RegionNodes(problem, exclude=watch.excluded)
    expected = 37.0 + 1e-3 / problem.comm.allreduce(float(d[~watch.excluded].min()), op=MPI.MIN)
    assert nodes.max("body", T) == pytest.approx(expected, rel=1e-12)
    assert watch.max_temperature()[0] == pytest.approx(expected, rel=1e-12)
    watch.check(1, 1.0)  # below the ceiling outside the neighbourhood: no error
    assert src["max_nodal_temperature_C"] > 1000.0
    problem.set_initial()


def test_ceiling_and_non_finite_name_step_time_place(problem):
    watch = TemperatureWatch(problem)
    T = problem.T.x.array
    far = np.linalg.norm(watch.coords, axis=1) > 0.008
    T[far] = 160.0
    with pytest.raises(SolverError, match=r"step 7, t = 3\.5 s: temperature 160\.0 C at \[.*\] mm exceeds "
                       r"solver\.temperature_ceiling_C = 150"):
        watch.check(7, 3.5)
    problem.set_initial()
    # one rank's first owned node becomes NaN: every rank names the same place
    if problem.comm.rank == problem.comm.size - 1 and watch.n_owned:
        T[0] = math.nan
        where = watch.coords[0]
    else:
        where = None
    where = problem.comm.bcast(where, root=problem.comm.size - 1)
    err = watch.explain(SolverError("the temperature field is not finite"), 4, 2.0)
    text = str(err)
    assert text.startswith("step 4, t = 2 s: the temperature field is not finite (non-finite at [")
    assert f"{1e3 * where[0]:.2f}" in text
    problem.set_initial()
