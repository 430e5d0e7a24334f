"""Structured tetrahedral boxes (DOLFINx built-in), with the same names as the gmsh box.

For benchmarks and convergence studies, where a uniform family of meshes with a known h is
wanted and gmsh's unstructured meshing time is not. Surfaces: xmin, xmax, ymin, ymax, zmin,
zmax (tags 1..6) and the alias outer; regions: body (tag 1) and optionally a ball of cells
whose midpoints lie within a radius (tag 2).
"""

from __future__ import annotations

import numpy as np

from solver import compat  # noqa: F401  (import order: dolfinx_solver before dolfinx)
from dolfinx import mesh as dmesh
from mpi4py import MPI

from .bundle import MeshBundle

SURFACES = ("xmin", "xmax", "ymin", "ymax", "zmin", "zmax")


def structured_box(
    comm: MPI.Comm,
    lower_m,
    upper_m,
    n: int | tuple[int, int, int],
    ball_region: tuple[str, tuple[float, float, float], float] | None = None,
) -> MeshBundle:
    """Box [lower_m, upper_m] (m) split into n^3 x 6 tetrahedra; optional (name, centre_m, radius_m)."""
    lo, hi = np.asarray(lower_m, float), np.asarray(upper_m, float)
    ns = [n] * 3 if isinstance(n, int) else list(n)
    mesh = dmesh.create_box(comm, [lo, hi], ns, dmesh.CellType.tetrahedron)
    tdim = mesh.topology.dim
    imap = mesh.topology.index_map(tdim)
    cells = np.arange(imap.size_local + imap.num_ghosts, dtype=np.int32)
    values = np.ones(len(cells), dtype=np.int32)
    regions = {"body": 1}
    if ball_region is not None:
        name, centre, radius = ball_region
        mid = dmesh.compute_midpoints(mesh, tdim, cells)
        values[np.linalg.norm(mid - np.asarray(centre)[None, :], axis=1) <= radius] = 2
        regions[name] = 2
    cell_tags = dmesh.meshtags(mesh, tdim, cells, values)

    mesh.topology.create_connectivity(tdim - 1, tdim)
    facets, tags = [], []
    for i, name in enumerate(SURFACES):
        d, side = divmod(i, 2)
        plane = hi[d] if side else lo[d]
        f = dmesh.locate_entities_boundary(mesh, tdim - 1, lambda x, d=d, p=plane: np.isclose(x[d], p))
        facets.append(f)
        tags.append(np.full(len(f), i + 1, dtype=np.int32))
    f = np.concatenate(facets)
    t = np.concatenate(tags)
    f, first = np.unique(f, return_index=True)  # edge facets belong to one face only
    facet_tags = dmesh.meshtags(mesh, tdim - 1, f.astype(np.int32), t[first])
    surfaces = {name: [i + 1] for i, name in enumerate(SURFACES)}
    surfaces["outer"] = list(range(1, 7))
    return MeshBundle(
        mesh=mesh,
        cell_tags=cell_tags,
        facet_tags=facet_tags,
        regions=regions,
        surfaces=surfaces,
        source=f"structured box {ns[0]}x{ns[1]}x{ns[2]}x6 tetrahedra",
    )
