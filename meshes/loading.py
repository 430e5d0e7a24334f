"""build_mesh: geometry configuration -> distributed DOLFINx mesh with named regions/surfaces."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Callable

from solver import compat  # noqa: F401  - dolfinx_solver (PyPI wheel) before the DOLFINx bindings

import gmsh
import numpy as np
from mpi4py import MPI

from solver.config import FileGeometry

from . import cache as _cache
from .bundle import MeshBundle
from .cavities import CatheterCavity, validate_cavities
from .file_groups import interior_surface_tags, split_shared_surfaces
from .gmshio import GmshSession, mesh_from_model, on_root, physical_groups, scale_geometry
from .primitives import build_model, expected_physical_groups, primitive_tags

_TET_TYPES = {4: "tetrahedron", 11: "tetrahedron (order 2)"}


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
        from .spine import build_spine_mesh  # one vertebra: meshes/spine.py

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


def cached_gmsh_bundle(
    comm: MPI.Comm,
    *,
    label: str,
    cache_path: Callable[[Path], Path],
    expected_groups: set,
    build: Callable[[], None],
    regions: dict[str, int],
    surfaces: dict[str, list[int]],
    cache_dir: Path | None,
    use_cache: bool,
) -> MeshBundle:
    """Mesh a gmsh model on rank 0 - read from the cache when a valid entry exists (its
    physical groups must be ``expected_groups``), else ``build()`` it and cache it atomically
    - and distribute it. Collective on ``comm``."""
    session = GmshSession() if comm.rank == 0 else None

    def prepare() -> tuple[bool, str | None]:
        """On rank 0: leave the meshed model in the gmsh session; return (from_cache, path)."""
        session.__enter__()
        path = None
        if use_cache:
            path = cache_path(Path(cache_dir) if cache_dir is not None else _cache.default_cache_dir())
            if path.is_file():
                valid, why = _cache.validate_cached(path)
                if not valid and _cache.digest_file(path).exists():
                    warnings.warn(f"mesh cache entry {path.name}: {why}; rebuilding it", RuntimeWarning, stacklevel=3)
                try:
                    if valid:
                        gmsh.merge(str(path))
                        if set(physical_groups()) == expected_groups:
                            return True, str(path)
                except Exception:  # noqa: BLE001 - unreadable cache entry: rebuild it
                    pass
                gmsh.model.remove()  # start again from an empty model of the same name
                gmsh.model.add(session.name)
        build()
        if path is not None:
            try:
                _cache.write_model_atomically(path)
            except OSError as err:
                warnings.warn(f"mesh cache not written ({path}): {err}", RuntimeWarning, stacklevel=3)
                path = None
        return False, (str(path) if path is not None else None)

    try:
        from_cache, path = on_root(comm, prepare)
        mesh, cell_tags, facet_tags = mesh_from_model(comm)
    finally:
        if session is not None:
            session.__exit__(None, None, None)  # no-op unless prepare() opened it

    if from_cache:
        source = f"{label}, cached at {path}"
    elif path is not None:
        source = f"{label}, built and cached at {path}"
    else:
        source = f"{label}, built (not cached)"
    return MeshBundle(
        mesh=mesh,
        cell_tags=cell_tags,
        facet_tags=facet_tags,
        regions=regions,
        surfaces=surfaces,
        source=source,
        cache_path=Path(path) if path is not None else None,
        from_cache=from_cache,
    )


# --------------------------------------------------------------------------- files


def resolve_path(geometry: FileGeometry, case_dir: Path) -> Path:
    p = Path(geometry.path).expanduser()
    return p if p.is_absolute() else Path(case_dir) / p


def _file_error(geometry: FileGeometry, path: Path, what: str) -> ValueError:
    return ValueError(f"geometry.path = '{geometry.path}' ({path}): {what}")


def _names_from_groups(
    geometry: FileGeometry, path: Path, groups: list[tuple[int, int, str]]
) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Regions and surfaces from (dim, tag, name) physical groups; unnamed groups are named by
    their tag number. Volume groups must have distinct names; surface groups that share a name
    are merged into one surface."""
    regions: dict[str, int] = {}
    surfaces: dict[str, list[int]] = {}
    for dim, tag, name in sorted(groups):
        name = name or str(tag)
        if dim == 3:
            if name in regions:
                raise _file_error(
                    geometry, path, f"two physical volume groups are named '{name}' (tags {regions[name]}, {tag})"
                )
            regions[name] = int(tag)
        elif dim == 2:
            surfaces.setdefault(name, []).append(int(tag))
    if not regions:
        raise _file_error(geometry, path, "the mesh has no physical volume groups (region tags)")
    return regions, surfaces


