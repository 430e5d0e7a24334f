"""A heat flux on an interior surface (between two regions of a mesh file) against the
closed form: a flux q on the sphere r = a inside a ball of radius R held at T0, no perfusion,
conductivity k everywhere:

    T(r) = T0 + q a^2 / k (1/r - 1/R)   for a <= r <= R,   T = T(a) inside.

The FE power must be q times the discrete interface area (the flux enters once), and the
centre temperature converges at second order in h (P1, faceted interface)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from mpi4py import MPI

from solver.coupler import Coupler
from solver.case_loader import load_case
from solver.probes import evaluate, locate
from solver.simulation import build_case_mesh
from tests.data.make_meshes import concentric

A, R, Q, K, T0 = 0.004, 0.01, 1000.0, 0.5, 37.0

CASE = f"""
name = "interface_flux_sphere"
[geometry]
kind = "file"
path = "ball.msh"
[regions]
core = "plain"
shell = "plain"
[tissues.plain]
density_kg_per_m3 = 1000.0
specific_heat_J_per_kgK = 4000.0
conductivity_W_per_mK = {K}
[[boundary]]
surface = "interface"
type = "neumann"
heat_flux_W_per_m2 = {Q}
[[boundary]]
surface = "outer"
type = "dirichlet"
temperature_C = {T0}
[time]
mode = "steady"
"""


def exact(r: float) -> float:
    return T0 + Q * A**2 / K * (1.0 / max(r, A) - 1.0 / R)


def solve(folder, h: float):
    comm = MPI.COMM_WORLD
    if comm.rank == 0:
        concentric(folder / "ball.msh", A, R, h)
        (folder / "case.toml").write_text(CASE)
    comm.barrier()
    case = load_case(folder / "case.toml")
    problem = Coupler(case, build_case_mesh(case, comm))
    problem.solve_steady()
    pts = [(0.0, 0.0, 0.0), (0.007, 0.0, 0.0)]
    values = evaluate(problem.T, locate(problem.mesh, pts))
    report = {b["table"]: b for b in problem.boundary_report()}
    return values, report["boundary[0]"]


@pytest.mark.mpi
def test_interface_flux_matches_closed_form(shared_tmp):
    errors = []
    for h in (0.002, 0.001):
        folder = shared_tmp / f"h{h}"
        if MPI.COMM_WORLD.rank == 0:
            folder.mkdir()
        values, flux = solve(folder, h)
        assert flux["interior"] is True
        # the power is q x the discrete interface area, within the faceting of a sphere
        assert flux["power_W"] == pytest.approx(Q * flux["area_m2"], rel=1e-12)
        assert flux["area_m2"] == pytest.approx(4 * math.pi * A**2, rel=0.05)
        rise = exact(0.0) - T0  # 4.8 K
        errors.append(abs(values[0] - exact(0.0)) / rise)
        assert abs(values[1] - exact(0.007)) / rise < 0.05
    order = math.log(errors[0] / errors[1]) / math.log(2.0)
    # observed: 9.2 % and 2.7 % (order 1.76): faceting of both spheres and P1, both O(h^2)
    assert errors[1] < 0.04, errors
    assert order > 1.5, (errors, order)
