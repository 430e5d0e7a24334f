"""One thoracic vertebra (geometry.kind = "spine"): dimensions, validation, tracks, mesh.

Coarse sizes (6 mm far field, 2 mm in the canal, cortex and at the tip) keep every mesh at a
few seconds. Run the `mpi` test also under `mpiexec -n 2 python -m pytest -m mpi`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from mpi4py import MPI

from solver.compat import coordinate_map
from meshes import CatheterCavity, build_mesh, region_volumes, surface_areas
from meshes import spine_dimensions as sd
from meshes.spine import cell_quality, spine_mesh_statistics
from solver.config import CaseError, SpineGeometry
from solver.case_loader import parse_case

COARSE = dict(mesh_size_m=0.006, tip_size_m=0.002, cortex_size_m=0.002, cord_size_m=0.002)
INSIDE = {"name": "tumour", "center_m": [0.004, 0.0, 0.0], "semi_axes_m": [0.006, 0.006, 0.006]}
BREACH = {"name": "tumour", "center_m": [0.004, 0.006, 0.0], "semi_axes_m": [0.008, 0.008, 0.008]}
RADIUS, TIP = 8.25e-4, 0.01
# gmsh's edges exceed the target size by up to ~40 %.
EDGE = 1.4


pytestmark = pytest.mark.mpi  # every mesh test also runs under mpiexec -n 2


def faceting_deficit(h: float, r: float, curved_dims: int) -> float:
    """Upper bound on the relative volume a mesh with vertices on a convex curved surface
    misses. Cylinder (curved in one direction): an inscribed polygon with edge h on radius r
    misses (h/r)^2 / 6 of the area. Ellipsoid (curved in two): a triangle of edge h lies up
    to h^2 / (6 r) inside the sphere, on average about h^2 / (12 r), so the volume misses
    3 h^2 / (12 r^2) = (h/r)^2 / 4. With h the target size times EDGE."""
    return (EDGE * h / r) ** 2 / (6.0 if curved_dims == 1 else 4.0)


def _geometry(level="T8", tumour=(INSIDE,), **kw) -> SpineGeometry:
    return SpineGeometry(kind="spine", level=level, tumour=list(tumour), **{**COARSE, **kw})


# --------------------------------------------------------------------------- dimensions


def test_spine_contains_is_the_layouts_block_for_every_input():
    """SpineGeometry.contains (its block memoised on level, cortical thickness and margin) is
    the layout's block for the geometry at hand: just inside every corner, just outside along
    each axis, for other levels and margins in any order (never a cached neighbour's block)."""
    for level in ("T2", "T8", "T12", "T8"):
        for t in (0.0008, 0.001):
            for margin in (0.01, 0.015, 0.01):
                g = SpineGeometry(kind="spine", level=level, cortical_thickness_m=t, soft_tissue_margin_m=margin)
                lo, hi = np.asarray(sd.layout(g).block_lo), np.asarray(sd.layout(g).block_hi)
                eps = 1e-9
                for corner in np.array(np.meshgrid(*zip(lo + eps, hi - eps))).reshape(3, -1).T:
                    assert g.contains(tuple(corner))
                for i in range(3):
                    for end, step in ((lo, -1.0), (hi, 1.0)):
                        p = 0.5 * (lo + hi)
                        p[i] = end[i] + step * 1e-6
                        assert not g.contains(tuple(p))
                        assert g.contains(tuple(p), tol=2e-6)


@pytest.mark.parametrize("level", list(sd.LEVELS))
def test_layout_is_consistent_at_every_level(level):
    g = SpineGeometry(kind="spine", level=level)
    lay = sd.layout(g)
    # the dural sac lies inside the canal with at least 0.5 mm of epidural fat around it,
    # and the cord inside the sac with at least 0.5 mm of CSF
    sac, canal = lay.dura.polygon(256), lay.canal.polygon(256)
    assert lay.canal.contains(sac[:, 0], sac[:, 1]).all()
    assert np.min(np.linalg.norm(sac[:, None] - canal[None], axis=2)) > 5e-4
    inner, cord = lay.csf.polygon(256), lay.cord.polygon(256)
    assert lay.csf.contains(cord[:, 0], cord[:, 1]).all()
    assert np.min(np.linalg.norm(inner[:, None] - cord[None], axis=2)) > 5e-4
    # the block contains everything, the body spans +-depth/2 and +-width/2
    lo, hi = sd.block_extent(g)
    assert lo[1] < -lay.depth / 2 and hi[1] > lay.spinous[1][1] and hi[2] == -lo[2]
    poly = lay.body.polygon()
    assert np.isclose(poly[:, 1].min(), -lay.depth / 2, atol=1e-6)
    assert np.isclose(poly[:, 1].max(), lay.depth / 2, atol=1e-12)
    assert np.isclose(poly[:, 0].max(), lay.width / 2, atol=1e-6)
    # the default transpedicular track is valid, its tip at least 6 mm from the dura
    entry, end = sd.transpedicular_track(g, "left")
    dist = sd.check_track(g, entry, end, RADIUS, TIP)
    assert dist.dura_m >= sd.DEFAULT_TIP_TO_DURA_M - 1e-6
    assert dist.spinal_cord_m > dist.dura_m and dist.canal_m > 0.0
    assert sd.region_at(g, entry) == "muscle"
    # mirror image on the right
    entry_r, end_r = sd.transpedicular_track(g, "right")
    assert np.allclose(entry_r, [-entry[0], entry[1], entry[2]]) and np.allclose(end_r, [-end[0], end[1], end[2]])


def test_dimensions_grow_from_T2_to_T12():
    rows = np.array([sd.LEVELS[lv] for lv in sd.LEVELS])
    for col in (0, 1, 2):  # endplate width, depth, body height
        assert np.all(np.diff(rows[:, col]) > 0)
    assert sd.level_dimensions("T8")["endplate_width"] == 30.0


def test_default_track_T8_is_6mm_from_dura_in_posterior_body():
    g = _geometry(tumour=())
    entry, end = sd.transpedicular_track(g)
    dist = sd.check_track(g, entry, end, RADIUS, TIP)
    assert dist.dura_m == pytest.approx(6e-3, abs=2e-6)
    assert sd.min_distance(g, ("segment", np.subtract(end, TIP * (np.subtract(end, entry)) / np.linalg.norm(np.subtract(end, entry))), end), "dura") == pytest.approx(6e-3, abs=2e-6)
    lay = sd.layout(g)
    tip_start = np.asarray(end) - TIP * (np.subtract(end, entry)) / np.linalg.norm(np.subtract(end, entry))
    for p in (end, tip_start):  # both tip ends in the posterior half of the cancellous body
        assert sd.region_at(g, p) == "cancellous_bone" and 0.0 < p[1] < lay.depth / 2
    assert sd.region_at(g, (0.0, lay.dura.cy, 0.0)) == "spinal_cord"


def test_check_track_rejects_a_track_through_the_canal():
    g = _geometry(tumour=())
    lay = sd.layout(g)
    entry = (0.0, lay.block_hi[1] - 0.005, 0.0)  # straight in from behind, through the canal
    with pytest.raises(ValueError, match="enters the spinal canal"):
        sd.check_track(g, entry, (0.0, 0.0, 0.0), RADIUS, TIP)
    # a track ending in the muscle: the tip is not in bone
    with pytest.raises(ValueError, match="must lie in bone or a tumour"):
        sd.check_track(g, (0.03, -0.03, 0.0), (0.02, -0.02, 0.0), RADIUS, TIP)
    # build_mesh refuses a cavity through the canal
    cav = CatheterCavity("a", entry_m=entry, end_m=(0.0, 0.0, 0.0), radius_m=RADIUS, tip_length_m=TIP)
    with pytest.raises(ValueError, match=r"applicator\[0\] 'a'.*enters the spinal canal"):
        build_mesh(g, MPI.COMM_SELF, cavities=[cav], use_cache=False)


def test_validate_spine_errors():
    outside = {"name": "t", "center_m": [0.0, -0.03, 0.0], "semi_axes_m": [0.005, 0.005, 0.005]}
    with pytest.raises(ValueError, match=r"tumour\[0\]\.center_m = \[0\.0, -0\.03, 0\.0\] lies outside the vertebra"):
        sd.validate_spine(_geometry(tumour=[outside]))
    lay = sd.layout(_geometry(tumour=()))
    into_cord = {"name": "t", "center_m": [0.0, 0.01, 0.0], "semi_axes_m": [0.006, lay.cord.cy - 0.01 - 0.003, 0.006]}
    with pytest.raises(ValueError, match="would overlap the spinal cord; a tumour may reach the epidural space but not the cord"):
        sd.validate_spine(_geometry(tumour=[into_cord]))
    # touching the dura but not the cord is allowed (the dura is clipped away from the tumour)
    near = {"name": "t", "center_m": [0.0, 0.01, 0.0], "semi_axes_m": [0.006, lay.cord.cy - lay.cord.by - 0.01 - 0.001, 0.006]}
    sd.validate_spine(_geometry(tumour=[near]))
    assert sd.tumour_distance(_geometry(tumour=[near]), 0, "spinal_cord") == pytest.approx(1e-3, abs=1e-5)
    assert sd.tumour_distance(_geometry(tumour=[near]), 0, "dura") == 0.0


@pytest.mark.parametrize("level", ["T1", "L1", "T13"])
def test_config_rejects_levels_outside_T2_T12(level):
    with pytest.raises(CaseError) as info:
        parse_case({"name": "t", "geometry": {"kind": "spine", "level": level}, "regions": {}})
    assert "level" in str(info.value) and level in str(info.value)


# --------------------------------------------------------------------------- mesh


@pytest.fixture(scope="module")
def t8_inside():
    g = _geometry(tumour=[INSIDE])
    return g, build_mesh(g, MPI.COMM_WORLD, use_cache=False)


def test_regions_surfaces_and_volumes(t8_inside):
    g, bundle = t8_inside
    lay = sd.layout(g)
    assert list(bundle.regions) == g.region_names() and list(bundle.surfaces) == ["outer"]
    vol = region_volumes(bundle)
    assert all(v > 0 for v in vol.values()), vol
    box = np.prod(np.subtract(lay.block_hi, lay.block_lo))
    assert sum(vol.values()) == pytest.approx(box, rel=1e-10)
    assert surface_areas(bundle)["outer"] == pytest.approx(
        2 * sum(np.prod(np.delete(np.subtract(lay.block_hi, lay.block_lo), i)) for i in range(3)), rel=1e-10
    )
    # Curved surfaces are faceted by triangles with vertices on the true (convex) surface, so
    # the mesh misses a little: an inscribed polygon with edge h on radius r misses about
    # (h/r)^2 / 6 of the area. Cord: h = cord_size_m, r >= its smaller semi-axis.
    cord = lay.column_volume(lay.cord)
    bound = faceting_deficit(g.cord_size_m, min(lay.cord.ax, lay.cord.by), 1)
    assert 0.0 <= (cord - vol["spinal_cord"]) / cord <= bound
    sac = lay.column_volume(lay.dura)
    got = vol["spinal_cord"] + vol["csf"] + vol["dura"]
    assert 0.0 <= (sac - got) / sac <= faceting_deficit(g.cord_size_m, min(lay.dura.ax, lay.dura.by), 1)
    # Body (cortex + cancellous + the tumour, which lies inside it): the shell is meshed at
    # about 3 x the cortical thickness, and never finer than cortex_size_m (meshes/spine.py:
    # max(cortex_size_m, CORTEX_SIZE_PER_THICKNESS t): 2 mm here) on semi-axes >= 15 mm.
    body = vol["cortical_bone"] + vol["cancellous_bone"] + vol["tumour"]
    h_shell = max(g.cortex_size_m, 3 * g.cortical_thickness_m)
    assert 0.0 <= (lay.body_volume() - body) / lay.body_volume() <= faceting_deficit(h_shell, min(lay.body.ax, lay.body.by), 1)
    tumour = 4 / 3 * math.pi * np.prod(INSIDE["semi_axes_m"])
    assert 0.0 <= (tumour - vol["tumour"]) / tumour <= faceting_deficit(3e-3, 6e-3, 2)  # size cap r/2
    # the canal runs through the block height: epidural fat + anterior epidural layer + sac = canal column
    canal = lay.column_volume(lay.canal)
    epidural = vol["epidural_fat"] + vol["epidural_anterior"]
    assert 0.0 <= (canal - epidural - got) / canal <= faceting_deficit(g.cord_size_m, lay.canal.ax, 1)


def test_cells_match_the_analytic_regions_and_quality(t8_inside):
    g, bundle = t8_inside
    lay = sd.layout(g)
    q, det = cell_quality(bundle)
    assert np.all(det > 0) or np.all(det < 0)
    stats = spine_mesh_statistics(bundle)
    assert stats["zero_jacobians"] == 0 and min(stats["positive_jacobians"], stats["negative_jacobians"]) == 0
    # gmsh's Delaunay + optimisation gives radius ratios >= ~0.2 in smooth regions; the worst
    # cells sit where the tumour surface passes 1-2 mm from the endplates at 2 mm sizes.
    assert stats["min_quality"] > 0.02
    assert stats["quality_below_0.1"] <= 1e-3 * stats["cells"]
    assert sum(stats["cells_per_region"].values()) == stats["cells"]
    # The region of each cell (from the fragment map) is the analytic region at its centroid,
    # except for cells cut by the faceting of a curved interface.
    n = bundle.mesh.topology.index_map(3).size_local
    idx = bundle.cell_tags.indices[bundle.cell_tags.indices < n]
    vals = bundle.cell_tags.values[bundle.cell_tags.indices < n]
    rng = np.random.default_rng(1)
    pick = rng.choice(len(idx), size=min(1500, len(idx)), replace=False)
    x = bundle.mesh.geometry.x[coordinate_map(bundle.mesh)[1][idx[pick]]].mean(axis=1)
    names = {t: nm for nm, t in bundle.regions.items()}
    agree = np.mean([sd.region_at(g, p, lay) == names[v] for p, v in zip(x, vals[pick])])
    assert agree > 0.97


def test_breached_wall_with_transpedicular_cavity(shared_tmp):
    g = _geometry(tumour=[BREACH])
    entry, end = sd.transpedicular_track(g)
    cav = CatheterCavity("applicator1", entry_m=entry, end_m=end, radius_m=RADIUS, tip_length_m=TIP)
    bundle = build_mesh(g, MPI.COMM_WORLD, cavities=[cav], cache_dir=shared_tmp)
    assert not bundle.from_cache and bundle.cache_path is not None
    assert set(bundle.surfaces) == {"outer", "applicator1_tip", "applicator1_shaft", "applicator1"}
    assert bundle.surfaces["applicator1_tip"] == [100] and bundle.surfaces["applicator1_shaft"] == [101]
    area = surface_areas(bundle)
    # tip: wall 2 pi r L + end cap pi r^2 (faceted at ~r: a few % less)
    tip = 2 * math.pi * RADIUS * TIP + math.pi * RADIUS**2
    assert 0.85 * tip < area["applicator1_tip"] < tip
    shaft = 2 * math.pi * RADIUS * (cav.length_m - TIP) + math.pi * RADIUS**2
    assert 0.85 * shaft < area["applicator1_shaft"] < shaft
    vol = region_volumes(bundle)
    lay = sd.layout(g)
    box = np.prod(np.subtract(lay.block_hi, lay.block_lo))
    hole = math.pi * RADIUS**2 * cav.length_m  # faceted with edges ~ radius: up to ~1/6 less
    assert (1.0 - faceting_deficit(RADIUS / EDGE, RADIUS, 1)) * hole < box - sum(vol.values()) < hole
    # the tumour replaces the cortex where it crosses the posterior wall: a tumour cell
    # behind the wall, in the canal
    n = bundle.mesh.topology.index_map(3).size_local
    tum = bundle.cell_tags.find(bundle.regions["tumour"])
    tum = tum[tum < n]
    x = bundle.mesh.geometry.x[coordinate_map(bundle.mesh)[1][tum]].mean(axis=1)
    behind = bundle.comm.allreduce(int(np.count_nonzero(x[:, 1] > lay.depth / 2)), op=MPI.SUM)
    assert behind > 0
    stats = spine_mesh_statistics(bundle)
    # the ellipsoid meets the thin cortical shell at a grazing angle at the breach: wedges
    assert stats["min_quality"] > 0.02 and stats["zero_jacobians"] == 0
    again = build_mesh(g, MPI.COMM_WORLD, cavities=[cav], cache_dir=shared_tmp)
    assert again.from_cache and again.num_cells_global() == bundle.num_cells_global()


@pytest.mark.mpi
def test_distributed_volumes_match_serial():
    g = _geometry(tumour=[BREACH])
    world = region_volumes(build_mesh(g, MPI.COMM_WORLD, use_cache=False))
    alone = region_volumes(build_mesh(g, MPI.COMM_SELF, use_cache=False))
    assert set(world) == set(alone)
    for name in world:
        assert world[name] == pytest.approx(alone[name], rel=1e-12), name