def _check_msh_model(geometry: FileGeometry, path: Path) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Validate the gmsh model just read (rank 0): tetrahedra only, every one in exactly one
    physical volume group."""
    types, elem_tags, _ = gmsh.model.mesh.getElements(3)
    if len(types) == 0:
        raise _file_error(geometry, path, "the mesh has no tetrahedra (no 3D cells at all)")
    bad = [gmsh.model.mesh.getElementProperties(t)[0] for t in types if int(t) not in _TET_TYPES]
    if bad:
        raise _file_error(geometry, path, f"only tetrahedral meshes are supported; found {bad}")
    if len(types) > 1:
        raise _file_error(geometry, path, "mixed linear/quadratic tetrahedra are not supported")
    groups = physical_groups()
    regions, surfaces = _names_from_groups(geometry, path, groups)
    counted: dict[int, int] = {}
    for dim, tag, _ in groups:
        if dim == 3:
            for ent in gmsh.model.getEntitiesForPhysicalGroup(3, tag):
                counted[int(ent)] = counted.get(int(ent), 0) + 1
    if any(c > 1 for c in counted.values()):
        raise _file_error(geometry, path, "a volume belongs to more than one physical volume group")
    total = sum(len(t) for t in elem_tags)
    tagged = sum(len(t) for ent in counted for t in gmsh.model.mesh.getElements(3, ent)[1])
    if tagged != total:
        raise _file_error(
            geometry, path, f"{total - tagged} of {total} tetrahedra are in no physical volume group"
        )
    return regions, surfaces


def _meshio_to_gmsh_model(geometry: FileGeometry, path: Path) -> None:
    """Read ``path`` with meshio (rank 0) and put tetrahedra and triangles, with their region /
    surface numbers, into the current gmsh model as discrete entities with physical groups."""
    import meshio

    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            m = meshio.read(str(path))
    except (Exception, SystemExit) as err:  # noqa: BLE001 - meshio calls sys.exit on unreadable data
        said = " ".join(chatter.getvalue().split())
        raise _file_error(geometry, path, f"cannot be read by meshio: {said or err!r}") from err

    def blocks(cell_type: str) -> list[int]:
        return [i for i, b in enumerate(m.cells) if b.type == cell_type]

    tet_blocks = blocks("tetra")
    if not tet_blocks or sum(len(m.cells[i].data) for i in tet_blocks) == 0:
        raise _file_error(
            geometry, path, f"the mesh has no tetrahedra (cell types: {[b.type for b in m.cells]})"
        )

    def integral(arr) -> bool:
        a = np.asarray(arr)
        if np.issubdtype(a.dtype, np.integer):
            return True
        return np.issubdtype(a.dtype, np.floating) and a.size > 0 and bool(np.all(a == np.round(a)))

    key = None
    if "gmsh:physical" in m.cell_data:
        key = "gmsh:physical"
    else:
        for k, data in m.cell_data.items():
            if all(integral(data[i]) for i in tet_blocks):
                key = k
                break
    if key is None:
        raise _file_error(
            geometry, path,
            "the mesh has no physical volume groups (no integer cell data such as 'gmsh:physical' "
            f"on the tetrahedra; cell data: {sorted(m.cell_data)})",
        )

    tets = np.concatenate([np.asarray(m.cells[i].data, dtype=np.int64) for i in tet_blocks])
    tet_val = np.concatenate([np.asarray(m.cell_data[key][i]).astype(np.int64).ravel() for i in tet_blocks])
    tri_blocks = blocks("triangle")
    if tri_blocks and all(integral(m.cell_data[key][i]) for i in tri_blocks):
        tris = np.concatenate([np.asarray(m.cells[i].data, dtype=np.int64) for i in tri_blocks])
        tri_val = np.concatenate(
            [np.asarray(m.cell_data[key][i]).astype(np.int64).ravel() for i in tri_blocks]
        )
    else:
        tris, tri_val = np.empty((0, 3), np.int64), np.empty(0, np.int64)

    # Names: field_data {name: [tag, dim]} as meshio's gmsh readers/writers store them.
    names: dict[tuple[int, int], str] = {}
    for name, fd in (m.field_data or {}).items():
        fd = np.asarray(fd).ravel()
        if fd.size >= 2:
            names[(int(fd[1]), int(fd[0]))] = name

    # Keep only points used by tetrahedra; number gmsh nodes 1..N.
    used = np.unique(tets)
    new_index = np.full(len(m.points), -1, dtype=np.int64)
    new_index[used] = np.arange(1, len(used) + 1)
    coords = np.zeros((len(used), 3))
    pts = np.asarray(m.points, dtype=float)
    coords[:, : pts.shape[1]] = pts[used]
    if len(tris):
        keep = np.all(new_index[tris] > 0, axis=1)
        tris, tri_val = tris[keep], tri_val[keep]

    model = gmsh.model
    vol_tags = [int(v) for v in np.unique(tet_val)]
    node_entity = None
    next_elem = 1
    groups: list[tuple[int, int, str]] = []
    for v in vol_tags:
        if v <= 0:
            raise _file_error(geometry, path, f"region tag {v} in '{key}' must be a positive integer")
        ent = model.addDiscreteEntity(3)
        if node_entity is None:
            node_entity = ent
            model.mesh.addNodes(3, ent, np.arange(1, len(used) + 1), coords.ravel())
        sel = tets[tet_val == v]
        model.mesh.addElementsByType(ent, 4, np.arange(next_elem, next_elem + len(sel)), new_index[sel].ravel())
        next_elem += len(sel)
        name = names.get((3, v), str(v))
        model.addPhysicalGroup(3, [ent], tag=v, name=name)
        groups.append((3, v, name))
    for v in (int(x) for x in np.unique(tri_val)):
        if v <= 0:
            continue  # untagged facets
        ent = model.addDiscreteEntity(2)
        sel = tris[tri_val == v]
        model.mesh.addElementsByType(ent, 2, np.arange(next_elem, next_elem + len(sel)), new_index[sel].ravel())
        next_elem += len(sel)
        model.addPhysicalGroup(2, [ent], tag=v, name=names.get((2, v), str(v)))


def load_file(geometry: FileGeometry, comm: MPI.Comm = MPI.COMM_WORLD, case_dir: Path = Path(".")) -> MeshBundle:
    """Read a mesh file (see :func:`build_mesh`). Collective."""
    path = resolve_path(geometry, case_dir)
    session = GmshSession() if comm.rank == 0 else None

    def prepare():
        if not path.is_file():
            raise _file_error(geometry, path, "file not found")
        session.__enter__()
        if path.suffix.lower() == ".msh":
            try:
                gmsh.merge(str(path))
            except Exception as err:  # noqa: BLE001
                raise _file_error(geometry, path, f"gmsh cannot read it: {err}") from err
            # DOLFINx expects node tags 1..N without gaps; files written by other tools may
            # have gaps.
            gmsh.model.mesh.renumberNodes()
        else:
            _meshio_to_gmsh_model(geometry, path)
        regions, surfaces = _check_msh_model(geometry, path)
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
