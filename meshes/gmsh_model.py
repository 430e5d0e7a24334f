"""gmsh model steps shared by the primitive (:mod:`meshes.primitives`) and the spine
(:mod:`meshes.spine`) builders: OCC solids used by both, the physical groups (regions and
named boundary surfaces, catheter walls included), the size fields and the meshing call.

Everything here works on the current gmsh model of one rank (inside a
:class:`meshes.gmshio.GmshSession`). Lengths in metres.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import gmsh
import numpy as np

from .cavities import (
    CAVITY_GROWTH_RADII,
    CAVITY_PLATEAU_RADII,
    CAVITY_SIZE_PER_RADIUS,
    CatheterCavity,
    cavity_surfaces,
)

# Curved features smaller than the mesh size (sphere/ellipsoid inclusions, tumours, the shell's
# cavity) are meshed with a size of at most (smallest radius) / MIN_CELLS_PER_RADIUS, i.e. at
# least about 2*pi*MIN_CELLS_PER_RADIUS ~ 12.6 edges around a great circle. This only acts when
# mesh_size_m exceeds that bound; otherwise mesh_size_m (and refinements) govern.
MIN_CELLS_PER_RADIUS = 2.0

# A refinement keeps size_m up to a distance of REFINEMENT_PLATEAU_CELLS * size_m (at most half
# of distance_m) from its point/segment, then grows linearly to mesh_size_m at distance_m.
# Without the plateau gmsh's 3D Delaunay refinement, which interpolates sizes from existing
# vertices, largely misses a minimum that is attained only at a single interior point.
REFINEMENT_PLATEAU_CELLS = 2.0


# --------------------------------------------------------------------------- OCC solids


def add_ellipsoid(center_m, semi_axes_m) -> tuple[int, int]:
    """An OCC ellipsoid (a sphere of the largest semi-axis, dilated); (3, tag)."""
    occ = gmsh.model.occ
    c, a = center_m, semi_axes_m
    r = max(a)
    tag = occ.addSphere(*c, r)
    occ.dilate([(3, tag)], *c, a[0] / r, a[1] / r, a[2] / r)
    return (3, tag)


def cavity_cylinders(cavities: Sequence[CatheterCavity]) -> list[tuple[int, int]]:
    """Two coaxial OCC cylinders per cavity, shaft (entry -> tip start) and tip (tip start ->
    end). Cut or fragmented as separate tools, they leave the wall an edge at the tip start,
    so the shaft and tip walls are separate faces."""
    occ = gmsh.model.occ
    tools: list[tuple[int, int]] = []
    for cav in cavities:
        a, s, e = (np.asarray(p, dtype=float) for p in (cav.entry_m, cav.tip_start_m, cav.end_m))
        tools.append((3, occ.addCylinder(*a, *(s - a), cav.radius_m)))
        tools.append((3, occ.addCylinder(*s, *(e - s), cav.radius_m)))
    return tools


# --------------------------------------------------------------------------- faces


def sample_point(tag: int) -> np.ndarray:
    """A point on the (untrimmed) surface underlying face ``tag`` (its parametric centre)."""
    lo, hi = gmsh.model.getParametrizationBounds(2, tag)
    uv = [0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1])]
    return np.asarray(gmsh.model.getValue(2, tag, uv), dtype=float)


def _face_samples(tag: int, n: int = 3) -> np.ndarray:
    """n x n points on the (untrimmed) surface underlying face ``tag``, over its uv bounds."""
    lo, hi = gmsh.model.getParametrizationBounds(2, tag)
    f = (np.arange(n) + 0.5) / n
    uv = np.array([[lo[0] + a * (hi[0] - lo[0]), lo[1] + b * (hi[1] - lo[1])] for a in f for b in f])
    return np.asarray(gmsh.model.getValue(2, tag, uv.ravel()), dtype=float).reshape(-1, 3)


def classify_cavity_face(tag: int, cavities: Sequence[CatheterCavity], tol: float) -> tuple[int, str] | None:
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
        mid = sample_point(tag)
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


# --------------------------------------------------------------------------- physical groups


def add_region_groups(owner: dict[int, int], regions: dict[str, int], why_empty: Callable[[str, int], str]) -> None:
    """One physical volume group per region (``owner``: gmsh volume -> region tag). A region
    without volumes raises ValueError(``why_empty(name, tag)``)."""
    for name, rtag in regions.items():
        vols = sorted(v for v, reg in owner.items() if reg == rtag)
        if not vols:
            raise ValueError(why_empty(name, rtag))
        gmsh.model.addPhysicalGroup(3, vols, tag=rtag, name=name)


def add_surface_groups(
    owner: dict[int, int],
    cavities: Sequence[CatheterCavity],
    tol: float,
    classify: Callable[[int], str],
    surface_tags: dict[str, int],
    label: str,
) -> None:
    """One physical surface group per named surface: every boundary face of the ``owner``
    volumes is on a catheter wall (``<name>_tip`` / ``<name>_shaft``, faces within ``tol`` m,
    see :func:`classify_cavity_face`) or is named by ``classify(face)``. ``surface_tags``:
    name -> facet tag of the geometry's own surfaces. RuntimeError (naming ``label``) when a
    surface gets no face."""
    cavities = tuple(cavities)
    boundary = gmsh.model.getBoundary([(3, v) for v in owner], combined=True, oriented=False)
    by_name: dict[str, list[int]] = {}
    for _, face in boundary:
        face = abs(face)
        on_cavity = classify_cavity_face(face, cavities, tol) if cavities else None
        if on_cavity is not None:
            i, part = on_cavity
            tip, shaft, _ = cavities[i].surface_names
            name = tip if part == "tip" else shaft
        else:
            name = classify(face)
        by_name.setdefault(name, []).append(face)
    cavity_tags, _ = cavity_surfaces(cavities)
    for name, stag in list(surface_tags.items()) + list(cavity_tags.items()):
        faces = sorted(set(by_name.get(name, [])))
        if not faces:
            raise RuntimeError(f"{label}: no boundary face found for surface '{name}'")
        gmsh.model.addPhysicalGroup(2, faces, tag=stag, name=name)


# --------------------------------------------------------------------------- size fields


def num(v: float) -> str:
    """``v`` as a plain decimal for gmsh's MathEval (no exponent, trailing zeros trimmed)."""
    return np.format_float_positional(float(v), trim="-")


