"""Physical groups of a mesh file, read without building the FEM mesh, and the facet-group
bookkeeping that lets a facet belong to several named surfaces.

A gmsh physical group is a set of model entities; a facet entity may be in several surface
groups (``outer`` = all six faces, ``xmin`` = one of them). DOLFINx facet tags hold one value
per facet, so :func:`split_shared_surfaces` gives every distinct *combination* of groups its
own tag and maps each surface name to all tags that contain it: a facet of ``xmin`` is then
counted in both ``xmin`` and ``outer``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import gmsh
import numpy as np


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


def read_file_groups(geometry, case_dir: Path) -> FileGroups:
    """Read a mesh file's groups on the calling rank only (no DOLFINx mesh). Raises
    ValueError naming ``geometry.path`` when the file is missing or unusable."""
    from .gmshio import GmshSession
    from .loading import _check_msh_model, _file_error, _meshio_to_gmsh_model, resolve_path

    path = resolve_path(geometry, Path(case_dir))
    if not path.is_file():
        raise _file_error(geometry, path, "file not found")
    with GmshSession():
        if path.suffix.lower() == ".msh":
            try:
                gmsh.merge(str(path))
            except Exception as err:  # noqa: BLE001
                raise _file_error(geometry, path, f"gmsh cannot read it: {err}") from err
        else:
            _meshio_to_gmsh_model(geometry, path)
        regions, surfaces = _check_msh_model(geometry, path)
        interior_tags = interior_surface_tags()
        interior = {n for n, tags in surfaces.items() if set(tags) & interior_tags}
        lo, hi = node_bounds()
        return FileGroups(regions, surfaces, surface_entities(surfaces), interior, lo, hi)
