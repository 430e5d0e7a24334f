"""solver.probes.locate: the vectorised containing-cell search on affine tetrahedra."""

from __future__ import annotations

import numpy as np
import pytest

import solver.compat  # noqa: F401  (import order)
from dolfinx import mesh as dmesh
from mpi4py import MPI

from solver import compat
from solver.probes import PointOutsideMesh, locate, owned_cell_tree


def _barycentric_min(mesh, cell: int, p: np.ndarray) -> float:
    dofs = np.asarray(compat.coordinate_map(mesh)[1])
    v = mesh.geometry.x[dofs[cell, :4]]
    lam = np.linalg.solve(np.stack([v[1] - v[0], v[2] - v[0], v[3] - v[0]], axis=-1), p - v[0])
    return float(min(1.0 - lam.sum(), lam.min()))


@pytest.mark.mpi
def test_every_point_gets_a_cell_that_contains_it_and_one_owner():
    comm = MPI.COMM_WORLD
    mesh = dmesh.create_unit_cube(comm, 5, 4, 3, cell_type=dmesh.CellType.tetrahedron)
    rng = np.random.default_rng(7)
    pts = rng.uniform(0.0, 1.0, (400, 3))
    x = mesh.geometry.x
    owned_vertices = x[: min(len(x), 20)]  # vertices and edge midpoints: on faces of many cells
    pts = np.vstack([pts, comm.bcast(owned_vertices, root=0), [[0.5, 0.5, 1.0], [1.0, 1.0, 1.0]]])
    located = locate(mesh, pts)
    assert np.all(located.owner >= 0) and np.all(located.owner < comm.size)
    counts = comm.allreduce((located.cells >= 0).astype(int))
    assert np.all(counts == 1)  # exactly one rank holds each point
    for i in located.local:
        # the cell found contains the point (to rounding), not a neighbour within a tolerance
        assert _barycentric_min(mesh, located.cells[i], pts[i]) >= -1e-12


@pytest.mark.mpi
def test_points_outside_are_refused_and_points_on_the_boundary_found():
    comm = MPI.COMM_WORLD
    mesh = dmesh.create_unit_cube(comm, 4, 4, 4, cell_type=dmesh.CellType.tetrahedron)
    with pytest.raises(PointOutsideMesh) as err:
        locate(mesh, [[0.5, 0.5, 0.5], [0.5, 0.5, 1.001]])
    assert err.value.indices == [1]
    # on the boundary face and at a corner
    located = locate(mesh, [[0.3, 0.7, 1.0], [0.0, 0.0, 0.0]])
    assert comm.allreduce(int(np.count_nonzero(located.cells >= 0))) == 2
    outside = locate(mesh, [[2.0, 0.5, 0.5], [0.5, 0.5, 0.5]], allow_outside=True)
    assert outside.owner[0] == comm.size and outside.owner[1] < comm.size


@pytest.mark.mpi
def test_cell_tree_is_built_once_per_mesh_and_rebuilt_when_the_mesh_moves():
    """The owned-cell tree is reused by every locate on the same mesh; moving the coordinates
    (x -> x + 1) rebuilds it, so points are found where the mesh now is, not where it was."""
    comm = MPI.COMM_WORLD
    mesh = dmesh.create_unit_cube(comm, 4, 4, 4, cell_type=dmesh.CellType.tetrahedron)
    tree = owned_cell_tree(mesh)
    assert owned_cell_tree(mesh) is tree
    num_owned = mesh.topology.index_map(3).size_local
    assert tree.num_bboxes == (2 * num_owned - 1 if num_owned else 0)  # a binary tree over the owned cells
    other = dmesh.create_unit_cube(comm, 4, 4, 4, cell_type=dmesh.CellType.tetrahedron)
    assert owned_cell_tree(other) is not tree  # per mesh, not shared between meshes
    before = locate(mesh, [[0.5, 0.5, 0.5]])
    assert owned_cell_tree(mesh) is tree
    mesh.geometry.x[:, 0] += 1.0
    assert owned_cell_tree(mesh) is not tree
    after = locate(mesh, [[1.5, 0.5, 0.5]])
    assert after.owner[0] == before.owner[0] and after.cells[0] == before.cells[0]
    with pytest.raises(PointOutsideMesh):
        locate(mesh, [[0.5, 0.5, 0.5]])
