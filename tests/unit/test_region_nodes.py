"""solver.metrics.RegionNodes: a region's nodes do not depend on the partition."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import solver.compat  # noqa: F401  (import order)
from dolfinx import fem, mesh as dmesh
from mpi4py import MPI

from solver.metrics import RegionNodes


@pytest.mark.mpi
@pytest.mark.parametrize("ghost_mode", [dmesh.GhostMode.none, dmesh.GhostMode.shared_facet])
def test_region_nodes_are_every_node_of_the_regions_cells_on_any_partition(ghost_mode):
    """Unit cube, n = 8 cells per edge, region 'left' = cells with centroid x < 3/8 and 'right'
    the rest. Closed form: 'left' has the (3 + 1) x 9 x 9 nodes with x <= 3/8, 'right' the
    (5 + 1) x 9 x 9 with x >= 3/8; the interface plane's 81 nodes belong to both. A rank's
    owned node on the interface may have its 'left' cells only on another rank (with no
    ghosts: always), so summing marks onto the owners is what finds them all."""
    comm = MPI.COMM_WORLD
    n = 8
    mesh = dmesh.create_unit_cube(comm, n, n, n, cell_type=dmesh.CellType.tetrahedron, ghost_mode=ghost_mode)
    tdim = mesh.topology.dim
    num_cells = mesh.topology.index_map(tdim).size_local + mesh.topology.index_map(tdim).num_ghosts
    cells = np.arange(num_cells, dtype=np.int32)
    mid = dmesh.compute_midpoints(mesh, tdim, cells)
    values = np.where(mid[:, 0] < 3.0 / n, 1, 2).astype(np.int32)
    tags = dmesh.meshtags(mesh, tdim, cells, values)
    V = fem.functionspace(mesh, ("Lagrange", 1))
    problem = SimpleNamespace(V=V, comm=comm, bundle=SimpleNamespace(regions={"left": 1, "right": 2}, cell_tags=tags))
    rn = RegionNodes(problem)
    count = {r: comm.allreduce(len(rn.nodes[r]), op=MPI.SUM) for r in ("left", "right")}
    assert count == {"left": 4 * 9 * 9, "right": 6 * 9 * 9}
    # the maximum over a region of x is its far face, the minimum of -x its near face
    x = V.tabulate_dof_coordinates()[:, 0]
    assert rn.max("left", x) == pytest.approx(3.0 / n, abs=1e-14)
    assert rn.max("right", -x) == pytest.approx(-3.0 / n, abs=1e-14)
