"""The ablation zone's per-step evaluation (solver.zone): the once-tabulated Lagrange basis
gives what fem.Expression.eval gives, the cell-around-dof inverse is exact, and the pruned
update (bounds only on cells around hot nodes) integrates the same dose as a brute-force
update of every point of every cell."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

import solver.compat  # noqa: F401  (import order)
import basix
from dolfinx import fem, mesh as dmesh
from mpi4py import MPI

from solver.damage import ARRHENIUS_SETS, arrhenius_increment
from solver.zone import ZONE_QUADRATURE_DEGREE, CellsOfDof, ZoneSampler, basis_at_points

pytestmark = pytest.mark.mpi


def _mesh():
    return dmesh.create_unit_cube(MPI.COMM_WORLD, 6, 5, 5, ghost_mode=dmesh.GhostMode.shared_facet)


def _points():
    points, _ = basix.make_quadrature(basix.CellType.tetrahedron, ZONE_QUADRATURE_DEGREE)
    return points


@pytest.mark.parametrize("degree", [1, 2])
def test_tabulated_basis_equals_expression_eval(degree):
    msh = _mesh()
    V = fem.functionspace(msh, ("Lagrange", degree))
    assert not V.element.needs_dof_transformations
    T = fem.Function(V)
    T.x.array[:] = np.random.default_rng(7 + MPI.COMM_WORLD.rank).uniform(30.0, 90.0, len(T.x.array))
    points = _points()
    n = msh.topology.index_map(3).size_local + msh.topology.index_map(3).num_ghosts
    cells = np.arange(n, dtype=np.int32)
    expected = fem.Expression(T, points).eval(msh, cells).reshape(n, len(points))
    phi = basis_at_points(V, points)
    assert phi.shape == (len(points), V.dofmap.list.shape[1])
    got = T.x.array[V.dofmap.list[cells]] @ phi.T
    assert np.max(np.abs(got - expected)) <= 1e-12 * np.max(np.abs(expected))


def test_tabulation_refuses_other_spaces():
    msh = _mesh()
    with pytest.raises(ValueError, match="Lagrange"):
        basis_at_points(fem.functionspace(msh, ("N1curl", 1)), _points())
    with pytest.raises(ValueError):
        basis_at_points(fem.functionspace(msh, ("Lagrange", 1, (3,))), _points())


def test_cells_of_dof_is_the_inverse_table():
    msh = _mesh()
    V = fem.functionspace(msh, ("Lagrange", 2))
    n = msh.topology.index_map(3).size_local
    cell_dofs = V.dofmap.list[:n]
    n_dofs = V.dofmap.index_map.size_local + V.dofmap.index_map.num_ghosts
    inverse = CellsOfDof(cell_dofs, n_dofs)
    rng = np.random.default_rng(3)
    for size in (0, 1, 17, n_dofs):
        dofs = np.sort(rng.choice(n_dofs, size, replace=False))
        expected = np.flatnonzero(np.isin(cell_dofs, dofs).any(axis=1))
        assert np.array_equal(inverse(dofs), expected)


def _problem(degree: int):
    msh = _mesh()
    V = fem.functionspace(msh, ("Lagrange", degree))
    tdim = msh.topology.dim
    n = msh.topology.index_map(tdim).size_local + msh.topology.index_map(tdim).num_ghosts
    tags = dmesh.meshtags(msh, tdim, np.arange(n, dtype=np.int32), np.ones(n, dtype=np.int32))
    case = SimpleNamespace(
        solver=SimpleNamespace(element_degree=degree),
        damage=SimpleNamespace(ablation_omega=1.0, ablation_isotherm_C=60.0),
        time=SimpleNamespace(end_time_s=120.0),
    )
    return SimpleNamespace(mesh=msh, comm=msh.comm, V=V, T=fem.Function(V), case=case,
                           bundle=SimpleNamespace(regions={"tissue": 1}, cell_tags=tags))


def _hot_spot(V, t: float) -> np.ndarray:
    """A moving Gaussian hot spot (C) at the dofs: most cells stay below the dose floor."""
    x = V.tabulate_dof_coordinates()
    centre = np.array([0.3 + 0.2 * t, 0.5, 0.5])
    return 37.0 + 33.0 * np.exp(-np.sum((x - centre) ** 2, axis=1) / 0.05)


@pytest.mark.parametrize("degree, mixed", [(1, False), (2, False), (1, True)])
def test_pruned_update_matches_brute_force(degree, mixed):
    """Omega at every point of every owned cell, integrated over steps of a moving hot spot,
    against the same integral done on all points with Expression.eval (no pruning); one
    Arrhenius set everywhere, or (mixed) Henriques and liver on alternate cells."""
    p = _problem(degree)
    msh, V = p.mesh, p.V
    n = msh.topology.index_map(3).size_local
    sets = [ARRHENIUS_SETS["henriques"], ARRHENIUS_SETS["liver" if mixed else "henriques"]]
    A = np.array([sets[i % 2][0] for i in range(n)])[:, None]
    Ea = np.array([sets[i % 2][1] for i in range(n)])[:, None]
    zone = ZoneSampler(p, "omega", np.log(A[:, 0]), Ea[:, 0])
    p.T.x.array[:] = _hot_spot(V, 0.0)
    zone.start()
    expr = fem.Expression(p.T, _points())
    cells = np.arange(n, dtype=np.int32)
    T_prev = expr.eval(msh, cells).reshape(n, -1)
    omega = np.zeros_like(T_prev)
    floor = zone.dose_floor[:, None]
    hot_counts = []
    for k in range(1, 6):
        T0_nodal = p.T.x.array.copy()
        p.T.x.array[:] = _hot_spot(V, 0.2 * k) if k < 4 else 37.0  # the spot moves, then leaves
        zone.after_step(10.0, T0_nodal)
        # every cell whose bound exceeds its floor is among the candidates the step looked at
        above = np.flatnonzero(zone._bound(p.T.x.array) > zone.cell_floor)
        assert np.isin(above, zone._candidates(p.T.x.array)).all()
        T1 = expr.eval(msh, cells).reshape(n, -1)
        dosed = np.maximum(T_prev, T1) > floor
        A_pt, Ea_pt = np.broadcast_to(A, T1.shape)[dosed], np.broadcast_to(Ea, T1.shape)[dosed]
        omega[dosed] += arrhenius_increment(T_prev[dosed], T1[dosed], 10.0, A_pt, Ea_pt)
        T_prev = T1
        hot_counts.append(int(zone._was_hot.sum()))
    assert np.max(omega) > 1.0  # the designed case does dose (and ablate) some points
    assert 0 < max(hot_counts) < n or n == 0  # and the pruning leaves cells out
    assert np.allclose(zone.omega, omega, rtol=1e-9, atol=0.0)
