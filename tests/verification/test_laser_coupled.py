"""Coupled light + Pennes against a closed form, and damage-driven perfusion against an ODE.

Coupled steady state. A point light source P at the centre of a ball of radius R, light
fluence zero on r = R and tissue held at T_a there. The light is

    phi(r) = P sinh(mu (R - r)) / (4 pi D r sinh(mu R)),   mu = mu_eff = sqrt(mu_a / D),

and theta = T - T_a solves (lap - m^2) theta = -mu_a phi / k, m^2 = W / k. Away from r = 0,
lap(sinh(a (R - r)) / r) = a^2 sinh(a (R - r)) / r, so the particular solution is
C sinh(mu (R - r)) / (r sinh(mu R)) with C = A / (k (m^2 - mu^2)), A = mu_a P / (4 pi D).
It carries a 1/r singularity (a spurious point heat source of strength 4 pi C k) that the
homogeneous solution - C sinh(m (R - r)) / (r sinh(m R)) cancels; both vanish at r = R:

    theta(r) = A / (k (m^2 - mu^2)) [sinh(mu (R - r)) / sinh(mu R) - sinh(m (R - r)) / sinh(m R)] / r,

finite at r = 0 (theta(0) = A (mu coth(mu R) - m coth(m R)) / (k (mu^2 - m^2))... with the
signs above). The FE pipeline (diffusion solve, Galerkin heat load mu_a phi, Pennes solve) is
compared with it in L2 over r > 2 mm under refinement: order about 2 (P1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import ufl
from dolfinx import fem
from mpi4py import MPI

from meshes import build_mesh
from meshes.structured import structured_box
from solver.analytic import observed_orders
from solver.bioheat import LoadTerm
from solver.coupler import Coupler
from solver.case_loader import parse_case
from solver.light import LightProblem
from solver.optics import OpticalProperties

pytestmark = pytest.mark.mpi

K, W, RHO_C = 0.49, 2535.0, 1090.0 * 3421.0  # muscle (IT'IS)
OPTICS = OpticalProperties(49.0, 580.0)  # muscle at 980 nm (Cassano 2019)
R = 0.02
P = 2.0


def coupled_theta(r):
    mu = OPTICS.mu_eff_per_m
    D = OPTICS.D_m
    m = math.sqrt(W / K)
    A = OPTICS.absorption_per_m * P / (4 * math.pi * D)
    C = A / (K * (m * m - mu * mu))
    return C * (ufl.sinh(mu * (R - r)) / math.sinh(mu * R) - ufl.sinh(m * (R - r)) / math.sinh(m * R)) / r


def _case(h):
    return parse_case(
        {
            "name": "coupled",
            "geometry": {"kind": "sphere", "radius_m": R, "mesh_size_m": h,
                         "refinement": [{"point_m": [0, 0, 0], "size_m": h / 3, "distance_m": 0.008}]},
            "regions": {"body": "muscle"},
            "boundary": [{"type": "dirichlet", "surface": "outer", "temperature_C": 37.0}],
            "time": {"mode": "steady"},
            "solver": {"rtol": 1e-12, "atol": 1e-16},
        }
    )


def test_coupled_light_pennes_steady_closed_form():
    errors, hs = [], []
    for h in (0.004, 0.002, 0.001):
        case = _case(h)
        bundle = build_mesh(case.geometry, MPI.COMM_WORLD)
        problem = Coupler(case, bundle)
        light = LightProblem(problem.mesh, problem.V, {"body": OPTICS}, bundle.cell_tags, bundle.regions,
                             "zero", rtol=1e-12)
        phi = light.solve(light.unit_source_point([[0.0, 0.0, 0.0]]))
        q = light.heat_load(phi, problem.V)
        problem.heat.add_loads([LoadTerm("light", q, lambda t: P, lambda a, b: P)])
        problem.set_initial()
        problem.solve_steady()
        x = ufl.SpatialCoordinate(problem.mesh)
        r = ufl.sqrt(ufl.dot(x, x))
        exact = 37.0 + coupled_theta(r)
        mask = ufl.conditional(ufl.gt(r, 0.002), 1.0, 0.0)
        dx = ufl.dx(domain=problem.mesh, metadata={"quadrature_degree": 6})
        err = problem.comm.allreduce(fem.assemble_scalar(fem.form(mask * (problem.T - exact) ** 2 * dx)))
        ref = problem.comm.allreduce(fem.assemble_scalar(fem.form(mask * (exact - 37.0) ** 2 * dx)))
        errors.append(math.sqrt(err / ref))
        hs.append(h)
    overall = observed_orders([hs[0], hs[-1]], [errors[0], errors[-1]])[0]
    print("coupled light+Pennes relative L2 errors", errors, "orders", observed_orders(hs, errors), "overall", overall)
    assert overall > 1.6, (errors, observed_orders(hs, errors))
    assert errors[-1] < 0.02, errors


def _rk4(f, y0, t_end, n):
    y = np.array(y0, float)
    h = t_end / n
    for _ in range(n):
        k1 = f(y)
        k2 = f(y + 0.5 * h * k1)
        k3 = f(y + 0.5 * h * k2)
        k4 = f(y + h * k3)
        y = y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return y


def test_coagulation_stops_perfusion_like_the_ode():
    """Uniform heating of an insulated box with perfusion that stops as tissue coagulates:
    rho c dT/dt = Q - W0 (1 - d(Omega)) (T - T_a), dOmega/dt = A exp(-E_a / (R T)),
    d = Omega / (ln 2 + Omega). Uniform, hence exact in space; the FE + lumped-perfusion +
    exact-damage pipeline converges to the RK4 solution of this ODE at order 1 (BE)."""
    from solver.damage import ARRHENIUS_SETS, damage_fraction

    A_, Ea = ARRHENIUS_SETS["henriques"]
    Q = 1.0e6
    end = 120.0

    def rhs(y):
        T, om = y
        d = damage_fraction(om)
        return np.array([(Q - W * (1 - d) * (T - 37.0)) / RHO_C,
                         A_ * math.exp(-Ea / (8.314462618 * (T + 273.15)))])

    T_ref, om_ref = _rk4(rhs, [37.0, 0.0], end, 20000)
    assert om_ref > 1.0  # the run does coagulate
    errors, dts = [], []
    for dt in (4.0, 2.0, 1.0):
        case = parse_case(
            {
                "name": "coag_ode",
                "geometry": {"kind": "box", "lower_m": [0, 0, 0], "upper_m": [0.01] * 3, "mesh_size_m": 0.005},
                "regions": {"body": "muscle"},
                "source": [{"type": "uniform", "region": "body", "power_density_W_per_m3": Q}],
                "coagulation": {"enabled": True},
                "time": {"mode": "transient", "dt_s": dt, "end_time_s": end},
                "solver": {"rtol": 1e-13, "atol": 1e-16},
            }
        )
        problem = Coupler(case, structured_box(MPI.COMM_WORLD, (0, 0, 0), (0.01,) * 3, 2))
        problem.set_initial()
        n = int(round(end / dt))
        for i in range(n):
            problem.step(i * dt, (i + 1) * dt)
        T_max = problem.max_temperature()[0]
        errors.append(abs(T_max - T_ref))
        dts.append(dt)
    orders = observed_orders(dts, errors)
    print("coagulation ODE: T_ref", T_ref, "Omega_ref", om_ref, "errors", errors, "orders", orders)
    assert errors[-1] < 0.05, (errors, T_ref)
    assert np.all(orders > 0.8), (errors, orders)
