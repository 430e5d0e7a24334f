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

Built on rank 0, cached as .msh (and as arrays, :mod:`meshes.arrays`) like the primitives (key:
the geometry, the cavities, the gmsh version and the source of this module, spine_dimensions,
primitives and cavities), distributed with :func:`meshes.arrays.mesh_from_arrays`.

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
from .gmshio import cached_gmsh_bundle
from .cavities import CatheterCavity, cavity_surfaces
from .gmsh_model import (
    MIN_CELLS_PER_RADIUS,
    add_ellipsoid,
    add_region_groups,
    add_surface_groups,
    cavity_cylinders,
    cavity_wall_field,
    generate,
    minus,
    num,
    refinement_fields,
    restrict_field,
    sample_point,
    segment_distance_expr,
    threshold_field,
)
from .quality import cell_quality  # noqa: F401  (re-exported: its old home)

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
# 3D algorithm: gmsh's HXT (Mesh.Algorithm3D = 10) instead of the primitives' Delaunay (1): on the
# converged T8 mesh (2.5 / 0.3 / 0.35 / 0.35 mm) 12 s instead of 44 s on one thread, minimum radius
# ratio 0.098 instead of 0.003 (docs/PERFORMANCE.md). One thread: HXT with more threads is faster
# on an idle machine but not deterministic (the cell count changes from run to run), and a rebuilt
# mesh must equal the cached one for `bioheat reproduce`.
SPINE_ALGORITHM_3D = 10
SPINE_MESH_THREADS = 1


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
            shape = add_ellipsoid(tum.center_m, tum.semi_axes_m)
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

    cav_tools = cavity_cylinders(cavities)

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
    r = f"sqrt(({minus('x', e.cx)}/{num(e.ax)})^2+({minus('y', e.cy)}/{num(e.by)})^2)"
    terms = [f"({r}-1)*{num(min(e.ax, e.by))}"]
    if math.isfinite(e.y_min):
        terms.append(f"({num(e.y_min)}-y)")
    if math.isfinite(e.y_max):
        terms.append(minus("y", e.y_max))
    expr = terms[0]
    for term in terms[1:]:
        expr = f"max({expr},{term})"
    return expr


def _size_fields(geometry, lay: sd.SpineLayout, owner: dict[int, int], cavities) -> list[int | None]:
    h = geometry.mesh_size_m
    t = lay.cortical_thickness
    fields: list[int | None] = []
    for cav in cavities:
        fields.append(cavity_wall_field(cav, h))
        dmin = cav.radius_m + 2.0 * geometry.tip_size_m
        fields.append(
            threshold_field(segment_distance_expr(cav.tip_start_m, cav.end_m), geometry.tip_size_m, h, dmin,
                            dmin + TIP_GROWTH_M)
        )
    fields += refinement_fields(geometry.refinement, h)
    # Canal and its contents (cord, CSF, dura, epidural fat): cord_size_m, graded outwards.
    fields.append(threshold_field(_ellipse_sd_expr(lay.canal), geometry.cord_size_m, h, 0.0, CANAL_GROWTH_M))
    # Posterior cortex (the flat wall facing the canal): distance to that rectangle.
    half_flat = lay.body.half_width(lay.body.y_max)
    rect = (
        f"sqrt(max(abs(x)-{num(half_flat)},0)^2+{minus('y', lay.body.y_max)}^2"
        f"+max(abs(z)-{num(lay.z_body)},0)^2)"
    )
    dmin = max(t, geometry.cortex_size_m)
    fields.append(threshold_field(rect, geometry.cortex_size_m, h, dmin, dmin + CORTEX_GROWTH_M))
    # The rest of the cortical shell: distance to the body's surface, approximately.
    body_sd = f"max({_ellipse_sd_expr(lay.body)},abs(z)-{num(lay.z_body)})"
    shell = max(geometry.cortex_size_m, CORTEX_SIZE_PER_THICKNESS * t)
    fields.append(threshold_field(f"abs({body_sd})", shell, h, t, t + CORTEX_GROWTH_M))
    # Tumours: at most (smallest semi-axis) / MIN_CELLS_PER_RADIUS inside.
    for i, tum in enumerate(geometry.tumour):
        vols = [v for v, reg in owner.items() if reg == TUMOUR_TAG_BASE + i]
        fields.append(restrict_field(vols, min(tum.semi_axes_m) / MIN_CELLS_PER_RADIUS, h, every_face=True))
    return fields


# --------------------------------------------------------------------------- model


def _outer_face(lay: sd.SpineLayout, face: int, tol: float) -> str:
    """'outer' for a boundary face on the block's sides; RuntimeError for any other face."""
    p = sample_point(face)
    if any(abs(p[i] - lay.block_lo[i]) <= tol or abs(p[i] - lay.block_hi[i]) <= tol for i in range(3)):
        return "outer"
    raise RuntimeError(f"spine: boundary face {face} is neither on the block nor on a cavity")


def build_spine_model(geometry, cavities: Sequence[CatheterCavity] = ()) -> None:
    """Build, tag and mesh the spine geometry minus ``cavities`` in the current gmsh model
    (one rank)."""
    cavities = tuple(cavities)
    lay = sd.validate_spine(geometry)
    owner = _assemble(geometry, lay, cavities)
    regions, _ = spine_tags(geometry)
    add_region_groups(
        owner, regions,
        lambda name, _tag: f"region '{name}' is empty: it is entirely covered by higher-precedence regions"
        + (" or applicator cavities" if cavities else ""),
    )
    scale = max(lay.block_hi[i] - lay.block_lo[i] for i in range(3))
    tol = 1e-6 * scale
    add_surface_groups(owner, cavities, tol, lambda face: _outer_face(lay, face, tol), SURFACE_TAGS, "spine")
    generate(
        geometry.mesh_size_m, lambda: _size_fields(geometry, lay, owner, cavities),
        algorithm_3d=SPINE_ALGORITHM_3D, threads=SPINE_MESH_THREADS,
    )


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
