"""solver.fem: region-wise DG0 functions, untagged cells, assembled vectors, the smallest
cell size and the Krylov-solver factory (which never writes PETSc's options database)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import solver.compat  # noqa: F401  (import order)
import dolfinx.mesh
import ufl
from dolfinx import fem
from mpi4py import MPI
from petsc4py import PETSc

from meshes.structured import structured_box
from solver.fem import (
    assemble_operator, assemble_vector, cell_pattern_cells, create_ksp, min_cell_size, region_function, untagged_cells,
)

SIDE = 0.02  # m
N = 4


@pytest.fixture(scope="module")
def bundle():
    return structured_box(MPI.COMM_WORLD, (0, 0, 0), (SIDE,) * 3, N, ball_region=("ball", (0.01, 0.01, 0.01), 0.006))


@pytest.mark.mpi
def test_region_function_integrates_to_the_region_volumes(bundle):
    """integral of a region-wise function = sum of value x region volume (exact for DG0)."""
    mesh = bundle.mesh
    Q0 = fem.functionspace(mesh, ("DG", 0))
    f = region_function(Q0, bundle.cell_tags, bundle.regions, {"body": 2.0, "ball": 5.0})
    dx = ufl.Measure("dx", domain=mesh, subdomain_data=bundle.cell_tags)
    one = fem.Constant(mesh, 1.0)
    vol = {r: mesh.comm.allreduce(fem.assemble_scalar(fem.form(one * dx(t))), op=MPI.SUM)
           for r, t in bundle.regions.items()}
    total = mesh.comm.allreduce(fem.assemble_scalar(fem.form(f * ufl.dx(domain=mesh))), op=MPI.SUM)
    assert vol["ball"] > 0 and math.isclose(vol["body"] + vol["ball"], SIDE**3, rel_tol=1e-12)
    assert math.isclose(total, 2.0 * vol["body"] + 5.0 * vol["ball"], rel_tol=1e-12)
    g = region_function(Q0, bundle.cell_tags, {"ball": bundle.regions["ball"]}, lambda r: 1.0, fill=-1.0)
    assert set(np.unique(g.x.array)) <= {-1.0, 1.0}


@pytest.mark.mpi
def test_untagged_cells_counts_owned_cells_once(bundle):
    cells = bundle.mesh.comm.allreduce(bundle.mesh.topology.index_map(3).size_local, op=MPI.SUM)
    assert cells == 6 * N**3
    assert untagged_cells(bundle.mesh, bundle.cell_tags, bundle.regions.values()) == 0
    missing = untagged_cells(bundle.mesh, bundle.cell_tags, [bundle.regions["body"]])
    assert 0 < missing < cells  # the ball's cells


@pytest.mark.mpi
def test_min_cell_size_of_the_structured_box(bundle):
    """Every tetrahedron of the split cube has the cube's diagonal sqrt(3) SIDE / N as its
    longest edge (DOLFINx's h)."""
    assert math.isclose(min_cell_size(bundle.mesh), math.sqrt(3.0) * SIDE / N, rel_tol=1e-12)


@pytest.mark.mpi
@pytest.mark.parametrize("pc", ["jacobi", "icc", "lu"])
def test_ksp_solves_the_mass_system_and_leaves_the_options_alone(bundle, pc):
    """M x = assemble(v dx) has the solution x = 1; no option is added to the database."""
    mesh = bundle.mesh
    V = fem.functionspace(mesh, ("Lagrange", 1))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    import dolfinx.fem.petsc

    M = dolfinx.fem.petsc.assemble_matrix(fem.form(u * v * ufl.dx))
    M.assemble()
    b = assemble_vector(v * ufl.dx)
    assert math.isclose(mesh.comm.allreduce(float(b.array.sum()), op=MPI.SUM), SIDE**3, rel_tol=1e-12)
    before = dict(PETSc.Options().getAll())
    ksp = create_ksp(mesh.comm, M, prefix="test_mass_", pc_type=pc, rtol=1e-12, atol=1e-30, max_it=500)
    x = b.duplicate()
    ksp.solve(b, x)
    assert ksp.getConvergedReason() > 0
    assert np.allclose(x.array, 1.0, rtol=0, atol=1e-9)
    assert dict(PETSc.Options().getAll()) == before
    expected = {"lu": "lu", "jacobi": "jacobi", "icc": "bjacobi" if mesh.comm.size > 1 else "icc"}[pc]
    assert ksp.getPC().getType() == expected
    ksp.destroy()
    for obj in (M, b, x):
        obj.destroy()


def _csr(A: PETSc.Mat):
    indptr, indices, values = A.getValuesCSR()
    return np.asarray(indptr).copy(), np.asarray(indices).copy(), np.asarray(values).copy()


@pytest.mark.mpi
def test_operator_reuses_a_cell_pattern_and_equals_a_fresh_assembly(bundle):
    """A diffusion-absorption operator with a Robin term and a Dirichlet condition, assembled
    into the pattern of a mass matrix on the same space, equals the fresh assembly entry for
    entry (row pointers, columns, values) on every rank; forms whose pattern differs from the
    cell pattern (an interior-facet term, or cell integrals over one region only) are not
    eligible and are assembled afresh, with the same values as without ``like``."""
    mesh = bundle.mesh
    V = fem.functionspace(mesh, ("Lagrange", 1))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    mass = fem.form(u * v * ufl.dx)
    M = assemble_operator(mass)
    tdim = mesh.topology.dim
    mesh.topology.create_connectivity(tdim - 1, tdim)
    facets = dolfinx.mesh.exterior_facet_indices(mesh.topology)
    bc = fem.dirichletbc(fem.Constant(mesh, 0.0), fem.locate_dofs_topological(V, tdim - 1, facets[: len(facets) // 2]), V)
    dx = ufl.Measure("dx", domain=mesh, subdomain_data=bundle.cell_tags)
    forms = {
        "cell pattern": (ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx + 3.0 * u * v * ufl.dx + 0.5 * u * v * ufl.ds, True),
        "interior facets": (u * v * ufl.dx + ufl.avg(u) * ufl.avg(v) * ufl.dS, False),
        "one region": (u * v * dx(bundle.regions["ball"]), False),
        "every region": (sum(u * v * dx(t) for t in bundle.regions.values()), True),
    }
    n_owned = mesh.topology.index_map(tdim).size_local
    assert cell_pattern_cells(mass) is not None and cell_pattern_cells(mass)[:n_owned].all()
    for name, (a, eligible) in forms.items():
        form = fem.form(a)
        local = cell_pattern_cells(form) is not None and np.array_equal(cell_pattern_cells(form), cell_pattern_cells(mass))
        assert mesh.comm.allreduce(local, op=MPI.LAND) == eligible, name
        fresh = _csr(assemble_operator(form, [bc]))
        reused = _csr(assemble_operator(form, [bc], like=(M, mass)))
        for x, y in zip(fresh, reused):
            np.testing.assert_array_equal(x, y, err_msg=name)
