"""solver.sampling.QuadratureSampler: one set of compiled expressions and cell volumes serves
every region of the report's dose-volume histograms."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import solver.compat  # noqa: F401  (import order)
from dolfinx import fem, mesh as dmesh
from mpi4py import MPI

from solver.sampling import QuadratureSampler


@pytest.mark.mpi
def test_quadrature_samples_integrate_polynomials_exactly_in_each_region():
    """Unit cube, 8 cells per edge, 'left' = cells with centroid x < 3/8, 'right' the rest.
    With u = x (P1, exact) and w = x^2 + y z (P2, exact), the degree-4 rule integrates both
    exactly on affine cells: left volume 3/8, integral of x (3/8)^2 / 2, of x^2 + y z
    (3/8)^3 / 3 + (3/8) / 4; right the complements. The sums are partition-independent."""
    comm = MPI.COMM_WORLD
    n = 8
    mesh = dmesh.create_unit_cube(comm, n, n, n, cell_type=dmesh.CellType.tetrahedron)
    tdim = mesh.topology.dim
    num_cells = mesh.topology.index_map(tdim).size_local + mesh.topology.index_map(tdim).num_ghosts
    cells = np.arange(num_cells, dtype=np.int32)
    mid = dmesh.compute_midpoints(mesh, tdim, cells)
    tags = dmesh.meshtags(mesh, tdim, cells, np.where(mid[:, 0] < 3.0 / n, 1, 2).astype(np.int32))
    u = fem.Function(fem.functionspace(mesh, ("Lagrange", 1)))
    u.interpolate(lambda x: x[0])
    w = fem.Function(fem.functionspace(mesh, ("Lagrange", 2)))
    w.interpolate(lambda x: x[0] ** 2 + x[1] * x[2])
    problem = SimpleNamespace(mesh=mesh, Q0=fem.functionspace(mesh, ("DG", 0)), bundle=SimpleNamespace(cell_tags=tags))
    sampler = QuadratureSampler(problem, [u, w])
    a = 3.0 / n
    exact = {
        1: (a, a**2 / 2, a**3 / 3 + a / 4),
        2: (1 - a, (1 - a**2) / 2, (1 - a**3) / 3 + (1 - a) / 4),
    }
    for tag, (vol, int_u, int_w) in exact.items():
        values, weights = sampler(tag)
        assert values.shape == (2, len(weights))
        got = comm.allreduce(np.array([weights.sum(), weights @ values[0], weights @ values[1]]), op=MPI.SUM)
        np.testing.assert_allclose(got, [vol, int_u, int_w], rtol=1e-12)
