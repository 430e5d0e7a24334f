"""Cached meshes as arrays (issue 12): a cache hit reads ``<entry>.arrays.npz`` without gmsh and
builds the DOLFINx mesh and tags itself (meshes.arrays), on more than one rank with the cell
partition recorded when the mesh was first distributed on as many ranks. Checked against
DOLFINx's own ``dolfinx.io.gmsh.model_to_mesh`` of the cached .msh (every cell's region and
every tagged facet, located by their centroids), serial and on 2 ranks; the cached mesh is
distributed exactly as the built one; and the cache's integrity rules extended to the arrays
and partition files (hash, source .msh, format, upgrade of an entry without arrays)."""

from __future__ import annotations

import warnings

import solver.compat  # noqa: F401  - before dolfinx / petsc4py

import gmsh
import numpy as np
import pytest
from mpi4py import MPI

import dolfinx
from dolfinx.io import gmsh as dgmsh

from meshes import build_mesh, region_volumes, surface_areas
from meshes.arrays import ARRAYS_FORMAT, facet_cell_pairs
from meshes.cache import arrays_file, digest_file, partition_file, validate_cached
from meshes.cavities import CatheterCavity
from meshes.gmshio import GmshSession
from solver.config import BoxGeometry

COMM = MPI.COMM_WORLD

BOX_TUMOUR = BoxGeometry(
    kind="box",
    lower_m=(0.0, 0.0, 0.0),
    upper_m=(0.03, 0.03, 0.03),
    mesh_size_m=0.005,
    region="bone",
    inclusion=[{"name": "tumour", "shape": "sphere", "center_m": (0.015, 0.015, 0.015), "radius_m": 0.006}],
)
CAVITY = CatheterCavity("applicator1", (0.015, 0.015, -0.01), (0.015, 0.015, 0.018), 0.825e-3, 0.01)


def _signature(mesh, cell_tags, facet_tags):
    """Sorted (centroid, tag) rows of every owned tagged cell and facet, gathered on all ranks."""
    x = mesh.geometry.x
    tdim = mesh.topology.dim
    rows = []
    for dim, tags in ((tdim, cell_tags), (tdim - 1, facet_tags)):
        n_owned = mesh.topology.index_map(dim).size_local
        own = tags.indices[tags.indices < n_owned]
        vals = tags.values[tags.indices < n_owned]
        nodes = dolfinx.mesh.entities_to_geometry(mesh, dim, own)
        local = np.column_stack([np.round(x[nodes].mean(axis=1), 13), vals]) if len(own) else np.empty((0, 4))
        both = np.concatenate(mesh.comm.allgather(local))
        rows.append(both[np.lexsort(both.T[::-1])])
    return rows


def _reference(path):
    """DOLFINx's own gmsh reader on the cached .msh (rank 0 reads)."""
    session = GmshSession() if COMM.rank == 0 else None
    try:
        if COMM.rank == 0:
            session.__enter__()
            gmsh.merge(str(path))
        data = dgmsh.model_to_mesh(gmsh.model if COMM.rank == 0 else None, COMM, 0, gdim=3)
    finally:
        if session is not None:
            session.__exit__()
    data.mesh.topology.create_connectivity(2, 3)
    return data.mesh, data.cell_tags, data.facet_tags


