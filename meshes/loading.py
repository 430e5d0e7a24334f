"""build_mesh: geometry configuration -> distributed DOLFINx mesh with named regions/surfaces."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from solver import compat  # noqa: F401  - dolfinx_solver (PyPI wheel) before the DOLFINx bindings

import gmsh
from mpi4py import MPI

from solver.config import FileGeometry

from . import cache as _cache
from .bundle import MeshBundle
from .cavities import CatheterCavity, validate_cavities
from .file_groups import (
    check_msh_model,
    file_error,
    interior_surface_tags,
    meshio_to_gmsh_model,
    resolve_path,
    split_shared_surfaces,
)
from .gmshio import GmshSession, cached_gmsh_bundle, mesh_from_model, on_root, scale_geometry
from .primitives import build_model, expected_physical_groups, primitive_tags
from .spine import build_spine_mesh


def build_mesh(
    geometry,
    comm: MPI.Comm = MPI.COMM_WORLD,
    cache_dir: Path | None = None,
    case_dir: Path = Path("."),
    use_cache: bool = True,
    cavities: Sequence[CatheterCavity] = (),
) -> MeshBundle:
    """Build (or load) the mesh of ``geometry``. Collective on ``comm``.

    Primitives (box, sphere, shell, cylinder) are meshed with gmsh on rank 0 and cached as .msh
    in ``cache_dir`` (default :func:`meshes.cache.default_cache_dir`); ``use_cache=False``
    neither reads nor writes the cache. A :class:`FileGeometry` is read from
    ``case_dir / geometry.path`` (gmsh .msh, or any format meshio reads).

    A :class:`SpineGeometry` (``kind = "spine"``) is built by :mod:`meshes.spine` (cached the
    same way).

    ``cavities`` (primitives and spine): applicator catheters cut out of every region, each adding
    the surfaces ``<name>_tip`` (facet tag 100 + 2 i), ``<name>_shaft`` (101 + 2 i) and the
    alias ``<name>``; see :mod:`meshes.cavities`. Invalid cavities raise ValueError on every
    rank (the check is pure Python, done before any gmsh call).
    """
    cavities = validate_cavities(geometry, cavities)
    if isinstance(geometry, FileGeometry):
        return load_file(geometry, comm, case_dir=Path(case_dir))
    if getattr(geometry, "kind", None) == "spine":
        return build_spine_mesh(geometry, comm, cache_dir=cache_dir, use_cache=use_cache, cavities=cavities)
    return _build_primitive(geometry, comm, cache_dir, use_cache, cavities)


# --------------------------------------------------------------------------- primitives


def _build_primitive(
    geometry, comm: MPI.Comm, cache_dir: Path | None, use_cache: bool, cavities: tuple[CatheterCavity, ...] = ()
) -> MeshBundle:
    regions, surfaces = primitive_tags(geometry, cavities)
    return cached_gmsh_bundle(
        comm,
        label=f"gmsh {geometry.kind}",
        cache_path=lambda folder: _cache.cache_file(folder, geometry, cavities),
        expected_groups=expected_physical_groups(geometry, cavities),
        build=lambda: build_model(geometry, cavities),
        regions=regions,
        surfaces=surfaces,
        cache_dir=cache_dir,
        use_cache=use_cache,
    )


# --------------------------------------------------------------------------- files


def load_file(geometry: FileGeometry, comm: MPI.Comm = MPI.COMM_WORLD, case_dir: Path = Path(".")) -> MeshBundle:
    """Read a mesh file (see :func:`build_mesh`). Collective."""
    path = resolve_path(geometry, case_dir)
    session = GmshSession() if comm.rank == 0 else None

    def prepare():
        if not path.is_file():
            raise file_error(geometry, path, "file not found")
        session.__enter__()
        if path.suffix.lower() == ".msh":
            try:
                gmsh.merge(str(path))
            except Exception as err:  # noqa: BLE001
                raise file_error(geometry, path, f"gmsh cannot read it: {err}") from err
            # DOLFINx expects node tags 1..N without gaps; files written by other tools may
            # have gaps.
            gmsh.model.mesh.renumberNodes()
        else:
            meshio_to_gmsh_model(geometry, path)
        regions, surfaces = check_msh_model(geometry, path)
        # a facet in several surface groups is counted in every one of them
        surfaces = split_shared_surfaces(surfaces)
        interior_tags = interior_surface_tags()
        interior = sorted(n for n, tags in surfaces.items() if set(tags) & interior_tags)
        return regions, surfaces, interior

    try:
        regions, surfaces, interior = on_root(comm, prepare)
        # Integrals over interior facets need both cells of every facet on its owning rank.
        mesh, cell_tags, facet_tags = mesh_from_model(comm, shared_facets=bool(interior))
    finally:
        if session is not None:
            session.__exit__(None, None, None)  # no-op unless prepare() opened it
    scale_geometry(mesh, geometry.length_scale_m)
    scale_note = f", scaled by {geometry.length_scale_m} m per unit" if geometry.length_scale_m != 1.0 else ""
    return MeshBundle(
        mesh=mesh,
        cell_tags=cell_tags,
        facet_tags=facet_tags,
        regions=regions,
        surfaces=surfaces,
        source=f"file {os.fspath(path)}{scale_note}",
        interior_surfaces=set(interior),
    )
