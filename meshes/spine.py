"""gmsh OpenCASCADE model of one thoracic vertebra with canal contents, discs and soft tissue.

The shapes and their dimensions are in :mod:`meshes.spine_dimensions` (pure Python). Here
they become OCC solids, are fragmented together (a conforming mesh across every interface)
and each fragment is assigned a region from the fragment map, by precedence:

    catheter cavities (removed) > spinal_cord > csf > dura > tumours (last wins)
    > epidural_anterior (canal in front of the sac's centre) > epidural_fat (canal)
    > cancellous_bone > cortical_bone (body) > posterior_elements
    > disc_upper > disc_lower > muscle (block)

Tumours are clipped beforehand to body U (canal minus dural sac) U posterior elements, so
they replace bone and epidural fat (a tumour crossing the posterior cortex replaces it: a
breached wall) but never dura, CSF or cord, and never disc or muscle.

Built on rank 0, cached as .msh like the primitives (key: the geometry, the cavities, the
gmsh version and the source of this module, spine_dimensions, primitives and cavities),
distributed with ``dolfinx.io.gmsh.model_to_mesh``.

Cell tags: cortical_bone 1, cancellous_bone 2, posterior_elements 3, disc_upper 4,
disc_lower 5, epidural_fat 6, dura 7, csf 8, spinal_cord 9, muscle 10, epidural_anterior 11,
tumour i: 21 + i.
Facet tags: outer 1; cavity i: <name>_tip 100 + 2 i, <name>_shaft 101 + 2 i.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

from solver import compat  # noqa: F401  - dolfinx_solver (PyPI wheel) before the DOLFINx bindings

import gmsh
import numpy as np
from mpi4py import MPI

from . import cache as _cache
from . import spine_dimensions as sd
from .bundle import MeshBundle
from .cavities import (
    CAVITY_GROWTH_RADII,
    CAVITY_PLATEAU_RADII,
    CAVITY_SIZE_PER_RADIUS,
    CatheterCavity,
    cavity_surfaces,
)
from .primitives import (
    MIN_CELLS_PER_RADIUS,
    REFINEMENT_PLATEAU_CELLS,
    _classify_cavity_face,
    _minus,
    _num,
    _point_distance_expr,
    _segment_distance_expr,
    _set_mesh_options,
)

BASE_REGIONS = (
    "cortical_bone", "cancellous_bone", "posterior_elements", "disc_upper", "disc_lower",
    "epidural_fat", "dura", "csf", "spinal_cord", "muscle", "epidural_anterior",
)
REGION_TAGS = {name: i + 1 for i, name in enumerate(BASE_REGIONS)}
TUMOUR_TAG_BASE = 21  # tumour i: 21 + i (room for more anatomical regions below)
SURFACE_TAGS = {"outer": 1}

# Size grading (m): the size fields grow linearly from their minimum to mesh_size_m over
# these distances.
TIP_GROWTH_M = 6e-3
CANAL_GROWTH_M = 6e-3
CORTEX_GROWTH_M = 5e-3
# The cortical shell away from the posterior wall: size at most CORTEX_SIZE_PER_THICKNESS x
# its thickness (tets about 3 times as wide as the shell is thick keep a radius ratio of
# roughly 0.2 or better; finer would multiply the cell count).
CORTEX_SIZE_PER_THICKNESS = 3.0


def spine_tags(geometry, cavities: Sequence[CatheterCavity] = ()) -> tuple[dict[str, int], dict[str, list[int]]]:
    regions = dict(REGION_TAGS)
    for i, tum in enumerate(geometry.tumour):
        regions[tum.name] = TUMOUR_TAG_BASE + i
    assert list(regions) == geometry.region_names(), (list(regions), geometry.region_names())
    surfaces = {name: [tag] for name, tag in SURFACE_TAGS.items()}
    surfaces.update(cavity_surfaces(tuple(cavities))[1])
    return regions, surfaces


def expected_physical_groups(geometry, cavities: Sequence[CatheterCavity] = ()) -> set[tuple[int, int, str]]:
    regions, _ = spine_tags(geometry)
    groups = {(3, tag, name) for name, tag in regions.items()}
    groups |= {(2, tag, name) for name, tag in SURFACE_TAGS.items()}
    groups |= {(2, tag, name) for name, tag in cavity_surfaces(tuple(cavities))[0].items()}
    return groups


# --------------------------------------------------------------------------- OCC solids


def _prism(e: sd.Ellipse, z0: float, z1: float) -> tuple[int, int]:
    """The elliptic cylinder of ``e`` from z0 to z1, cut at e.y_min / e.y_max."""
    occ = gmsh.model.occ
    if e.ax >= e.by:
        disk = occ.addDisk(e.cx, e.cy, z0, e.ax, e.by)
    else:
        disk = occ.addDisk(e.cx, e.cy, z0, e.by, e.ax, zAxis=[0, 0, 1], xAxis=[0, 1, 0])
    vol = [dt for dt in occ.extrude([(2, disk)], 0, 0, z1 - z0) if dt[0] == 3]
    if not (math.isfinite(e.y_min) or math.isfinite(e.y_max)):
        return vol[0]
    pad = 1e-3 + e.ax + e.by
    ylo = e.y_min if math.isfinite(e.y_min) else e.cy - e.by - pad
    yhi = e.y_max if math.isfinite(e.y_max) else e.cy + e.by + pad
    box = occ.addBox(e.cx - e.ax - pad, ylo, z0 - pad, 2 * (e.ax + pad), yhi - ylo, (z1 - z0) + 2 * pad)
    out, _ = occ.intersect(vol, [(3, box)], removeObject=True, removeTool=True)
    out = [dt for dt in out if dt[0] == 3]
    assert len(out) == 1, out
    return out[0]


def _box(lo, hi) -> tuple[int, int]:
    return (3, gmsh.model.occ.addBox(*lo, *(hi[i] - lo[i] for i in range(3))))


def _pedicle(b: sd.Box2) -> tuple[int, int]:
    occ = gmsh.model.occ
    tag = occ.addBox(-b.hw, b.s0, b.zc - b.hz, 2 * b.hw, b.s1 - b.s0, 2 * b.hz)
    angle = -math.atan2(b.v[0], b.v[1])  # rotates +y onto v
    occ.rotate([(3, tag)], 0, 0, 0, 0, 0, 1, angle)
    occ.translate([(3, tag)], b.p0[0], b.p0[1], 0.0)
    return (3, tag)


def _ellipsoid(tum) -> tuple[int, int]:
    occ = gmsh.model.occ
    c, a = tum.center_m, tum.semi_axes_m
    r = max(a)
    tag = occ.addSphere(*c, r)
    occ.dilate([(3, tag)], *c, a[0] / r, a[1] / r, a[2] / r)
    return (3, tag)


def _assemble(geometry, lay: sd.SpineLayout, cavities: tuple[CatheterCavity, ...]) -> dict[int, int]:
    """Create, fragment and label every solid; return gmsh volume tag -> region tag (the
    cavities' volumes are removed)."""
    occ = gmsh.model.occ
    zb, zk = lay.z_body, lay.z_block
    t = lay.cortical_thickness


    block = _box(lay.block_lo, lay.block_hi)
    body = _prism(lay.body, -zb, zb)
    canc = _prism(lay.cancellous, -zb + t, zb - t)
    disc_up = _prism(lay.body, zb, zk)
    disc_lo = _prism(lay.body, -zk, -zb)
    canal = _prism(lay.canal, -zk, zk)
    # the canal in front of the dural sac's centre plane: ligament and venous plexus
    pad = 1e-3
    ant_box = _box((lay.canal.cx - lay.canal.ax - pad, lay.canal.y_min, -zk - pad),
                   (lay.canal.cx + lay.canal.ax + pad, lay.dura.cy, zk + pad))
    canal_ant, _ = occ.intersect(occ.copy([canal]), [ant_box], removeObject=True, removeTool=True)
    canal_ant = [dt for dt in canal_ant if dt[0] == 3]
    dura = _prism(lay.dura, -zk, zk)
    csf = _prism(lay.csf, -zk, zk)
    cord = _prism(lay.cord, -zk, zk)

    parts = [_pedicle(b) for b in lay.pedicles] + [
        _box(*zip(*lay.lamina)), _box(*zip(*lay.spinous))
    ]
    pe, _ = occ.fuse(parts[:1], parts[1:], removeObject=True, removeTool=True)
    pe, _ = occ.cut(pe, occ.copy([canal, body]), removeObject=True, removeTool=True)
    pe = [dt for dt in pe if dt[0] == 3]

    tumour_parts: list[list[tuple[int, int]]] = []
    for i, tum in enumerate(geometry.tumour):
        pieces: list[tuple[int, int]] = []
        for host in ([body], [canal], pe):
            shape = _ellipsoid(tum)
            part, _ = occ.intersect([shape], occ.copy(host), removeObject=True, removeTool=True)
            part = [dt for dt in part if dt[0] == 3]
            if part and host == [canal]:
                part, _ = occ.cut(part, occ.copy([dura]), removeObject=True, removeTool=True)
                part = [dt for dt in part if dt[0] == 3]
            pieces += part
        if not pieces:
            raise ValueError(
                f"tumour[{i}] '{tum.name}' (center_m = {list(tum.center_m)}) does not overlap the vertebral "
                "body, the epidural space or the posterior elements"
            )
        tumour_parts.append(pieces)

    cav_tools: list[tuple[int, int]] = []
    for cav in cavities:
        a, s, e = (np.asarray(p, dtype=float) for p in (cav.entry_m, cav.tip_start_m, cav.end_m))
        cav_tools.append((3, occ.addCylinder(*a, *(s - a), cav.radius_m)))
        cav_tools.append((3, occ.addCylinder(*s, *(e - s), cav.radius_m)))

    # (role, precedence) for each fragment input; the lowest precedence number wins.
    roles: list[tuple[int, list[tuple[int, int]]]] = [(-1, cav_tools)]  # -1: cavity (removed)
    roles += [(REGION_TAGS["spinal_cord"], [cord]), (REGION_TAGS["csf"], [csf]), (REGION_TAGS["dura"], [dura])]
    for i in reversed(range(len(tumour_parts))):
        roles.append((TUMOUR_TAG_BASE + i, tumour_parts[i]))
    roles += [
        (REGION_TAGS["epidural_anterior"], canal_ant),
        (REGION_TAGS["epidural_fat"], [canal]),
        (REGION_TAGS["cancellous_bone"], [canc]),
        (REGION_TAGS["cortical_bone"], [body]),
        (REGION_TAGS["posterior_elements"], pe),
        (REGION_TAGS["disc_upper"], [disc_up]),
        (REGION_TAGS["disc_lower"], [disc_lo]),
        (REGION_TAGS["muscle"], [block]),
    ]
    flat = [(rank, dt) for rank, (_, dts) in enumerate(roles) for dt in dts]
    objects = [dt for _, dt in flat]
    out, out_map = occ.fragment(objects[:1], objects[1:], removeObject=True, removeTool=True)
    occ.synchronize()

    best: dict[int, int] = {}  # volume -> best (lowest) rank
    for (rank, _), children in zip(flat, out_map):
        for d, v in children:
            if d == 3:
                best[v] = min(best.get(v, rank), rank)
    removed = [(3, v) for v, rank in best.items() if roles[rank][0] == -1]
    outside = [(3, v) for d, v in out if d == 3 and v not in best]
    if removed or outside:
        occ.remove(removed + outside, recursive=True)
        occ.synchronize()
    owner = {v: roles[rank][0] for v, rank in best.items() if roles[rank][0] != -1}
    # entities outside the block (cavity pieces beyond it) were children of the cavity only
    return owner


# --------------------------------------------------------------------------- size fields


def _ellipse_sd_expr(e: sd.Ellipse) -> str:
    """Approximate signed distance to the (cut) ellipse in the xy plane (negative inside):
    (normalised radius - 1) x the smaller semi-axis, maxed with the cut planes."""
    r = f"sqrt(({_minus('x', e.cx)}/{_num(e.ax)})^2+({_minus('y', e.cy)}/{_num(e.by)})^2)"
    terms = [f"({r}-1)*{_num(min(e.ax, e.by))}"]
    if math.isfinite(e.y_min):
        terms.append(f"({_num(e.y_min)}-y)")
    if math.isfinite(e.y_max):
        terms.append(_minus("y", e.y_max))
    expr = terms[0]
    for term in terms[1:]:
        expr = f"max({expr},{term})"
    return expr


def _threshold(src_expr: str, size: float, h: float, dmin: float, dmax: float) -> int | None:
    f = gmsh.model.mesh.field
    if size >= h:
        return None
    dist = f.add("MathEval")
    f.setString(dist, "F", src_expr)
    th = f.add("Threshold")
    f.setNumber(th, "InField", dist)
    f.setNumber(th, "SizeMin", size)
    f.setNumber(th, "SizeMax", h)
    f.setNumber(th, "DistMin", dmin)
    f.setNumber(th, "DistMax", dmax)
    return th


def _restrict(vols: list[int], size: float, h: float) -> int | None:
    f = gmsh.model.mesh.field
    if size >= h or not vols:
        return None
    const = f.add("MathEval")
    f.setString(const, "F", _num(size))
    res = f.add("Restrict")
    f.setNumber(res, "InField", const)
    f.setNumbers(res, "VolumesList", vols)
    faces = gmsh.model.getBoundary([(3, v) for v in vols], combined=False, oriented=False)
    f.setNumbers(res, "SurfacesList", sorted({abs(t) for _, t in faces}))
    f.setNumber(res, "IncludeBoundary", 1)
    return res


def _size_fields(geometry, lay: sd.SpineLayout, owner: dict[int, int], cavities) -> list[int]:
    h = geometry.mesh_size_m
    t = lay.cortical_thickness
    fields: list[int | None] = []
    for cav in cavities:
        r = cav.radius_m
        fields.append(
            _threshold(_segment_distance_expr(cav.entry_m, cav.end_m), CAVITY_SIZE_PER_RADIUS * r, h,
                       CAVITY_PLATEAU_RADII * r, CAVITY_GROWTH_RADII * r)
        )
        dmin = r + 2.0 * geometry.tip_size_m
        fields.append(
            _threshold(_segment_distance_expr(cav.tip_start_m, cav.end_m), geometry.tip_size_m, h, dmin,
                       dmin + TIP_GROWTH_M)
        )
    for ref in geometry.refinement:
        expr = (_point_distance_expr(ref.point_m) if ref.point_m is not None
                else _segment_distance_expr(ref.segment_start_m, ref.segment_end_m))
        fields.append(
            _threshold(expr, ref.size_m, h, min(REFINEMENT_PLATEAU_CELLS * ref.size_m, 0.5 * ref.distance_m),
                       ref.distance_m)
        )
    # Canal and its contents (cord, CSF, dura, epidural fat): cord_size_m, graded outwards.
    fields.append(_threshold(_ellipse_sd_expr(lay.canal), geometry.cord_size_m, h, 0.0, CANAL_GROWTH_M))
    # Posterior cortex (the flat wall facing the canal): distance to that rectangle.
    half_flat = lay.body.half_width(lay.body.y_max)
    rect = (
        f"sqrt(max(abs(x)-{_num(half_flat)},0)^2+{_minus('y', lay.body.y_max)}^2"
        f"+max(abs(z)-{_num(lay.z_body)},0)^2)"
    )
    dmin = max(t, geometry.cortex_size_m)
    fields.append(_threshold(rect, geometry.cortex_size_m, h, dmin, dmin + CORTEX_GROWTH_M))
    # The rest of the cortical shell: distance to the body's surface, approximately.
    body_sd = f"max({_ellipse_sd_expr(lay.body)},abs(z)-{_num(lay.z_body)})"
    shell = max(geometry.cortex_size_m, CORTEX_SIZE_PER_THICKNESS * t)
    fields.append(_threshold(f"abs({body_sd})", shell, h, t, t + CORTEX_GROWTH_M))
    # Tumours: at most (smallest semi-axis) / MIN_CELLS_PER_RADIUS inside.
    for i, tum in enumerate(geometry.tumour):
        vols = [v for v, reg in owner.items() if reg == TUMOUR_TAG_BASE + i]
        fields.append(_restrict(vols, min(tum.semi_axes_m) / MIN_CELLS_PER_RADIUS, h))
    return [f for f in fields if f is not None]


# --------------------------------------------------------------------------- model


def _classify_outer(lay: sd.SpineLayout, face: int, tol: float) -> bool:
    lo, hi = gmsh.model.getParametrizationBounds(2, face)
    p = np.asarray(gmsh.model.getValue(2, face, [0.5 * (lo[0] + hi[0]), 0.5 * (lo[1] + hi[1])]))
    return any(abs(p[i] - lay.block_lo[i]) <= tol or abs(p[i] - lay.block_hi[i]) <= tol for i in range(3))


def build_spine_model(geometry, cavities: Sequence[CatheterCavity] = ()) -> None:
    """Build, tag and mesh the spine geometry minus ``cavities`` in the current gmsh model
    (one rank)."""
    cavities = tuple(cavities)
    lay = sd.validate_spine(geometry)
    owner = _assemble(geometry, lay, cavities)
    regions, _ = spine_tags(geometry)
    for name, rtag in regions.items():
        vols = sorted(v for v, reg in owner.items() if reg == rtag)
        if not vols:
            raise ValueError(
                f"region '{name}' is empty: it is entirely covered by higher-precedence regions"
                + (" or applicator cavities" if cavities else "")
            )
        gmsh.model.addPhysicalGroup(3, vols, tag=rtag, name=name)

    scale = max(lay.block_hi[i] - lay.block_lo[i] for i in range(3))
    tol = 1e-6 * scale
    boundary = gmsh.model.getBoundary([(3, v) for v in owner], combined=True, oriented=False)
    by_name: dict[str, list[int]] = {}
    for _, face in boundary:
        face = abs(face)
        on_cavity = _classify_cavity_face(face, cavities, tol) if cavities else None
        if on_cavity is not None:
            name = f"{cavities[on_cavity[0]].name}_{on_cavity[1]}"
        elif _classify_outer(lay, face, tol):
            name = "outer"
        else:
            raise RuntimeError(f"spine: boundary face {face} is neither on the block nor on a cavity")
        by_name.setdefault(name, []).append(face)
    cavity_tags, _ = cavity_surfaces(cavities)
    for name, stag in list(SURFACE_TAGS.items()) + list(cavity_tags.items()):
        faces = sorted(set(by_name.get(name, [])))
        if not faces:
            raise RuntimeError(f"spine: no boundary face found for surface '{name}'")
        gmsh.model.addPhysicalGroup(2, faces, tag=stag, name=name)

    _set_mesh_options(geometry.mesh_size_m)
    fields = _size_fields(geometry, lay, owner, cavities)
    if fields:
        fmin = gmsh.model.mesh.field.add("Min")
        gmsh.model.mesh.field.setNumbers(fmin, "FieldsList", fields)
        gmsh.model.mesh.field.setAsBackgroundMesh(fmin)
    gmsh.model.mesh.generate(3)


# --------------------------------------------------------------------------- cache + build


@functools.cache
def _spine_digest() -> str:
    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in ("spine.py", "spine_dimensions.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


def spine_cache_file(cache_dir: Path, geometry, cavities=()) -> Path:
    key = hashlib.sha256(f"{_cache.cache_key(geometry, cavities)}\nspine={_spine_digest()}".encode()).hexdigest()
    return Path(cache_dir) / f"spine-{key}.msh"


def check_cavities(geometry, cavities: Sequence[CatheterCavity]) -> None:
    """No catheter may enter the spinal canal (pure Python; ValueError names the applicator)."""
    lay = sd.layout(geometry)
    poly = lay.canal.polygon()
    for i, cav in enumerate(cavities):
        gap = sd.segment_distance_2d(poly, cav.entry_m[:2], cav.end_m[:2])
        if gap <= cav.radius_m:
            raise ValueError(
                f"applicator[{i}] '{cav.name}' (entry_m = {list(cav.entry_m)}, end_m = {list(cav.end_m)}, "
                f"radius_m = {cav.radius_m}) enters the spinal canal (axis within {gap:.4g} m of it); "
                "choose a track that stays in bone (e.g. meshes.spine_dimensions.transpedicular_track)"
            )


def build_spine_mesh(
    geometry,
    comm: MPI.Comm = MPI.COMM_WORLD,
    cache_dir: Path | None = None,
    use_cache: bool = True,
    cavities: Sequence[CatheterCavity] = (),
) -> MeshBundle:
    """Build (or load from the cache) the mesh of a spine geometry. Collective. ``cavities``
    must already be validated (:func:`meshes.cavities.validate_cavities`)."""
    cavities = tuple(cavities)
    sd.validate_spine(geometry)
    check_cavities(geometry, cavities)
    regions, surfaces = spine_tags(geometry, cavities)
    from .loading import cached_gmsh_bundle

    return cached_gmsh_bundle(
        comm,
        label=f"gmsh spine {geometry.level}",
        cache_path=lambda folder: spine_cache_file(folder, geometry, cavities),
        expected_groups=expected_physical_groups(geometry, cavities),
        build=lambda: build_spine_model(geometry, cavities),
        regions=regions,
        surfaces=surfaces,
        cache_dir=cache_dir,
        use_cache=use_cache,
    )


# --------------------------------------------------------------------------- statistics


def cell_quality(bundle: MeshBundle) -> tuple[np.ndarray, np.ndarray]:
    """(radius ratio 3 r_in / R_circ, signed Jacobian determinant) of the locally owned cells
    (1 for a regular tetrahedron, 0 for a degenerate one)."""
    mesh = bundle.mesh
    tdim = mesh.topology.dim
    n = mesh.topology.index_map(tdim).size_local
    dofs = compat.coordinate_map(mesh)[1][:n, :4]
    x = mesh.geometry.x[dofs]  # (n, 4, 3)
    e1, e2, e3 = x[:, 1] - x[:, 0], x[:, 2] - x[:, 0], x[:, 3] - x[:, 0]
    det = np.einsum("ij,ij->i", e1, np.cross(e2, e3))
    vol = np.abs(det) / 6.0

    def tri_area(a, b, c):
        return 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1)

    faces = (
        tri_area(x[:, 1], x[:, 2], x[:, 3]) + tri_area(x[:, 0], x[:, 2], x[:, 3])
        + tri_area(x[:, 0], x[:, 1], x[:, 3]) + tri_area(x[:, 0], x[:, 1], x[:, 2])
    )
    r_in = 3.0 * vol / faces
    # circumcentre c - x0 solves [e1; e2; e3] (c - x0) = 0.5 |e_i|^2
    A = np.stack([e1, e2, e3], axis=1)
    rhs = 0.5 * np.stack([np.sum(e1 * e1, 1), np.sum(e2 * e2, 1), np.sum(e3 * e3, 1)], axis=1)
    with np.errstate(all="ignore"):
        c = np.linalg.solve(A, rhs[..., None])[..., 0] if n else np.zeros((0, 3))
    R = np.linalg.norm(c, axis=1)
    with np.errstate(all="ignore"):
        q = np.where(R > 0, 3.0 * r_in / R, 0.0)
    return q, det


def spine_mesh_statistics(bundle: MeshBundle) -> dict:
    """Global cell counts per region, minimum radius ratio (3 r_in / R_circ), and whether
    every cell has the same orientation. Collective."""
    comm = bundle.comm
    tdim = bundle.mesh.topology.dim
    n = bundle.mesh.topology.index_map(tdim).size_local
    tags = bundle.cell_tags
    owned = tags.indices < n
    vals = tags.values[owned]
    counts = {name: int(comm.allreduce(int(np.count_nonzero(vals == tag)), op=MPI.SUM))
              for name, tag in bundle.regions.items()}
    q, det = cell_quality(bundle)
    qmin = comm.allreduce(float(q.min()) if len(q) else math.inf, op=MPI.MIN)
    pos = comm.allreduce(int(np.count_nonzero(det > 0)), op=MPI.SUM)
    neg = comm.allreduce(int(np.count_nonzero(det < 0)), op=MPI.SUM)
    zero = comm.allreduce(int(np.count_nonzero(det == 0)), op=MPI.SUM)
    worst = {name: comm.allreduce(float(q[tags.indices[owned][vals == tag]].min())
                                  if np.any(vals == tag) else math.inf, op=MPI.MIN)
             for name, tag in bundle.regions.items()}
    return {
        "cells": bundle.num_cells_global(),
        "vertices": int(bundle.mesh.geometry.index_map().size_global),
        "cells_per_region": counts,
        "min_quality": qmin,
        "min_quality_per_region": worst,
        "quality_below_0.1": int(comm.allreduce(int(np.count_nonzero(q < 0.1)), op=MPI.SUM)),
        "positive_jacobians": pos,
        "negative_jacobians": neg,
        "zero_jacobians": zero,
        "source": bundle.source,
    }