def minus(var: str, a: float) -> str:
    """``(var-a)`` for MathEval, written as ``(var+|a|)`` when a < 0."""
    return f"({var}-{num(a)})" if a >= 0 else f"({var}+{num(-a)})"


def point_distance_expr(p) -> str:
    """MathEval expression: distance (m) to the point ``p``."""
    return "sqrt(" + "+".join(f"{minus(v, p[i])}^2" for i, v in enumerate("xyz")) + ")"


def segment_distance_expr(a, b) -> str:
    """Distance to the segment [a, b]: |p - a - t d| with t = clamp((p - a).d / |d|^2, 0, 1)."""
    a = np.asarray(a, dtype=float)
    d = np.asarray(b, dtype=float) - a
    coef = [f"({num(c)})" for c in d]
    t = "min(1,max(0,(" + "+".join(f"{minus(v, a[i])}*{coef[i]}" for i, v in enumerate("xyz")) + f")/{num(d @ d)}))"
    return "sqrt(" + "+".join(f"({minus(v, a[i])}-{t}*{coef[i]})^2" for i, v in enumerate("xyz")) + ")"


def threshold_field(
    expr: str, size: float, h: float, dmin: float, dmax: float, *, keep_when_coarse: bool = False
) -> int | None:
    """A Threshold field on the MathEval distance ``expr``: ``size`` (m) up to ``dmin``,
    growing linearly to ``h`` at ``dmax``. None (no field) when ``size >= h`` unless
    ``keep_when_coarse``."""
    f = gmsh.model.mesh.field
    if size >= h and not keep_when_coarse:
        return None
    dist = f.add("MathEval")
    f.setString(dist, "F", expr)
    th = f.add("Threshold")
    f.setNumber(th, "InField", dist)
    f.setNumber(th, "SizeMin", size)
    f.setNumber(th, "SizeMax", h)
    f.setNumber(th, "DistMin", dmin)
    f.setNumber(th, "DistMax", dmax)
    return th


