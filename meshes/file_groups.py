"""Physical groups of a mesh file, read without building the FEM mesh, and the facet-group
bookkeeping that lets a facet belong to several named surfaces.

A gmsh physical group is a set of model entities; a facet entity may be in several surface
groups (``outer`` = all six faces, ``xmin`` = one of them). DOLFINx facet tags hold one value
per facet, so :func:`split_shared_surfaces` gives every distinct *combination* of groups its
own tag and maps each surface name to all tags that contain it: a facet of ``xmin`` is then
counted in both ``xmin`` and ``outer``.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import gmsh
import numpy as np

from .gmshio import GmshSession, physical_groups

if TYPE_CHECKING:  # annotations only
    from solver.config import FileGeometry

TET_TYPES = {4: "tetrahedron", 11: "tetrahedron (order 2)"}


@dataclass
class FileGroups:
    """What a mesh file holds: region and surface names, the surfaces' model entities, which
    surfaces have facets between two cells (interior), and the nodes' bounding box (file units)."""

    regions: dict[str, int]
    surfaces: dict[str, list[int]]
    surface_entities: dict[str, set[int]] = field(default_factory=dict)
    interior_surfaces: set[str] = field(default_factory=set)
    lower: tuple[float, float, float] = (0.0, 0.0, 0.0)
    upper: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def extent(self) -> float:
        """Largest bounding-box dimension (file units)."""
        return max(self.upper[i] - self.lower[i] for i in range(3))


def _face_keys(nodes: np.ndarray) -> np.ndarray:
    """Rows of sorted node triples as one structured key per face."""
    s = np.sort(nodes.astype(np.int64), axis=1)
    return np.ascontiguousarray(s).view([("a", np.int64), ("b", np.int64), ("c", np.int64)]).ravel()


def interior_surface_tags() -> set[int]:
    """Physical surface tags of the current gmsh model that hold a facet shared by two
    tetrahedra (an interface between cells, not on the outer boundary). Rank-local."""
    types, _, nodes = gmsh.model.mesh.getElements(3)
    faces = []
    for t, n in zip(types, nodes):
        npe = gmsh.model.mesh.getElementProperties(int(t))[3]
        tet = np.asarray(n, dtype=np.int64).reshape(-1, npe)[:, :4]
        faces += [tet[:, [0, 1, 2]], tet[:, [0, 1, 3]], tet[:, [0, 2, 3]], tet[:, [1, 2, 3]]]
    if not faces:
        return set()
    keys, counts = np.unique(_face_keys(np.concatenate(faces)), return_counts=True)
    shared = keys[counts == 2]
    out = set()
    for dim, tag in gmsh.model.getPhysicalGroups(2):
        tris = []
        for ent in gmsh.model.getEntitiesForPhysicalGroup(dim, tag):
            etypes, _, enodes = gmsh.model.mesh.getElements(2, int(ent))
            for t, n in zip(etypes, enodes):
                npe = gmsh.model.mesh.getElementProperties(int(t))[3]
                tris.append(np.asarray(n, dtype=np.int64).reshape(-1, npe)[:, :3])
        if tris and np.isin(_face_keys(np.concatenate(tris)), shared).any():
            out.add(int(tag))
    return out


def surface_entities(surfaces: dict[str, list[int]]) -> dict[str, set[int]]:
    """Surface name -> the gmsh entities of its groups (current model)."""
    return {
        name: {int(e) for t in tags for e in gmsh.model.getEntitiesForPhysicalGroup(2, int(t))}
        for name, tags in surfaces.items()
    }


def split_shared_surfaces(surfaces: dict[str, list[int]]) -> dict[str, list[int]]:
    """Re-tag the current gmsh model so that no facet entity is in two surface groups.

    Entities in exactly one group keep its tag; each distinct set of groups shared by some
    entities gets a new tag (above every existing one). Returns surface name -> the tags that
    cover it (unchanged when no entity is shared). Rank-local (the model is on one rank)."""
    groups = [t for _, t in gmsh.model.getPhysicalGroups(2)]
    membership: dict[int, set[int]] = {}
    for tag in groups:
        for ent in gmsh.model.getEntitiesForPhysicalGroup(2, tag):
            membership.setdefault(int(ent), set()).add(int(tag))
    if all(len(m) == 1 for m in membership.values()):
        return surfaces
    names = {t: gmsh.model.getPhysicalName(2, t) for t in groups}
    next_tag = max([t for _, t in gmsh.model.getPhysicalGroups()] + [0]) + 1
    combo_tag: dict[frozenset, int] = {}
    combo_entities: dict[int, list[int]] = {}
    for ent, m in sorted(membership.items()):
        key = frozenset(m)
        if key not in combo_tag:
            if len(m) == 1:
                combo_tag[key] = next(iter(m))
            else:
                combo_tag[key] = next_tag
                next_tag += 1
        combo_entities.setdefault(combo_tag[key], []).append(ent)
    gmsh.model.removePhysicalGroups([(2, t) for t in groups])
    for key, tag in combo_tag.items():
        name = "+".join(sorted(names[t] or str(t) for t in key))
        gmsh.model.addPhysicalGroup(2, combo_entities[tag], tag=tag, name=name)
    out: dict[str, list[int]] = {}
    for name, tags in surfaces.items():
        out[name] = sorted(tag for key, tag in combo_tag.items() if key & set(tags))
    return out


