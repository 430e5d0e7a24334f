"""A tetrahedral gmsh mesh as plain arrays, and arrays -> distributed DOLFINx mesh with tags.

The cache stores these arrays beside the .msh (``<entry>.arrays.npz``), so a cached load skips
gmsh entirely, and the mesh is built without :func:`dolfinx.io.gmsh.model_to_mesh`'s parallel
look-ups of tagged entities (``distribute_entity_data`` + ``meshtags_from_entities`` for cells
and for facets: about 1.7 s of the 4.5 s cached load of the converged T8 mesh, 897k cells, on
2 ranks of a quiet 2-core machine):

- cell tags come from :attr:`dolfinx.mesh.Topology.original_cell_index` (the input index of
  every local cell) and the tag of each input cell;
- facet tags are stored as (input cell, local facet) pairs, the local facet numbered as in
  the DOLFINx/Basix reference tetrahedron (facet i is opposite vertex i), and found through
  the cell -> facet connectivity.

The input cells are handed to :func:`dolfinx.mesh.create_mesh` in equal contiguous slices on
every rank (not all on rank 0): the dual graph for the partitioner is then built in parallel.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from solver import compat  # noqa: F401  - dolfinx_solver (PyPI wheel) before the DOLFINx bindings

import basix.ufl
import numpy as np
import ufl
from mpi4py import MPI

import dolfinx

# Bump when the arrays stored in the cache change meaning or layout (an entry of another
# format is rebuilt from its .msh).
ARRAYS_FORMAT = 1

GMSH_TET4 = 4  # gmsh element type of the linear tetrahedron
GMSH_TRI3 = 2  # gmsh element type of the linear triangle
# Vertices of facet i of the reference tetrahedron (Basix/DOLFINx numbering: opposite vertex i)
TET_FACETS = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]], dtype=np.int64)


@dataclass
class MeshArrays:
    """A linear tetrahedral mesh with tagged cells and facets (one rank's copy of everything).

    x: (N, 3) float64 node coordinates (m), row i = node i.
    cells: (M, 4) int64 node indices of each tetrahedron (DOLFINx vertex order).
    cell_values: (M,) int32 region tag of each cell.
    facet_cells, facet_local, facet_values: (K,) int64 / int8 / int32: tagged facet j is facet
        ``facet_local[j]`` (reference numbering) of input cell ``facet_cells[j]``, with tag
        ``facet_values[j]``; an interior facet is listed once for each of its two cells.
    groups: sorted (dim, tag, name) of the physical groups the mesh came with.
    """

    x: np.ndarray
    cells: np.ndarray
    cell_values: np.ndarray
    facet_cells: np.ndarray
    facet_local: np.ndarray
    facet_values: np.ndarray
    groups: list[tuple[int, int, str]]

    def to_npz_dict(self, source_sha256: str) -> dict[str, np.ndarray]:
        """Arrays for ``np.savez``; ``source_sha256``: the digest of the .msh they come from.
        Cells are stored as int32 (node counts below 2^31 are checked)."""
        if len(self.x) >= 2**31:
            raise ValueError(f"{len(self.x)} nodes: too many for int32 cell storage")
        return {
            "format": np.array(ARRAYS_FORMAT, dtype=np.int64),
            "source_sha256": np.array(source_sha256),
            "groups": np.array(json.dumps(sorted(self.groups))),
            "x": np.ascontiguousarray(self.x, dtype=np.float64),
            "cells": np.ascontiguousarray(self.cells, dtype=np.int32),
            "cell_values": np.ascontiguousarray(self.cell_values, dtype=np.int32),
            "facet_cells": np.ascontiguousarray(self.facet_cells, dtype=np.int64),
            "facet_local": np.ascontiguousarray(self.facet_local, dtype=np.int8),
            "facet_values": np.ascontiguousarray(self.facet_values, dtype=np.int32),
        }

    @classmethod
    def from_npz(cls, data, source_sha256: str) -> "MeshArrays":
        """From a loaded npz; ValueError if it is of another format, comes from another .msh
        (digest), or its arrays are inconsistent (shapes, indices out of range)."""
        if int(data["format"]) != ARRAYS_FORMAT:
            raise ValueError(f"arrays of format {int(data['format'])}, expected {ARRAYS_FORMAT}")
        if str(data["source_sha256"]) != source_sha256:
            raise ValueError("arrays derived from another .msh (digest differs)")
        groups = [(int(d), int(t), str(n)) for d, t, n in json.loads(str(data["groups"]))]
        arr = cls(
            x=data["x"], cells=data["cells"].astype(np.int64), cell_values=data["cell_values"],
            facet_cells=data["facet_cells"], facet_local=data["facet_local"],
            facet_values=data["facet_values"], groups=groups,
        )
        arr.check()
        return arr

    def check(self) -> None:
        """ValueError unless shapes and index ranges are consistent."""
        n, m, k = len(self.x), len(self.cells), len(self.facet_cells)
        ok = (
            self.x.ndim == 2 and self.x.shape[1] == 3 and self.cells.ndim == 2 and self.cells.shape[1] == 4
            and self.cell_values.shape == (m,) and self.facet_local.shape == (k,)
            and self.facet_values.shape == (k,) and m > 0
            and int(self.cells.min()) >= 0 and int(self.cells.max()) < n
            and (k == 0 or (int(self.facet_cells.min()) >= 0 and int(self.facet_cells.max()) < m
                            and int(self.facet_local.min()) >= 0 and int(self.facet_local.max()) < 4))
            and bool(np.all(np.isfinite(self.x)))
        )
        if not ok:
            raise ValueError("inconsistent mesh arrays (shapes or index ranges)")


def partition_record(dest: np.ndarray, ranks: int, source_sha256: str) -> dict[str, np.ndarray]:
    """Arrays for ``np.savez`` of a recorded cell partition (:func:`mesh_from_arrays`) on
    ``ranks`` ranks of the mesh derived from the .msh of digest ``source_sha256``."""
    return {
        "format": np.array(ARRAYS_FORMAT, dtype=np.int64),
        "source_sha256": np.array(source_sha256),
        "dolfinx": np.array(dolfinx.__version__),
        "ranks": np.array(ranks, dtype=np.int64),
        "dest": np.ascontiguousarray(dest, dtype=np.int32),
    }


def partition_from_npz(data, source_sha256: str, ranks: int, num_cells: int) -> np.ndarray:
    """The destinations of a stored partition; ValueError unless it was recorded for this mesh
    (format, source digest, cell count), this many ranks and this DOLFINx version (whose
    partitioner it replays)."""
    if int(data["format"]) != ARRAYS_FORMAT or str(data["source_sha256"]) != source_sha256:
        raise ValueError("partition of another format or mesh")
    if int(data["ranks"]) != ranks or str(data["dolfinx"]) != dolfinx.__version__:
        raise ValueError(f"partition for {int(data['ranks'])} ranks / DOLFINx {data['dolfinx']}")
    dest = np.asarray(data["dest"], dtype=np.int32)
    if dest.shape != (num_cells,) or (num_cells and (int(dest.min()) < 0 or int(dest.max()) >= ranks)):
        raise ValueError("inconsistent partition (length or ranks)")
    return dest


def arrays_from_model() -> MeshArrays:
    """The current gmsh model (this rank) as :class:`MeshArrays`. Only linear tetrahedra (and
    triangles for tagged facets) are supported: RuntimeError otherwise, or when a cell is not
    tagged exactly once, or a tagged triangle is not a face of a cell, or a facet carries two
    different tags."""
    import gmsh
    from dolfinx.io import gmsh as dgmsh

    x = dgmsh.extract_geometry(gmsh.model)
    topologies, _ = dgmsh.extract_topology_and_markers(gmsh.model)
    groups = sorted((d, t, gmsh.model.getPhysicalName(d, t)) for d, t in gmsh.model.getPhysicalGroups())
    other = sorted(set(topologies) - {GMSH_TET4, GMSH_TRI3})
    if GMSH_TET4 not in topologies or other:
        raise RuntimeError(f"mesh arrays: linear tetrahedra (and triangles) only; gmsh element types {sorted(topologies)}")
    tets = topologies[GMSH_TET4]
    n_cells = sum(len(t) for t in gmsh.model.mesh.getElements(3, -1)[1])
    if len(tets["entity_tags"]) != n_cells or len(np.unique(tets["entity_tags"])) != n_cells:
        raise RuntimeError(f"mesh arrays: every cell must be in exactly one physical volume group "
                           f"({len(tets['entity_tags'])} tagged of {n_cells})")
    perm = dgmsh.cell_perm_array(dolfinx.mesh.CellType.tetrahedron, 4)
    cells = np.ascontiguousarray(np.asarray(tets["topology"], dtype=np.int64)[:, perm])
    cell_values = np.asarray(tets["cell_data"], dtype=np.int32)
    if GMSH_TRI3 in topologies:
        tris = np.asarray(topologies[GMSH_TRI3]["topology"], dtype=np.int64)
        tri_values = np.asarray(topologies[GMSH_TRI3]["cell_data"], dtype=np.int32)
    else:
        tris, tri_values = np.empty((0, 3), np.int64), np.empty(0, np.int32)
    fc, fl, fv = facet_cell_pairs(cells, len(x), tris, tri_values)
    return MeshArrays(x=np.asarray(x, dtype=np.float64), cells=cells, cell_values=cell_values,
                      facet_cells=fc, facet_local=fl, facet_values=fv, groups=groups)


def facet_cell_pairs(cells: np.ndarray, num_nodes: int, tris: np.ndarray, values: np.ndarray):
    """(cell, local facet, value) of every cell having one of the triangles ``tris`` (K, 3) as a
    face. RuntimeError if a triangle is no cell's face or is tagged twice with different values."""
    if len(tris) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int8), np.empty(0, np.int32)
    n = np.int64(num_nodes)

    def keys(tri):  # one int64 per (unordered) triangle; n^3 < 2^63 for n < 2 million
        s = np.sort(tri, axis=1)
        return (s[:, 0] * n + s[:, 1]) * n + s[:, 2]

    if num_nodes >= 2_000_000:
        raise RuntimeError(f"mesh arrays: {num_nodes} nodes, facet keys would overflow")
    tkeys = keys(tris)
    tkeys, first = np.unique(tkeys, return_index=True)
    # a triangle listed twice (two groups) must carry one value
    full = keys(tris)
    idx = np.searchsorted(tkeys, full)
    if np.any(values != values[first][idx]):
        raise RuntimeError("mesh arrays: a facet is in two physical surface groups with different tags")
    tvalues = values[first]
    # candidate cells: at least three vertices on tagged triangles
    on = np.zeros(num_nodes, dtype=bool)
    on[tris.ravel()] = True
    cand = np.flatnonzero(on[cells].sum(axis=1) >= 3)
    faces = cells[cand][:, TET_FACETS].reshape(-1, 3)  # row 4 j + i: facet i of cell cand[j]
    fkeys = keys(faces)
    pos = np.searchsorted(tkeys, fkeys)
    pos[pos == len(tkeys)] = 0
    hit = np.flatnonzero(tkeys[pos] == fkeys)
    found = np.zeros(len(tkeys), dtype=np.int64)
    np.add.at(found, pos[hit], 1)
    if np.any(found == 0):
        raise RuntimeError(f"mesh arrays: {int(np.count_nonzero(found == 0))} tagged triangle(s) are no cell's face")
    return cand[hit // 4].astype(np.int64), (hit % 4).astype(np.int8), tvalues[pos[hit]].astype(np.int32)


def _slice(total: int, rank: int, size: int) -> tuple[int, int]:
    return total * rank // size, total * (rank + 1) // size


def _scatter_rows(comm: MPI.Comm, data: np.ndarray | None, width: int, dtype, total: int) -> np.ndarray:
    """Rank 0's ``data`` ((total, width) rows) in contiguous equal slices, one per rank."""
    lo, hi = _slice(total, comm.rank, comm.size)
    out = np.empty((hi - lo, width), dtype=dtype)
    if comm.size == 1:
        out[...] = data
        return out
    counts = [(_slice(total, r, comm.size)[1] - _slice(total, r, comm.size)[0]) * width for r in range(comm.size)]
    send = [np.ascontiguousarray(data, dtype=dtype), counts] if comm.rank == 0 else None
    comm.Scatterv(send, out, root=0)
    return out


def mesh_from_arrays(comm: MPI.Comm, arrays: MeshArrays | None, partition: np.ndarray | None = None):
    """Collective: ``(mesh, cell_tags, facet_tags, partition)`` from ``arrays`` held by rank 0
    (None on the other ranks). Cells and nodes are scattered in contiguous slices and
    distributed by :func:`dolfinx.mesh.create_mesh` (no ghost cells).

    ``partition`` (rank 0; used if any): the destination rank of every input cell, as recorded
    from an earlier call on as many ranks (:func:`dolfinx.mesh.create_cell_partitioner`'s default
    graph partitioner, which is deterministic for the same input slices): it skips the dual graph
    and the graph partitioner (about a third of ``create_mesh`` for the converged T8 mesh on
    2 ranks). Without one, the default partitioner runs and its result is returned as
    ``partition`` on rank 0 (None elsewhere, in serial, or when it is not one rank per cell).
    """
    root = comm.rank == 0
    sizes = comm.bcast((len(arrays.x), len(arrays.cells), partition is not None) if root else None, root=0)
    n_nodes, n_cells, stored = sizes
    x = _scatter_rows(comm, arrays.x if root else None, 3, np.float64, n_nodes)
    cells = _scatter_rows(comm, arrays.cells if root else None, 4, np.int64, n_cells)
    domain = ufl.Mesh(basix.ufl.element("Lagrange", "tetrahedron", 1, shape=(3,), dtype=np.float64))
    recorded: dict[str, np.ndarray] = {}
    partitioner = None
    if comm.size > 1 and stored:
        dest = _scatter_rows(comm, partition.reshape(-1, 1) if root else None, 1, np.int32, n_cells).ravel()
        offsets = np.arange(len(dest) + 1, dtype=np.int32)

        def partitioner(_comm, nparts, _cell_types, _cells):
            return dolfinx.graph.adjacencylist(dest, offsets)._cpp_object

    elif comm.size > 1:
        default = dolfinx.mesh.create_cell_partitioner(dolfinx.mesh.GhostMode.none, 2)

        def partitioner(comm_, nparts, cell_types, cells_):
            out = default(comm_, nparts, cell_types, cells_)
            recorded["array"], recorded["offsets"] = np.array(out.array), np.array(out.offsets)
            return out

    mesh = dolfinx.mesh.create_mesh(comm, cells, domain, x, partitioner)
    new_partition = None
    if recorded:
        one_each = len(recorded["array"]) == len(cells) and np.array_equal(
            recorded["offsets"], np.arange(len(cells) + 1))
        if comm.allreduce(bool(one_each), op=MPI.LAND):
            counts = comm.gather(len(cells), root=0)
            new_partition = np.empty(n_cells, dtype=np.int32) if root else None
            comm.Gatherv(recorded["array"].astype(np.int32), [new_partition, counts] if root else None, root=0)
    del x, cells
    tdim = mesh.topology.dim
    original = np.asarray(mesh.topology.original_cell_index, dtype=np.int64)  # owned, then ghosts
    num_cells = len(original)

    # cell tags: the tag of each local cell's input cell, looked up on rank 0
    counts = comm.gather(num_cells, root=0)
    if comm.size == 1:
        values = np.asarray(arrays.cell_values[original], dtype=np.int32)
    else:
        everyone = np.empty(sum(counts), dtype=np.int64) if root else None
        comm.Gatherv(original, [everyone, counts] if root else None, root=0)
        looked_up = np.asarray(arrays.cell_values[everyone], dtype=np.int32) if root else None
        values = np.empty(num_cells, dtype=np.int32)
        comm.Scatterv([looked_up, counts] if root else None, values, root=0)
    cell_tags = dolfinx.mesh.meshtags(mesh, tdim, np.arange(num_cells, dtype=np.int32), values)

    # facet tags: (input cell, local facet) pairs of the local cells, through cell -> facet
    facet_data = comm.bcast(
        (arrays.facet_cells, arrays.facet_local, arrays.facet_values) if root else None, root=0
    )
    fcells, flocal, fvalues = facet_data
    mesh.topology.create_connectivity(tdim - 1, tdim)
    c_to_f = mesh.topology.connectivity(tdim, tdim - 1)
    order = np.argsort(original)
    pos = np.searchsorted(original, fcells, sorter=order)
    pos[pos == num_cells] = 0
    mine = np.flatnonzero(original[order[pos]] == fcells) if num_cells else np.empty(0, np.int64)
    local_cells = order[pos[mine]]
    offsets = c_to_f.offsets
    facets = c_to_f.array[offsets[local_cells] + flocal[mine].astype(np.int64)].astype(np.int32)
    facets, first = np.unique(facets, return_index=True)
    facet_tags = dolfinx.mesh.meshtags(mesh, tdim - 1, facets, fvalues[mine][first].astype(np.int32))
    cell_tags.name = "regions"
    facet_tags.name = "surfaces"
    return mesh, cell_tags, facet_tags, new_partition