@pytest.mark.mpi
def test_arrays_give_the_mesh_and_tags_of_model_to_mesh(shared_tmp):
    cache = shared_tmp / "c"
    built = build_mesh(BOX_TUMOUR, COMM, cache_dir=cache, cavities=[CAVITY])
    hit = build_mesh(BOX_TUMOUR, COMM, cache_dir=cache, cavities=[CAVITY])
    assert not built.from_cache and hit.from_cache
    ref = _reference(built.cache_path)
    want_cells, want_facets = _signature(*ref)
    assert set(want_facets[:, 3]) == {1, 2, 3, 4, 5, 6, 100, 101}  # six box faces, tip, shaft
    assert len(set(want_cells[:, 3])) == 2  # bone, tumour
    for b in (built, hit):
        cells, facets = _signature(b.mesh, b.cell_tags, b.facet_tags)
        assert np.array_equal(cells, want_cells)
        assert np.array_equal(facets, want_facets)
        assert b.cell_tags.name == "regions" and b.facet_tags.name == "surfaces"
    # the cached mesh is the built one, distributed the same way (same input slices, same partition)
    assert np.array_equal(built.mesh.topology.original_cell_index, hit.mesh.topology.original_cell_index)
    assert np.array_equal(built.mesh.geometry.x, hit.mesh.geometry.x)
    assert region_volumes(hit) == region_volumes(built)
    assert surface_areas(hit) == surface_areas(built)


@pytest.mark.mpi
def test_cache_hit_does_not_use_gmsh(shared_tmp, monkeypatch):
    cache = shared_tmp / "c"
    first = build_mesh(BOX_TUMOUR, COMM, cache_dir=cache)

    def no_gmsh(*args, **kwargs):
        raise AssertionError("gmsh used on a cache hit with valid arrays")

    monkeypatch.setattr(gmsh, "initialize", no_gmsh)
    monkeypatch.setattr(gmsh, "merge", no_gmsh)
    # on 2 ranks: the recorded partition, not the graph partitioner
    monkeypatch.setattr(dolfinx.mesh, "create_cell_partitioner", no_gmsh)
    second = build_mesh(BOX_TUMOUR, COMM, cache_dir=cache)
    assert second.from_cache and second.num_cells_global() == first.num_cells_global()
    assert np.array_equal(first.mesh.topology.original_cell_index, second.mesh.topology.original_cell_index)


@pytest.mark.mpi
@pytest.mark.skipif(COMM.size == 1, reason="a partition is recorded on more than one rank")
@pytest.mark.parametrize("how", ["bytes", "dolfinx", "ranks"])
def test_partition_damaged_or_foreign_is_partitioned_again(shared_tmp, how):
    from meshes.cache import write_arrays_atomically

    cache = shared_tmp / how
    first = build_mesh(BOX_TUMOUR, COMM, cache_dir=cache)
    part = partition_file(first.cache_path, COMM.size)
    good = part.read_bytes() if COMM.rank == 0 else None
    COMM.barrier()
    if COMM.rank == 0:
        if how == "bytes":
            data = bytearray(good)
            data[-5] ^= 0xFF
            part.write_bytes(bytes(data))
        else:
            with np.load(part) as d:
                fields = dict(d)
            if how == "dolfinx":
                fields["dolfinx"] = np.array("0.0.0")
            else:  # a partition into more ranks: refused, never replayed
                fields["dest"] = np.full_like(fields["dest"], COMM.size)
            write_arrays_atomically(part, fields)
    COMM.barrier()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = build_mesh(BOX_TUMOUR, COMM, cache_dir=cache)
    assert again.from_cache
    assert np.array_equal(first.mesh.topology.original_cell_index, again.mesh.topology.original_cell_index)
    if COMM.rank == 0:
        messages = [str(w.message) for w in caught]
        if how == "bytes":
            assert any(part.name in m and "partitioning again" in m for m in messages), messages
        else:
            assert not messages, messages
        assert part.read_bytes() == good  # recorded again: the same partition


@pytest.mark.mpi
def test_entry_without_arrays_is_upgraded_quietly(shared_tmp):
    cache = shared_tmp / "c"
    first = build_mesh(BOX_TUMOUR, COMM, cache_dir=cache)
    npz = arrays_file(first.cache_path)
    COMM.barrier()
    if COMM.rank == 0:
        before = npz.read_bytes()
        npz.unlink()  # an entry written before the arrays existed: .msh and its hash only
        digest_file(npz).unlink()
    COMM.barrier()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning: nothing was damaged
        again = build_mesh(BOX_TUMOUR, COMM, cache_dir=cache)
    assert again.from_cache and again.num_cells_global() == first.num_cells_global()
    assert _signature(again.mesh, again.cell_tags, again.facet_tags)[0].shape[0] == first.num_cells_global()
    if COMM.rank == 0:
        assert validate_cached(npz) == (True, "") and npz.read_bytes() == before  # derived again, same bytes


