"""The catheter coolant's Robin condition -k dT/dn = h (T - T_coolant) against a closed form
(docs/MODEL.md section 2, "Cooled catheter"; section 6).

Steady 1D slab 0 <= x <= L of perfused muscle, the face x = 0 cooled through the default
catheter coefficient h (solver.catheter) by coolant at T_c, the face x = L held at T_a:

    theta = T - T_a = A sinh(m (L - x)),   A = h (T_c - T_a) / (k m cosh(m L) + h sinh(m L)),

m = sqrt(W / k). The solution is 1D: a structured box of n cubes along x (one across y and z,
the cross-section shrinking with the cells so that they stay cubes) carries it; P1 converges at
order 2 in L2. Runs serially and under mpiexec -n 2.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import ufl
from dolfinx import fem
from mpi4py import MPI

from meshes.structured import structured_box
from solver.analytic import observed_orders
from solver.coupler import Coupler
from solver.catheter import DEFAULT_COOLANT_HEAT_TRANSFER_W_PER_M2K
from solver.case_loader import parse_case

pytestmark = pytest.mark.mpi

L = 0.01
K, W = 0.49, 2535.0  # IT'IS muscle (solver.tissues)
T_A, T_C = 37.0, 20.0


def _case(h: float, width: float):
    return parse_case(
        {
            "name": "coolant_robin_slab",
            "geometry": {"kind": "box", "lower_m": [0, 0, 0], "upper_m": [L, width, width], "mesh_size_m": width},
            "regions": {"body": "muscle"},
            "boundary": [
                {"type": "robin", "surface": "xmin", "heat_transfer_coefficient_W_per_m2K": h,
                 "ambient_temperature_C": T_C},
                {"type": "dirichlet", "surface": "xmax", "temperature_C": T_A},
            ],
            "time": {"mode": "steady"},
            "solver": {"rtol": 1e-13, "atol": 1e-16},
        }
    )


def closed_form(x, h: float):
    m = math.sqrt(W / K)
    A = h * (T_C - T_A) / (K * m * math.cosh(m * L) + h * math.sinh(m * L))
    return T_A + A * np.sinh(m * (L - np.asarray(x, dtype=float)))


def _solve(h: float, n: int):
    width = L / n
    problem = Coupler(_case(h, width), structured_box(MPI.COMM_WORLD, (0, 0, 0), (L, width, width), (n, 1, 1)))
    problem.set_initial()
    problem.solve_steady()
    return problem


def _relative_l2(problem, h: float) -> float:
    m = math.sqrt(W / K)
    A = h * (T_C - T_A) / (K * m * math.cosh(m * L) + h * math.sinh(m * L))
    x = ufl.SpatialCoordinate(problem.mesh)
    exact = T_A + A * ufl.sinh(m * (L - x[0]))
    dx = ufl.dx(domain=problem.mesh, metadata={"quadrature_degree": 6})
    err = problem.comm.allreduce(fem.assemble_scalar(fem.form((problem.T - exact) ** 2 * dx)))
    ref = problem.comm.allreduce(fem.assemble_scalar(fem.form((exact - T_A) ** 2 * dx)))
    return math.sqrt(err / ref)


def test_coolant_robin_slab_converges_at_order_two():
    h = DEFAULT_COOLANT_HEAT_TRANSFER_W_PER_M2K
    sizes = [8, 16, 32, 64]
    errors = [_relative_l2(_solve(h, n), h) for n in sizes]
    orders = observed_orders([L / n for n in sizes], errors)
    # P1 on a uniform family: order 2 from the first pair on (measured 1.96, 1.98, 1.99)
    assert all(abs(o - 2.0) < 0.1 for o in orders), (errors, orders)
    assert errors[-1] < 1e-3, errors


def test_coolant_robin_wall_temperature_and_the_dirichlet_limit():
    """The cooled face sits between the coolant and body temperature (finite h), at the closed
    form's value; h -> infinity recovers the wall held at T_c (the fixed_temperature choice)."""
    h = DEFAULT_COOLANT_HEAT_TRANSFER_W_PER_M2K
    problem = _solve(h, 64)
    coords = problem.V.tabulate_dof_coordinates()
    owned = problem.V.dofmap.index_map.size_local
    on_wall = np.isclose(coords[:owned, 0], 0.0)
    wall = problem.T.x.array[:owned][on_wall]
    found = problem.comm.allreduce(len(wall))
    assert found > 0
    expected = float(closed_form(0.0, h))
    # about 21.1 C: h = 850 W/m2/K is large against k m = 35 W/m2/K, but the wall is not at 20 C
    assert T_C + 0.5 < expected < T_A
    worst = problem.comm.allreduce(float(np.max(np.abs(wall - expected))) if len(wall) else 0.0, op=MPI.MAX)
    assert worst < 0.01  # K; the nodal error is O(dx^2) (measured 1e-4 K at 64 cells)
    # a very large h tends to the Dirichlet limit T(0) = T_c
    big = 1e7
    assert float(closed_form(0.0, big)) == pytest.approx(T_C, abs=0.01)
    problem = _solve(big, 64)
    wall = problem.T.x.array[:owned][on_wall]
    worst = problem.comm.allreduce(float(np.max(np.abs(wall - T_C))) if len(wall) else 0.0, op=MPI.MAX)
    assert worst < 0.02
