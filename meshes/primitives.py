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

from .cavities import (
    CAVITY_GROWTH_RADII,
    CAVITY_PLATEAU_RADII,
    CAVITY_SIZE_PER_RADIUS,
    CatheterCavity,
    cavity_surfaces,
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

# Curved features smaller than the mesh size (sphere/ellipsoid inclusions, the shell's cavity)
# are meshed with a size of at most (smallest radius) / MIN_CELLS_PER_RADIUS, i.e. at least
# about 2*pi*MIN_CELLS_PER_RADIUS ~ 12.6 edges around a great circle. This only acts when
# mesh_size_m exceeds that bound; otherwise mesh_size_m (and refinements) govern.
MIN_CELLS_PER_RADIUS = 2.0

# A refinement keeps size_m up to a distance of REFINEMENT_PLATEAU_CELLS * size_m (at most half
# of distance_m) from its point/segment, then grows linearly to mesh_size_m at distance_m.
# Without the plateau gmsh's 3D Delaunay refinement, which interpolates sizes from existing
# vertices, largely misses a minimum that is attained only at a single interior point.
REFINEMENT_PLATEAU_CELLS = 2.0

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
        a = inc.semi_axes_m
        r = max(a)
        tag = occ.addSphere(*c, r)
        occ.dilate([(3, tag)], *c, a[0] / r, a[1] / r, a[2] / r)
        return [(3, tag)]
    s = inc.size_m
    return [(3, occ.addBox(*(c[i] - 0.5 * s[i] for i in range(3)), *s))]


def _cut_cavities(body: list[tuple[int, int]], cavities: tuple[CatheterCavity, ...]) -> list[tuple[int, int]]:
    """Subtract the applicator cavities from the body.

    Each cavity is two coaxial cylinders, shaft (entry -> tip start) and tip (tip start ->
    end), given to one ``cut`` as separate tools: the result has no face at their common disk
    (it lies inside the hole), but the wall keeps an edge at the tip start, so the shaft and
    tip walls are separate faces.
    """
    if not cavities:
        return body
    occ = gmsh.model.occ
    tools: list[tuple[int, int]] = []
    for cav in cavities:
        a, s, e = (np.asarray(p, dtype=float) for p in (cav.entry_m, cav.tip_start_m, cav.end_m))
        tools.append((3, occ.addCylinder(*a, *(s - a), cav.radius_m)))
        tools.append((3, occ.addCylinder(*s, *(e - s), cav.radius_m)))
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


def _sample_point(tag: int) -> np.ndarray:
    """A point on the (untrimmed) surface underlying face ``tag``."""
    lo, hi = gmsh.model.getParametrizationBounds(2, tag)
    uv = [0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1])]
    return np.asarray(gmsh.model.getValue(2, tag, uv), dtype=float)


def _face_samples(tag: int, n: int = 3) -> np.ndarray:
    """n x n points on the (untrimmed) surface underlying face ``tag``, over its uv bounds."""
    lo, hi = gmsh.model.getParametrizationBounds(2, tag)
    f = (np.arange(n) + 0.5) / n
    uv = np.array([[lo[0] + a * (hi[0] - lo[0]), lo[1] + b * (hi[1] - lo[1])] for a in f for b in f])
    return np.asarray(gmsh.model.getValue(2, tag, uv.ravel()), dtype=float).reshape(-1, 3)


def _classify_cavity_face(tag: int, cavities: tuple[CatheterCavity, ...], tol: float) -> tuple[int, str] | None:
    """(cavity index, "tip" | "shaft") if face ``tag`` lies on a cavity's wall or caps, else None.

    On the wall: every sample point of the underlying surface is at distance radius_m from the
    axis, within the cavity's axial range. On a cap: every sample point is in the end (or
    entry) plane and the face's centre is within radius_m of the axis. Tip or shaft is decided
    by the axial coordinate of the face's centre of mass (the wall has an edge at the tip
    start, so no face straddles it).
    """
    pts = _face_samples(tag)
    for i, cav in enumerate(cavities):
        a, ax, L = np.asarray(cav.entry_m), cav.axis, cav.length_m
        t = (pts - a) @ ax
        rho = np.linalg.norm(pts - a - np.outer(t, ax), axis=1)
        on_wall = np.all(np.abs(rho - cav.radius_m) <= tol) and np.all((t >= -tol) & (t <= L + tol))
        mid = _sample_point(tag)
        tm = float((mid - a) @ ax)
        rm = float(np.linalg.norm(mid - a - tm * ax))
        on_end = np.all(np.abs(t - L) <= tol) and rm <= cav.radius_m + tol
        on_entry = np.all(np.abs(t) <= tol) and rm <= cav.radius_m + tol
        if not (on_wall or on_end or on_entry):
            continue
        com = np.asarray(gmsh.model.occ.getCenterOfMass(2, tag), dtype=float)
        t_com = float((com - a) @ ax)
        return i, ("tip" if t_com > L - cav.tip_length_m else "shaft")
    return None


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
    p = _sample_point(tag)
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