def restrict_field(vols: Sequence[int], size: float, h: float, *, every_face: bool) -> int | None:
    """A constant ``size`` (m) inside the volumes ``vols`` and on their boundary (Restrict
    field); None when ``size >= h`` or there are no volumes. ``every_face``: list every face
    of every volume (faces between two of the volumes too), else only the outer boundary of
    their union."""
    f = gmsh.model.mesh.field
    if size >= h or not vols:
        return None
    const = f.add("MathEval")
    f.setString(const, "F", num(size))
    res = f.add("Restrict")
    f.setNumber(res, "InField", const)
    f.setNumbers(res, "VolumesList", list(vols))
    if every_face:
        faces = gmsh.model.getBoundary([(3, v) for v in vols], combined=False, oriented=False)
        f.setNumbers(res, "SurfacesList", sorted({abs(t) for _, t in faces}))
    else:
        faces = gmsh.model.getBoundary([(3, v) for v in vols], combined=True, oriented=False)
        f.setNumbers(res, "SurfacesList", [t for _, t in faces])
    f.setNumber(res, "IncludeBoundary", 1)
    return res


def cavity_wall_field(cav: CatheterCavity, h: float) -> int | None:
    """Size CAVITY_SIZE_PER_RADIUS * r on a catheter wall (distance to the axis segment up to
    CAVITY_PLATEAU_RADII * r), growing to ``h`` at CAVITY_GROWTH_RADII * r. The distance is
    analytic (no sampling of the long, thin wall)."""
    r = cav.radius_m
    return threshold_field(
        segment_distance_expr(cav.entry_m, cav.end_m), CAVITY_SIZE_PER_RADIUS * r, h,
        CAVITY_PLATEAU_RADII * r, CAVITY_GROWTH_RADII * r,
    )


def refinement_fields(refinements: Iterable, h: float, *, keep_when_coarse: bool = False) -> list[int | None]:
    """One Threshold field per ``[[geometry.refinement]]`` table (point or segment)."""
    out: list[int | None] = []
    for ref in refinements:
        expr = (point_distance_expr(ref.point_m) if ref.point_m is not None
                else segment_distance_expr(ref.segment_start_m, ref.segment_end_m))
        out.append(
            threshold_field(expr, ref.size_m, h, min(REFINEMENT_PLATEAU_CELLS * ref.size_m, 0.5 * ref.distance_m),
                            ref.distance_m, keep_when_coarse=keep_when_coarse)
        )
    return out


# --------------------------------------------------------------------------- meshing


def set_mesh_options(h: float) -> None:
    """gmsh options of every builder: size at most ``h`` (m), governed by the size fields only,
    Frontal-Delaunay surfaces, Delaunay volumes, one thread (deterministic), linear tetrahedra."""
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


def generate(
    h: float,
    size_fields: Callable[[], Sequence[int | None]],
    *,
    algorithm_3d: int | None = None,
    threads: int | None = None,
) -> None:
    """Set the options (:func:`set_mesh_options`), make the size fields (``None`` entries are
    dropped), use their minimum as the background size and mesh the model in 3D.
    ``algorithm_3d`` (gmsh's Mesh.Algorithm3D, e.g. 10 = HXT) and ``threads``
    (General.NumThreads) override gmsh's defaults when given."""
    set_mesh_options(h)
    if algorithm_3d is not None:
        gmsh.option.setNumber("Mesh.Algorithm3D", algorithm_3d)
    if threads is not None:
        gmsh.option.setNumber("General.NumThreads", threads)
    fields = [f for f in size_fields() if f is not None]
    if fields:
        fmin = gmsh.model.mesh.field.add("Min")
        gmsh.model.mesh.field.setNumbers(fmin, "FieldsList", fields)
        gmsh.model.mesh.field.setAsBackgroundMesh(fmin)
    gmsh.model.mesh.generate(3)
