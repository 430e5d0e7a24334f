"""gmsh OpenCASCADE models of the primitive geometries (box, sphere, shell, cylinder).

Everything that touches gmsh here runs on one rank only, inside a
:class:`meshes.gmshio.GmshSession`. The tag numbering is fixed per geometry kind
(:func:`primitive_tags`), so names and aliases can be rebuilt from the geometry alone, e.g.
when a mesh comes from the cache.
"""

from __future__ import annotations

import gmsh
import numpy as np

from solver.config import (
    BoxGeometry,
    CylinderGeometry,
    Inclusion,
    ShellGeometry,
    SphereGeometry,
)

from .cavities import CatheterCavity, cavity_surfaces
from .gmsh_model import (
    MIN_CELLS_PER_RADIUS,
    add_ellipsoid,
    add_region_groups,
    add_surface_groups,
    cavity_cylinders,
    cavity_wall_field,
    generate,
    num,
    point_distance_expr,
    refinement_fields,
    restrict_field,
    sample_point,
    threshold_field,
)

# Facet tag of each (non-alias) surface, per geometry kind; aliases cover several tags.
SURFACE_TAGS: dict[str, dict[str, int]] = {
    "box": {"xmin": 1, "xmax": 2, "ymin": 3, "ymax": 4, "zmin": 5, "zmax": 6},
    "sphere": {"outer": 1},
    "shell": {"outer": 1, "inner": 2},
    "cylinder": {"side": 1, "bottom": 2, "top": 3},
}
SURFACE_ALIASES: dict[str, dict[str, list[str]]] = {
    "box": {"outer": ["xmin", "xmax", "ymin", "ymax", "zmin", "zmax"]},
    "sphere": {},
    "shell": {},
    "cylinder": {"outer": ["side", "bottom", "top"]},
}

Primitive = BoxGeometry | SphereGeometry | ShellGeometry | CylinderGeometry