def _num(v: float) -> str:
    return np.format_float_positional(float(v), trim="-")


def _minus(var: str, a: float) -> str:
    return f"({var}-{_num(a)})" if a >= 0 else f"({var}+{_num(-a)})"


def _point_distance_expr(p) -> str:
    return "sqrt(" + "+".join(f"{_minus(v, p[i])}^2" for i, v in enumerate("xyz")) + ")"


def _segment_distance_expr(a, b) -> str:
    """Distance to the segment [a, b]: |p - a - t d| with t = clamp((p - a).d / |d|^2, 0, 1)."""
    a = np.asarray(a, dtype=float)
    d = np.asarray(b, dtype=float) - a
    coef = [f"({_num(c)})" for c in d]
    t = "min(1,max(0,(" + "+".join(f"{_minus(v, a[i])}*{coef[i]}" for i, v in enumerate("xyz")) + f")/{_num(d @ d)}))"
    return "sqrt(" + "+".join(f"({_minus(v, a[i])}-{t}*{coef[i]})^2" for i, v in enumerate("xyz")) + ")"


def _size_fields(
    geometry: Primitive, owner: dict[int, int], cavities: tuple[CatheterCavity, ...] = ()
) -> list[int]:
    f = gmsh.model.mesh.field
    h = geometry.mesh_size_m
    fields: list[int] = []
    # Applicator cavities: size CAVITY_SIZE_PER_RADIUS * r on the wall (distance to the axis
    # segment up to CAVITY_PLATEAU_RADII * r), growing to h at CAVITY_GROWTH_RADII * r. The
    # distance is analytic (no sampling of the long, thin wall).
    for cav in cavities:
        size = CAVITY_SIZE_PER_RADIUS * cav.radius_m
        if size >= h:
            continue
        dist = f.add("MathEval")
        f.setString(dist, "F", _segment_distance_expr(cav.entry_m, cav.end_m))
        th = f.add("Threshold")
        f.setNumber(th, "InField", dist)
        f.setNumber(th, "SizeMin", size)
        f.setNumber(th, "SizeMax", h)
        f.setNumber(th, "DistMin", CAVITY_PLATEAU_RADII * cav.radius_m)
        f.setNumber(th, "DistMax", CAVITY_GROWTH_RADII * cav.radius_m)
        fields.append(th)
    for r in geometry.refinement:
        dist = f.add("MathEval")
        if r.point_m is not None:
            expr = _point_distance_expr(r.point_m)
        else:
            expr = _segment_distance_expr(r.segment_start_m, r.segment_end_m)
        f.setString(dist, "F", expr)
        th = f.add("Threshold")
        f.setNumber(th, "InField", dist)
        f.setNumber(th, "SizeMin", r.size_m)
        f.setNumber(th, "SizeMax", h)
        f.setNumber(th, "DistMin", min(REFINEMENT_PLATEAU_CELLS * r.size_m, 0.5 * r.distance_m))
        f.setNumber(th, "DistMax", r.distance_m)
        fields.append(th)

    # Small curved inclusions: cap the size inside them and on their surface.
    for i, inc in enumerate(geometry.inclusion):
        if inc.shape == "box":
            continue
        rmin = inc.radius_m if inc.shape == "sphere" else min(inc.semi_axes_m)
        cap = rmin / MIN_CELLS_PER_RADIUS
        vols = [t for t, reg in owner.items() if reg == i + 2]
        if cap >= h or not vols:
            continue
        const = f.add("MathEval")
        f.setString(const, "F", _num(cap))
        res = f.add("Restrict")
        f.setNumber(res, "InField", const)
        f.setNumbers(res, "VolumesList", vols)
        faces = gmsh.model.getBoundary([(3, v) for v in vols], combined=True, oriented=False)
        f.setNumbers(res, "SurfacesList", [t for _, t in faces])
        f.setNumber(res, "IncludeBoundary", 1)
        fields.append(res)

    # The shell's cavity: grade from R_i/2 on the cavity to h over a distance of 2 h.
    if isinstance(geometry, ShellGeometry):
        cap = geometry.inner_radius_m / MIN_CELLS_PER_RADIUS
        if cap < h:
            dist = f.add("MathEval")
            f.setString(
                dist, "F", f"abs({_point_distance_expr(geometry.center_m)}-{_num(geometry.inner_radius_m)})"
            )
            th = f.add("Threshold")
            f.setNumber(th, "InField", dist)
            f.setNumber(th, "SizeMin", cap)
            f.setNumber(th, "SizeMax", h)
            f.setNumber(th, "DistMin", 0.0)
            f.setNumber(th, "DistMax", 2.0 * h)
            fields.append(th)
    return fields