def node_bounds() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(lower, upper) corners of the current model's nodes (file units)."""
    _, coords, _ = gmsh.model.mesh.getNodes()
    xyz = np.asarray(coords, dtype=float).reshape(-1, 3)
    if len(xyz) == 0:
        return (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)
    return tuple(xyz.min(axis=0).tolist()), tuple(xyz.max(axis=0).tolist())


def resolve_path(geometry: FileGeometry, case_dir: Path) -> Path:
    p = Path(geometry.path).expanduser()
    return p if p.is_absolute() else Path(case_dir) / p


def file_error(geometry: FileGeometry, path: Path, what: str) -> ValueError:
    return ValueError(f"geometry.path = '{geometry.path}' ({path}): {what}")


def names_from_groups(
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
                raise file_error(
                    geometry, path, f"two physical volume groups are named '{name}' (tags {regions[name]}, {tag})"
                )
            regions[name] = int(tag)
        elif dim == 2:
            surfaces.setdefault(name, []).append(int(tag))
    if not regions:
        raise file_error(geometry, path, "the mesh has no physical volume groups (region tags)")
    return regions, surfaces


def check_msh_model(geometry: FileGeometry, path: Path) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Validate the gmsh model just read (rank 0): tetrahedra only, every one in exactly one
    physical volume group."""
    types, elem_tags, _ = gmsh.model.mesh.getElements(3)
    if len(types) == 0:
        raise file_error(geometry, path, "the mesh has no tetrahedra (no 3D cells at all)")
    bad = [gmsh.model.mesh.getElementProperties(t)[0] for t in types if int(t) not in TET_TYPES]
    if bad:
        raise file_error(geometry, path, f"only tetrahedral meshes are supported; found {bad}")
    if len(types) > 1:
        raise file_error(geometry, path, "mixed linear/quadratic tetrahedra are not supported")
    groups = physical_groups()
    regions, surfaces = names_from_groups(geometry, path, groups)
    counted: dict[int, int] = {}
    for dim, tag, _ in groups:
        if dim == 3:
            for ent in gmsh.model.getEntitiesForPhysicalGroup(3, tag):
                counted[int(ent)] = counted.get(int(ent), 0) + 1
    if any(c > 1 for c in counted.values()):
        raise file_error(geometry, path, "a volume belongs to more than one physical volume group")
    total = sum(len(t) for t in elem_tags)
    tagged = sum(len(t) for ent in counted for t in gmsh.model.mesh.getElements(3, ent)[1])
    if tagged != total:
        raise file_error(
            geometry, path, f"{total - tagged} of {total} tetrahedra are in no physical volume group"
        )
    return regions, surfaces


def meshio_to_gmsh_model(geometry: FileGeometry, path: Path) -> None:
    """Read ``path`` with meshio (rank 0) and put tetrahedra and triangles, with their region /
    surface numbers, into the current gmsh model as discrete entities with physical groups."""
    import meshio

    chatter = io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter), contextlib.redirect_stderr(chatter):
            m = meshio.read(str(path))
    except (Exception, SystemExit) as err:  # noqa: BLE001 - meshio calls sys.exit on unreadable data
        said = " ".join(chatter.getvalue().split())
        raise file_error(geometry, path, f"cannot be read by meshio: {said or err!r}") from err

    def blocks(cell_type: str) -> list[int]:
        return [i for i, b in enumerate(m.cells) if b.type == cell_type]

    tet_blocks = blocks("tetra")
    if not tet_blocks or sum(len(m.cells[i].data) for i in tet_blocks) == 0:
        raise file_error(
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
        raise file_error(
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
            raise file_error(geometry, path, f"region tag {v} in '{key}' must be a positive integer")
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


def read_file_groups(geometry, case_dir: Path) -> FileGroups:
    """Read a mesh file's groups on the calling rank only (no DOLFINx mesh). Raises
    ValueError naming ``geometry.path`` when the file is missing or unusable."""
    path = resolve_path(geometry, Path(case_dir))
    if not path.is_file():
        raise file_error(geometry, path, "file not found")
    with GmshSession():
        if path.suffix.lower() == ".msh":
            try:
                gmsh.merge(str(path))
            except Exception as err:  # noqa: BLE001
                raise file_error(geometry, path, f"gmsh cannot read it: {err}") from err
        else:
            meshio_to_gmsh_model(geometry, path)
        regions, surfaces = check_msh_model(geometry, path)
        interior_tags = interior_surface_tags()
        interior = {n for n, tags in surfaces.items() if set(tags) & interior_tags}
        lo, hi = node_bounds()
        return FileGroups(regions, surfaces, surface_entities(surfaces), interior, lo, hi)