def primitive_tags(
    geometry: Primitive, cavities: tuple[CatheterCavity, ...] = ()
) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Region name -> cell tag and surface name -> facet tags (aliases included).

    Regions: the main region is 1, inclusion i (0-based, in file order) is i + 2. Cavity i adds
    <name>_tip (100 + 2 i), <name>_shaft (101 + 2 i) and the alias <name> (both).
    """
    regions = {geometry.region: 1}
    for i, inc in enumerate(geometry.inclusion):
        regions[inc.name] = i + 2
    base = SURFACE_TAGS[geometry.kind]
    surfaces = {name: [tag] for name, tag in base.items()}
    for alias, members in SURFACE_ALIASES[geometry.kind].items():
        surfaces[alias] = [base[m] for m in members]
    assert set(surfaces) == set(geometry.surface_names()), (surfaces, geometry.surface_names())
    surfaces.update(cavity_surfaces(cavities)[1])
    return regions, surfaces


def expected_physical_groups(
    geometry: Primitive, cavities: tuple[CatheterCavity, ...] = ()
) -> set[tuple[int, int, str]]:
    regions, _ = primitive_tags(geometry)
    groups = {(3, tag, name) for name, tag in regions.items()}
    groups |= {(2, tag, name) for name, tag in SURFACE_TAGS[geometry.kind].items()}
    groups |= {(2, tag, name) for name, tag in cavity_surfaces(cavities)[0].items()}
    return groups


# --------------------------------------------------------------------------- OCC solids


def _body(geometry: Primitive) -> list[tuple[int, int]]:
    occ = gmsh.model.occ
    if isinstance(geometry, BoxGeometry):
        lo, hi = geometry.lower_m, geometry.upper_m
        return [(3, occ.addBox(*lo, *(hi[i] - lo[i] for i in range(3))))]
    if isinstance(geometry, SphereGeometry):
        return [(3, occ.addSphere(*geometry.center_m, geometry.radius_m))]
    if isinstance(geometry, ShellGeometry):
        outer = occ.addSphere(*geometry.center_m, geometry.outer_radius_m)
        inner = occ.addSphere(*geometry.center_m, geometry.inner_radius_m)
        out, _ = occ.cut([(3, outer)], [(3, inner)], removeObject=True, removeTool=True)
        return out
    if isinstance(geometry, CylinderGeometry):
        c, a, L = np.array(geometry.center_m), np.array(geometry.axis), geometry.length_m
        base = c - 0.5 * L * a
        return [(3, occ.addCylinder(*base, *(L * a), geometry.radius_m))]
    raise TypeError(f"not a primitive geometry: {type(geometry).__name__}")


def _inclusion(inc: Inclusion) -> list[tuple[int, int]]:
    occ = gmsh.model.occ
    c = inc.center_m
    if inc.shape == "sphere":
        return [(3, occ.addSphere(*c, inc.radius_m))]
    if inc.shape == "ellipsoid":
        return [add_ellipsoid(c, inc.semi_axes_m)]
    s = inc.size_m
    return [(3, occ.addBox(*(c[i] - 0.5 * s[i] for i in range(3)), *s))]


def _cut_cavities(body: list[tuple[int, int]], cavities: tuple[CatheterCavity, ...]) -> list[tuple[int, int]]:
    """Subtract the applicator cavities from the body.

    Each cavity is two coaxial cylinders (:func:`meshes.gmsh_model.cavity_cylinders`) given
    to one ``cut`` as separate tools: the result has no face at their common disk (it lies
    inside the hole), but the wall keeps an edge at the tip start.
    """
    if not cavities:
        return body
    occ = gmsh.model.occ
    tools = cavity_cylinders(cavities)
    out, _ = occ.cut(body, tools, removeObject=True, removeTool=True)
    out = [dt for dt in out if dt[0] == 3]
    if not out:  # pragma: no cover - validation keeps the cavities thin and inside
        raise ValueError("the applicator cavities remove the whole geometry")
    return out


def _assemble_volumes(geometry: Primitive, cavities: tuple[CatheterCavity, ...] = ()) -> dict[int, int]:
    """Create the body (minus the cavities) and the inclusions; return gmsh volume tag -> region tag.

    The cavities are cut from the body first; inclusions are clipped to that body, so they
    have the holes too, and the fragment map identifies regions as without cavities.

    Each inclusion is first clipped to the body (so an inclusion that sticks out is cut at the
    boundary), then everything is fragmented so that the mesh is conforming at the interfaces.
    Which fragment belongs to which region is read from the fragment map, not guessed from
    positions: a fragment is in the region of the *last* inclusion it is a child of (later
    inclusions are painted over earlier ones where they overlap), else in the main region.
    """
    occ = gmsh.model.occ
    body = _cut_cavities(_body(geometry), cavities)
    if not geometry.inclusion:
        occ.synchronize()
        return {t: 1 for _, t in body}

    clipped: list[list[tuple[int, int]]] = []
    for i, inc in enumerate(geometry.inclusion):
        shape = _inclusion(inc)
        tool = occ.copy(body)
        part, _ = occ.intersect(shape, tool, removeObject=True, removeTool=True)
        part = [dt for dt in part if dt[0] == 3]
        if not part:
            raise ValueError(
                f"inclusion[{i}] '{inc.name}' does not overlap the {geometry.kind} geometry"
                + (" (minus the applicator cavities)" if cavities else "")
            )
        clipped.append(part)

    tools = [dt for part in clipped for dt in part]
    out, out_map = occ.fragment(body, tools, removeObject=True, removeTool=True)
    occ.synchronize()

    owner: dict[int, int] = {}
    for k in range(len(body)):
        for _, t in out_map[k]:
            owner[t] = 1
    k = len(body)
    for i, part in enumerate(clipped):
        for _ in part:
            for _, t in out_map[k]:
                owner[t] = i + 2
            k += 1
    stray = [(3, t) for d, t in out if d == 3 and t not in owner]
    if stray:  # pragma: no cover - clipped inclusions lie inside the body
        occ.remove(stray, recursive=True)
        occ.synchronize()
    return owner


# --------------------------------------------------------------------------- boundary


def _classify_face(geometry: Primitive, tag: int, scale: float) -> str:
    tol = 1e-6 * scale
    if isinstance(geometry, BoxGeometry):
        # Every boundary face lies on a side of the box: take the axis of its normal and the
        # side its plane is on. (Bounding boxes of spline-bounded faces are padded, so they
        # are not used for this.)
        lo, hi = gmsh.model.getParametrizationBounds(2, tag)
        uv = [0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1])]
        p = np.asarray(gmsh.model.getValue(2, tag, uv), dtype=float)
        n = np.asarray(gmsh.model.getNormal(tag, uv), dtype=float)
        i = int(np.argmax(np.abs(n)))
        axis = "xyz"[i]
        dist = {f"{axis}min": abs(p[i] - geometry.lower_m[i]), f"{axis}max": abs(p[i] - geometry.upper_m[i])}
        if abs(n[i]) < 1.0 - 1e-9:
            raise RuntimeError(f"box boundary face {tag} is not axis-aligned (normal {n})")
        name = min(dist, key=dist.get)
        if dist[name] > tol:
            raise RuntimeError(f"box boundary face {tag} lies on no box side ({dist})")
        return name
    if isinstance(geometry, SphereGeometry):
        return "outer"
    p = sample_point(tag)
    if isinstance(geometry, ShellGeometry):
        r = float(np.linalg.norm(p - np.array(geometry.center_m)))
        dist = {"outer": abs(r - geometry.outer_radius_m), "inner": abs(r - geometry.inner_radius_m)}
    else:
        d = p - np.array(geometry.center_m)
        a = np.array(geometry.axis)
        along = float(d @ a)
        radial = float(np.linalg.norm(d - along * a))
        half = 0.5 * geometry.length_m
        dist = {"top": abs(along - half), "bottom": abs(along + half), "side": abs(radial - geometry.radius_m)}
    name = min(dist, key=dist.get)
    if dist[name] > tol:
        raise RuntimeError(f"{geometry.kind} boundary face {tag} lies on no named surface ({dist})")
    return name


def _characteristic_length(geometry: Primitive) -> float:
    if isinstance(geometry, BoxGeometry):
        return max(geometry.upper_m[i] - geometry.lower_m[i] for i in range(3))
    if isinstance(geometry, SphereGeometry):
        return geometry.radius_m
    if isinstance(geometry, ShellGeometry):
        return geometry.outer_radius_m
    return max(geometry.radius_m, geometry.length_m)


# --------------------------------------------------------------------------- mesh size


def _size_fields(
    geometry: Primitive, owner: dict[int, int], cavities: tuple[CatheterCavity, ...] = ()
) -> list[int | None]:
    """Size fields (:mod:`meshes.gmsh_model`): catheter walls, refinements, small curved
    inclusions (at most (smallest radius) / MIN_CELLS_PER_RADIUS inside and on them) and the
    shell's cavity (graded from R_i / MIN_CELLS_PER_RADIUS on it to h over 2 h)."""
    h = geometry.mesh_size_m
    fields = [cavity_wall_field(cav, h) for cav in cavities]
    fields += refinement_fields(geometry.refinement, h, keep_when_coarse=True)
    for i, inc in enumerate(geometry.inclusion):
        if inc.shape == "box":
            continue
        rmin = inc.radius_m if inc.shape == "sphere" else min(inc.semi_axes_m)
        vols = [t for t, reg in owner.items() if reg == i + 2]
        fields.append(restrict_field(vols, rmin / MIN_CELLS_PER_RADIUS, h, every_face=False))
    if isinstance(geometry, ShellGeometry):
        cap = geometry.inner_radius_m / MIN_CELLS_PER_RADIUS
        expr = f"abs({point_distance_expr(geometry.center_m)}-{num(geometry.inner_radius_m)})"
        fields.append(threshold_field(expr, cap, h, 0.0, 2.0 * h))
    return fields


# --------------------------------------------------------------------------- entry point


def build_model(geometry: Primitive, cavities: tuple[CatheterCavity, ...] = ()) -> None:
    """Build, tag and mesh ``geometry`` minus ``cavities`` (validated, see
    :func:`meshes.cavities.validate_cavities`) in the current gmsh model (one rank only)."""
    cavities = tuple(cavities)
    owner = _assemble_volumes(geometry, cavities)
    regions, _ = primitive_tags(geometry)

    def why_empty(name: str, rtag: int) -> str:
        what = "the main region" if rtag == 1 else f"inclusion[{rtag - 2}]"
        return (
            f"{what} '{name}' is empty: it is entirely covered by "
            + ("inclusions" if rtag == 1 else "later inclusions")
            + (" or applicator cavities" if cavities else "")
        )

    add_region_groups(owner, regions, why_empty)
    scale = _characteristic_length(geometry)
    add_surface_groups(owner, cavities, 1e-6 * scale, lambda face: _classify_face(geometry, face, scale),
                       SURFACE_TAGS[geometry.kind], geometry.kind)
    generate(geometry.mesh_size_m, lambda: _size_fields(geometry, owner, cavities))