def _set_mesh_options(h: float) -> None:
    opt = gmsh.option.setNumber
    opt("General.NumThreads", 1)
    opt("Mesh.MeshSizeMax", h)
    opt("Mesh.MeshSizeMin", 0.0)
    # Let only MeshSizeMax and the size fields govern (gmsh's recommendation for fields).
    opt("Mesh.MeshSizeFromPoints", 0)
    opt("Mesh.MeshSizeFromCurvature", 0)
    opt("Mesh.MeshSizeExtendFromBoundary", 0)
    opt("Mesh.Algorithm", 6)  # Frontal-Delaunay surfaces
    opt("Mesh.Algorithm3D", 1)  # Delaunay: robust, deterministic with one thread
    opt("Mesh.ElementOrder", 1)
    opt("Mesh.Optimize", 1)


# --------------------------------------------------------------------------- entry point


def build_model(geometry: Primitive, cavities: tuple[CatheterCavity, ...] = ()) -> None:
    """Build, tag and mesh ``geometry`` minus ``cavities`` (validated, see
    :func:`meshes.cavities.validate_cavities`) in the current gmsh model (one rank only)."""
    cavities = tuple(cavities)
    owner = _assemble_volumes(geometry, cavities)
    regions, _ = primitive_tags(geometry)
    for name, rtag in regions.items():
        vols = sorted(t for t, reg in owner.items() if reg == rtag)
        if not vols:
            what = "the main region" if rtag == 1 else f"inclusion[{rtag - 2}]"
            raise ValueError(
                f"{what} '{name}' is empty: it is entirely covered by "
                + ("inclusions" if rtag == 1 else "later inclusions")
                + (" or applicator cavities" if cavities else "")
            )
        gmsh.model.addPhysicalGroup(3, vols, tag=rtag, name=name)

    scale = _characteristic_length(geometry)
    boundary = gmsh.model.getBoundary([(3, t) for t in owner], combined=True, oriented=False)
    by_name: dict[str, list[int]] = {}
    tol = 1e-6 * scale
    for _, face in boundary:
        face = abs(face)
        on_cavity = _classify_cavity_face(face, cavities, tol) if cavities else None
        if on_cavity is not None:
            i, part = on_cavity
            name = f"{cavities[i].name}_{part}"
        else:
            name = _classify_face(geometry, face, scale)
        by_name.setdefault(name, []).append(face)
    cavity_tags, _ = cavity_surfaces(cavities)
    for name, stag in list(SURFACE_TAGS[geometry.kind].items()) + list(cavity_tags.items()):
        faces = sorted(set(by_name.get(name, [])))
        if not faces:
            raise RuntimeError(f"{geometry.kind}: no boundary face found for surface '{name}'")
        gmsh.model.addPhysicalGroup(2, faces, tag=stag, name=name)

    _set_mesh_options(geometry.mesh_size_m)
    fields = _size_fields(geometry, owner, cavities)
    if fields:
        fmin = gmsh.model.mesh.field.add("Min")
        gmsh.model.mesh.field.setNumbers(fmin, "FieldsList", fields)
        gmsh.model.mesh.field.setAsBackgroundMesh(fmin)
    gmsh.model.mesh.generate(3)