def _damage(first, how):
    npz = arrays_file(first.cache_path)
    if how == "bytes":
        data = bytearray(npz.read_bytes())
        data[len(data) // 2] ^= 0xFF
        npz.write_bytes(bytes(data))
        return "does not match the hash"
    if how == "other_msh":  # valid arrays of another mesh, sidecar and all
        with np.load(npz) as d:
            fields = dict(d)
        fields["source_sha256"] = np.array("0" * 64)
        from meshes.cache import write_arrays_atomically

        write_arrays_atomically(npz, fields)
        return "derived from another .msh"
    if how == "format":
        with np.load(npz) as d:
            fields = dict(d)
        fields["format"] = np.array(ARRAYS_FORMAT + 1)
        from meshes.cache import write_arrays_atomically

        write_arrays_atomically(npz, fields)
        return "format"
    raise AssertionError(how)


@pytest.mark.mpi
@pytest.mark.parametrize("how", ["bytes", "other_msh", "format"])
def test_damaged_or_foreign_arrays_are_derived_again(shared_tmp, how):
    cache = shared_tmp / how
    first = build_mesh(BOX_TUMOUR, COMM, cache_dir=cache)
    want = _signature(first.mesh, first.cell_tags, first.facet_tags)
    npz = arrays_file(first.cache_path)
    good = npz.read_bytes() if COMM.rank == 0 else None
    COMM.barrier()
    reason = _damage(first, how) if COMM.rank == 0 else None
    COMM.barrier()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = build_mesh(BOX_TUMOUR, COMM, cache_dir=cache)
    assert again.from_cache  # the .msh is intact: no re-meshing
    got = _signature(again.mesh, again.cell_tags, again.facet_tags)
    assert all(np.array_equal(a, b) for a, b in zip(got, want))
    if COMM.rank == 0:
        messages = [str(w.message) for w in caught]
        assert any(npz.name in m and reason in m and "deriving it again" in m for m in messages), messages
        assert npz.read_bytes() == good and validate_cached(npz)[0]


def test_facet_cell_pairs():
    # two tetrahedra sharing the face (1, 2, 3)
    cells = np.array([[0, 1, 2, 3], [4, 3, 2, 1]], dtype=np.int64)
    tris = np.array([[3, 1, 2], [0, 1, 2], [4, 2, 3]], dtype=np.int64)
    fc, fl, fv = facet_cell_pairs(cells, 5, tris, np.array([7, 8, 9], dtype=np.int32))
    got = sorted(zip(fc.tolist(), fl.tolist(), fv.tolist()))
    # interior face (1,2,3): facet 0 of cell 0 and facet 0 of cell 1; (0,1,2): facet 3 of cell 0;
    # (4,2,3) = cell 1 without vertex 1 (its local vertex 3)
    assert got == [(0, 0, 7), (0, 3, 8), (1, 0, 7), (1, 3, 9)]
    # the same face twice with one tag is fine; with two tags it is refused
    fc, _, _ = facet_cell_pairs(cells, 5, tris[[1, 1]], np.array([8, 8], dtype=np.int32))
    assert fc.tolist() == [0]
    with pytest.raises(RuntimeError, match="two physical surface groups"):
        facet_cell_pairs(cells, 5, tris[[1, 1]], np.array([8, 9], dtype=np.int32))
    with pytest.raises(RuntimeError, match="no cell's face"):
        facet_cell_pairs(cells, 5, np.array([[0, 1, 4]]), np.array([1], dtype=np.int32))
