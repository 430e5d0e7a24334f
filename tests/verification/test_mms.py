"""Method of manufactured solutions with every term of the engine: conduction, perfusion,
metabolic heat, Dirichlet, Robin and Neumann boundaries, time derivative.

Expected orders (docs/MODEL.md section 6): L2 error O(h^2) for P1 and O(h^3) for P2 in space;
O(dt) for backward Euler and O(dt^2) for Crank-Nicolson in time. The asserted bands are
+-0.15 around the theoretical order: on the structured meshes used here the observed orders
approach the asymptotic values from below (pre-asymptotic at n = 4) to within about 0.05.
"""

from __future__ import annotations

import pytest
from mpi4py import MPI

from meshes import build_mesh
from meshes.structured import structured_box
from solver.analytic import observed_orders
from solver.coupler import Coupler
from solver.case_loader import load_case, parse_case

from ..conftest import CASES

pytestmark = pytest.mark.mpi

SIDE = 0.01


def _case(solution: str, mode: str, degree: int, **time) -> object:
    return parse_case(
        {
            "name": "mms",
            "geometry": {"kind": "box", "lower_m": [0, 0, 0], "upper_m": [SIDE] * 3, "mesh_size_m": 0.002},
            "regions": {"body": "muscle"},
            "tissues": {"muscle": {"metabolic_heat_W_per_m3": 500.0}},
            "boundary": [
                {"type": "dirichlet", "surface": ["xmin", "ymin"], "temperature_C": 37.0},
                {
                    "type": "robin",
                    "surface": ["xmax", "zmax"],
                    "heat_transfer_coefficient_W_per_m2K": 50.0,
                    "ambient_temperature_C": 25.0,
                },
                {"type": "neumann", "surface": "ymax", "heat_flux_W_per_m2": 100.0},
            ],
            "time": {"mode": mode, **time},
            "solver": {"element_degree": degree, "rtol": 1e-13, "atol": 1e-16},
            "manufactured": {"solution": solution},
        }
    )


@pytest.mark.parametrize("degree, expected, sizes", [(1, 2.0, [4, 8, 16]), (2, 3.0, [3, 6, 12])])
def test_spatial_order_steady(degree, expected, sizes):
    case = _case("steady_trig", "steady", degree)
    errors = []
    for n in sizes:
        problem = Coupler(case, structured_box(MPI.COMM_WORLD, (0, 0, 0), (SIDE,) * 3, n))
        problem.set_initial()
        problem.solve_steady()
        errors.append(problem.l2_error(0.0))
    orders = observed_orders([SIDE / n for n in sizes], errors)
    assert abs(orders[-1] - expected) < 0.15, (errors, orders)
    assert orders[0] > expected - 0.3, (errors, orders)


@pytest.mark.parametrize("scheme, expected", [("backward_euler", 1.0), ("crank_nicolson", 2.0)])
def test_time_order(scheme, expected):
    """'poly_sin_t' is quadratic in space, so P2 represents it exactly: only the time error
    is left, and the observed order is that of the scheme.

    Crank-Nicolson starts with four backward-Euler half steps (solver.startup). Their error is
    O(dt^2) with an O(dt^3) part, so the observed order approaches 2 from above (measured
    2.14, 2.07, 2.04, 2.02 for 5 ... 80 steps); the sequence starts at 10 steps."""
    end = 20.0
    steps = [10, 20, 40, 80]
    errors = []
    for n in steps:
        case = _case("poly_sin_t", "transient", 2, scheme=scheme, dt_s=end / n, end_time_s=end)
        problem = Coupler(case, structured_box(MPI.COMM_WORLD, (0, 0, 0), (SIDE,) * 3, 2))
        problem.set_initial()
        for i in range(n):
            problem.step(i * end / n, (i + 1) * end / n)
        errors.append(problem.l2_error(end))
    orders = observed_orders([end / n for n in steps], errors)
    assert all(abs(o - expected) < 0.1 for o in orders), (errors, orders)
    assert abs(orders[-1] - expected) < 0.03, (errors, orders)


def test_space_time_trig_exp_converges():
    """Non-polynomial in space and time, Crank-Nicolson with dt ~ h: both errors O(h^2)."""
    errors, hs = [], []
    for n, dt in [(4, 4.0), (8, 2.0), (16, 1.0)]:
        case = _case("trig_exp_t", "transient", 1, scheme="crank_nicolson", dt_s=dt, end_time_s=8.0)
        problem = Coupler(case, structured_box(MPI.COMM_WORLD, (0, 0, 0), (SIDE,) * 3, n))
        problem.set_initial()
        steps = int(round(8.0 / dt))
        for i in range(steps):
            problem.step(i * dt, (i + 1) * dt)
        errors.append(problem.l2_error(8.0))
        hs.append(SIDE / n)
    orders = observed_orders(hs, errors)
    assert orders[-1] > 1.8, (errors, orders)


def test_case_file_mms_on_gmsh_meshes(tmp_path_factory):
    """The case file in cases/verification on unstructured gmsh meshes: order about 2 for P1."""
    base = load_case(CASES / "verification" / "mms_steady.toml")
    errors, hs = [], []
    for h in (0.004, 0.002, 0.001):
        data = base.model_dump(exclude={"case_dir"})
        data["geometry"]["mesh_size_m"] = h
        case = parse_case(data)
        problem = Coupler(case, build_mesh(case.geometry, MPI.COMM_WORLD))
        problem.set_initial()
        problem.solve_steady()
        errors.append(problem.l2_error(0.0))
        hs.append(h)
    orders = observed_orders(hs, errors)
    # Unstructured meshes at a nominal size: h is only proportional to mesh_size_m, so the
    # order over the whole sequence is the robust number.
    overall = observed_orders([hs[0], hs[-1]], [errors[0], errors[-1]])[0]
    assert 1.7 < overall < 2.4, (errors, orders)
