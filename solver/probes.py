"""Points in a distributed mesh: ownership, evaluation and exact point loads.

Every function here is collective: call it on all ranks with the same points.
A point is owned by the lowest rank that has an owned cell containing it, so that
the result does not depend on the partition.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import compat
import dolfinx
from dolfinx import fem, geometry
from mpi4py import MPI


class PointOutsideMesh(ValueError):
    def __init__(self, indices: list[int], points: np.ndarray):
        self.indices = indices
        self.points = points
        super().__init__(f"points {indices} lie outside the mesh: {points[indices].tolist()}")


@dataclass
class LocatedPoints:
    """Points with the cell that holds each on its owning rank (-1 elsewhere)."""

    points: np.ndarray  # (n, 3), identical on all ranks
    cells: np.ndarray  # (n,), local cell index on the owner, -1 elsewhere
    owner: np.ndarray  # (n,), owning rank

    @property
    def local(self) -> np.ndarray:
        return np.flatnonzero(self.cells >= 0)


def locate(mesh: dolfinx.mesh.Mesh, points, *, allow_outside: bool = False) -> LocatedPoints:
    """Find, for each point, the owning rank and its cell there."""
    comm = mesh.comm
    pts = np.ascontiguousarray(np.asarray(points, dtype=np.float64).reshape(-1, 3))
    n = pts.shape[0]
    tdim = mesh.topology.dim
    num_owned = mesh.topology.index_map(tdim).size_local
    tree = geometry.bb_tree(mesh, tdim, entities=np.arange(num_owned, dtype=np.int32))
    candidates = geometry.compute_collisions_points(tree, pts)
    colliding = geometry.compute_colliding_cells(mesh, candidates, pts)
    local_cell = np.full(n, -1, dtype=np.int32)
    for i in range(n):
        links = colliding.links(i)
        if len(links) > 0:
            local_cell[i] = links[0]
    claim = np.where(local_cell >= 0, comm.rank, comm.size).astype(np.int32)
    owner = np.empty_like(claim)
    comm.Allreduce(claim, owner, op=MPI.MIN)
    outside = np.flatnonzero(owner == comm.size)
    if len(outside) and not allow_outside:
        raise PointOutsideMesh(outside.tolist(), pts)
    cells = np.where(owner == comm.rank, local_cell, -1).astype(np.int32)
    return LocatedPoints(pts, cells, owner)


def evaluate(u: fem.Function, located: LocatedPoints) -> np.ndarray:
    """Values of a scalar function at the points, identical on every rank (NaN if outside)."""
    n = located.points.shape[0]
    values = np.zeros(n)
    idx = located.local
    if len(idx):
        values[idx] = u.eval(located.points[idx], located.cells[idx]).reshape(-1)
    out = np.zeros(n)
    u.function_space.mesh.comm.Allreduce(values, out, op=MPI.SUM)
    out[located.owner == u.function_space.mesh.comm.size] = np.nan
    return out


def point_load(V: fem.FunctionSpace, located: LocatedPoints, weights) -> fem.Function:
    """The vector b_i = sum_p w_p phi_i(x_p): the exact assembly of sum_p w_p delta(x - x_p).

    Returned as a Function whose owned entries are complete (ghost contributions added).
    """
    mesh = V.mesh
    weights = np.asarray(weights, dtype=np.float64).reshape(-1)
    load = fem.Function(V)
    arr = load.x.array
    element = V.element.basix_element
    cmap, x_dofmap = compat.coordinate_map(mesh)
    for p in located.local:
        cell = located.cells[p]
        cell_x = mesh.geometry.x[x_dofmap[cell]]
        X = cmap.pull_back(located.points[p : p + 1], cell_x)
        phi = element.tabulate(0, X)[0, 0, :, 0]
        dofs = V.dofmap.cell_dofs(cell)
        arr[dofs] += weights[p] * phi
    load.x.scatter_reverse(dolfinx.la.InsertMode.add)
    load.x.scatter_forward()
    return load


def point_load_vector(V: fem.FunctionSpace, points, weights):
    """PETSc vector of ``point_load`` for ``points`` (located here; PointOutsideMesh if any
    lies outside the mesh)."""
    import dolfinx.fem.petsc

    f = point_load(V, locate(V.mesh, points), weights)
    vec = dolfinx.fem.petsc.create_vector(V)
    vec.array[:] = f.x.array[: len(vec.array)]
    return vec
