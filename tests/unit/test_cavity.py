"""Applicator (catheter) cavities cut out of primitive meshes (meshes.cavities / build_mesh).

Tolerances for the faceted catheter
-----------------------------------
gmsh puts the wall's vertices on the cylinder r = radius_m, so the wall is made of chord
facets. The end cap is a plane disc whose boundary is the polygon of the n mesh vertices on
the end circle: its area is exactly the inscribed n-gon's, (n/2) r^2 sin(2 pi/n). A wall
facet spanning an angle phi around the axis has area 2 r sin(phi/2) * (axial extent) instead
of r phi * (axial extent): relative deficit 1 - sin(x)/x ~ x^2/6 with x = phi/2. For n
vertices around the circle phi ~ 2 pi/n, so

    wall area deficit / wall area ~ (pi/n)^2 / 6        (n = 7: 3.3 %)

and the cavity volume (an inscribed prism) is short by ~ the n-gon's area deficit,
1 - sin(2 pi/n)/(2 pi/n) ~ (2 pi/n)^2/6. n is *measured* on the mesh (vertices on the end
circle and on the tip-start circle; the smaller is used, which gives the larger estimate),
not assumed; gmsh's wall edges are not all equal, so we accept 0 < deficit <= 2 x the
estimate (SAFETY, as in tests/unit/test_meshes.py). Measured for the sphere case below
(n = 7): tip wall 0.94 x the estimate, shaft 0.9x.

Sphere faceting (outer surface, body volume) uses the estimates of tests/unit/test_meshes.py.
The body volume error is (cavity deficit) - (sphere deficit), bounded like the shell there.
"""

from __future__ import annotations

import math
import time

import solver.compat  # noqa: F401  - before dolfinx / petsc4py

import gmsh
import numpy as np
import pytest
from mpi4py import MPI

from meshes import (
    CatheterCavity,
    MIN_CELLS_PER_RADIUS,
    build_mesh,
    cache_file,
    region_volumes,
    surface_areas,
)
from solver.config import BoxGeometry, FileGeometry, SphereGeometry

SAFETY = 2.0
EXACT = 1e-12
R_CATH = 0.825e-3

SPHERE = SphereGeometry(kind="sphere", radius_m=0.02, mesh_size_m=0.004)
SPHERE_CAV = CatheterCavity("applicator1", (0.0, 0.0, -0.03), (0.0, 0.0, 0.005), R_CATH, 0.01)

BOX_TUMOUR = BoxGeometry(
    kind="box",
    lower_m=(0.0, 0.0, 0.0),
    upper_m=(0.03, 0.03, 0.03),
    mesh_size_m=0.004,
    region="bone",
    inclusion=[{"name": "tumour", "shape": "sphere", "center_m": (0.015, 0.015, 0.015), "radius_m": 0.006}],
)
# enters through zmin; tip z in [0.011, 0.017], inside the tumour (|.| <= 4.1 mm < 6 mm)
BOX_CAV = CatheterCavity("lt", (0.015, 0.015, -0.005), (0.015, 0.015, 0.017), R_CATH, 0.006)


pytestmark = pytest.mark.mpi  # every mesh test also runs under mpiexec -n 2


@pytest.fixture(autouse=True)
def _private_cache(shared_tmp, monkeypatch):
    monkeypatch.setenv("SPINE_LITT_MESH_CACHE", str(shared_tmp / "mesh-cache"))


# --------------------------------------------------------------------------- exact values


def sphere_cavity_exact(R: float, cav: CatheterCavity, centre=(0.0, 0.0, 0.0)) -> dict[str, float]:
    """Exact measures for a cavity on a line through the sphere's centre, entering from outside.

    The wall meets the sphere at axial distance s0 = sqrt(R^2 - r^2) before the centre; between
    that plane and the sphere a thin lens of the cylinder is also removed.
    """
    r = cav.radius_m
    c, a, ax = np.asarray(centre), np.asarray(cav.entry_m), cav.axis
    assert np.linalg.norm(np.cross(c - a, ax)) < 1e-15, "axis through the centre"
    t_end = float((np.asarray(cav.end_m) - c) @ ax)  # axial coordinate from the centre
    s0 = math.sqrt(R * R - r * r)
    lens = 2 * math.pi / 3 * (R**3 - (R * R - r * r) ** 1.5) - math.pi * r * r * s0
    cavity = math.pi * r * r * (t_end + s0) + lens
    return {
        "cavity_volume": cavity,
        "tip_wall": 2 * math.pi * r * cav.tip_length_m,
        "cap": math.pi * r * r,
        "shaft": 2 * math.pi * r * (t_end - cav.tip_length_m + s0),
        "hole": 2 * math.pi * R * (R - s0),  # the sphere cap removed from the outer surface
    }


def wall_deficit(n: int) -> float:
    return (math.pi / n) ** 2 / 6


def polygon_deficit(n: int) -> float:
    x = 2 * math.pi / n
    return 1 - math.sin(x) / x


def sphere_volume_deficit(h: float, R: float) -> float:
    return h**2 / 8 * 4 * math.pi * R


def sphere_area_deficit(h: float, R: float) -> float:
    return 5 / 24 * (h / R) ** 2 * 4 * math.pi * R**2


def assert_deficit(measured: float, exact: float, estimate: float, what: str) -> float:
    deficit = exact - measured
    assert 0.0 < deficit <= SAFETY * estimate, (
        f"{what}: mesh {measured:.6e}, exact {exact:.6e}, deficit {deficit:.3e} "
        f"({deficit / estimate:.2f} x the estimate {estimate:.3e}; allowed (0, {SAFETY}])"
    )
    return deficit / estimate


# --------------------------------------------------------------------------- mesh helpers


def facet_vertices(bundle, tag: int) -> np.ndarray:
    """(num_facets, 3, 3) vertex coordinates of the local facets with ``tag``."""
    from dolfinx.mesh import entities_to_geometry

    facets = bundle.facet_tags.find(tag)
    return bundle.mesh.geometry.x[entities_to_geometry(bundle.mesh, 2, facets)]


def axial_radial(x: np.ndarray, cav: CatheterCavity) -> tuple[np.ndarray, np.ndarray]:
    d = x - np.asarray(cav.entry_m)
    t = d @ cav.axis
    return t, np.linalg.norm(d - t[..., None] * cav.axis, axis=-1)


def vertices_on_circle(bundle, cav: CatheterCavity, t_circle: float) -> int:
    """Number of distinct mesh vertices on the cavity circle at axial coordinate t_circle."""
    tip, shaft = bundle.surfaces[f"{cav.name}_tip"][0], bundle.surfaces[f"{cav.name}_shaft"][0]
    x = np.concatenate([facet_vertices(bundle, tip), facet_vertices(bundle, shaft)]).reshape(-1, 3)
    t, rho = axial_radial(x, cav)
    on = (np.abs(t - t_circle) < 1e-9) & (np.abs(rho - cav.radius_m) < 1e-9)
    return len(np.unique(np.round(x[on], 12), axis=0))


def triangle_areas(X: np.ndarray) -> np.ndarray:
    return 0.5 * np.linalg.norm(np.cross(X[:, 1] - X[:, 0], X[:, 2] - X[:, 0]), axis=1)


def owned_cell_values(bundle) -> np.ndarray:
    n = bundle.mesh.topology.index_map(3).size_local + bundle.mesh.topology.index_map(3).num_ghosts
    vals = np.zeros(n, dtype=np.int32)
    vals[bundle.cell_tags.indices] = bundle.cell_tags.values
    return vals


def total_volume(bundle) -> float:
    import ufl
    from dolfinx import default_scalar_type, fem

    one = fem.Constant(bundle.mesh, default_scalar_type(1.0))
    local = fem.assemble_scalar(fem.form(one * ufl.dx(domain=bundle.mesh)))
    return bundle.comm.allreduce(float(local), op=MPI.SUM)


def assert_no_inverted_cells(bundle) -> None:
    mesh = bundle.mesh
    n = mesh.topology.index_map(3).size_local
    X = mesh.geometry.x[mesh.geometry.dofmaps[0][:n]]
    det = np.linalg.det(np.stack([X[:, 1] - X[:, 0], X[:, 2] - X[:, 0], X[:, 3] - X[:, 0]], axis=-1))
    assert np.all(det > 0) or np.all(det < 0)


# --------------------------------------------------------------------------- sphere


@pytest.fixture(scope="module")
def sphere_bundle():
    t0 = time.perf_counter()
    b = build_mesh(SPHERE, MPI.COMM_SELF, use_cache=False, cavities=[SPHERE_CAV])
    print(f"\nsphere + applicator: built in {time.perf_counter() - t0:.2f} s, {b.num_cells_global()} cells")
    return b


def check_sphere_measures(areas: dict, vol: dict, n: int) -> dict[str, float]:
    """The analytic checks of the sphere case from global measures; n = vertices per circle."""
    cav, R, h = SPHERE_CAV, SPHERE.radius_m, SPHERE.mesh_size_m
    ex = sphere_cavity_exact(R, cav)
    ratios = {}
    # tip = wall (faceted) + cap (exactly the inscribed n-gon)
    cap_polygon = ex["cap"] * (1 - polygon_deficit(n))
    ratios["tip wall"] = assert_deficit(
        areas["applicator1_tip"] - cap_polygon, ex["tip_wall"], wall_deficit(n) * ex["tip_wall"], "tip wall area"
    )
    ratios["shaft"] = assert_deficit(areas["applicator1_shaft"], ex["shaft"], wall_deficit(n) * ex["shaft"], "shaft")
    assert areas["applicator1"] == pytest.approx(areas["applicator1_tip"] + areas["applicator1_shaft"], rel=1e-12)
    # outer: sphere minus the hole; the hole's rim is a polygon too, which *adds* a little area
    # (n-gon deficit of pi r^2, ~1e-4 of the sphere's area deficit), neglected.
    ratios["outer"] = assert_deficit(
        areas["outer"], 4 * math.pi * R**2 - ex["hole"], sphere_area_deficit(h, R), "outer area"
    )
    # body = (faceted sphere) - (faceted cavity): err = cavity deficit - sphere deficit
    err = vol["body"] - (SPHERE.volume_m3() - ex["cavity_volume"])
    est_s = sphere_volume_deficit(h, R)
    est_c = polygon_deficit(n) * ex["cavity_volume"]
    assert -SAFETY * est_s <= err <= SAFETY * est_c, (err, est_s, est_c)
    ratios["body volume (sphere deficit)"] = -err / est_s
    return ratios


def test_sphere_cavity_names_and_tags(sphere_bundle):
    b = sphere_bundle
    assert b.regions == {"body": 1}
    assert b.surfaces == {
        "outer": [1],
        "applicator1_tip": [100],
        "applicator1_shaft": [101],
        "applicator1": [100, 101],
    }
    assert not b.from_cache and "not cached" in b.source


def test_sphere_cavity_areas_and_volume(sphere_bundle):
    b = sphere_bundle
    cav = SPHERE_CAV
    n_end = vertices_on_circle(b, cav, cav.length_m)
    n_start = vertices_on_circle(b, cav, cav.length_m - cav.tip_length_m)
    n = min(n_end, n_start)
    # the wall resolution asked for: edges ~ radius_m, i.e. about 2 pi = 6.3 per circle
    assert 5 <= n <= 12, (n_end, n_start)
    areas, vol = surface_areas(b), region_volumes(b)
    ratios = check_sphere_measures(areas, vol, n)

    # The cap is planar: its area is exactly the n_end-gon's (facet areas split by position).
    X = facet_vertices(b, 100)
    t, _ = axial_radial(X, cav)
    on_cap = np.all(np.abs(t - cav.length_m) < 1e-9, axis=1)
    a = triangle_areas(X)
    cap = math.pi * cav.radius_m**2 * (1 - polygon_deficit(n_end))
    assert a[on_cap].sum() == pytest.approx(cap, rel=1e-9)
    assert a.sum() == pytest.approx(areas["applicator1_tip"], rel=1e-12)
    print(f"\nvertices per circle: end {n_end}, tip start {n_start}; deficit / estimate: "
          + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()))


def test_sphere_cavity_surfaces_are_where_they_say(sphere_bundle):
    """outer facets lie on the sphere (the cavity is not part of 'outer'); tip facets lie on
    the wall over the last tip_length_m or on the end cap; shaft facets on the rest."""
    b, cav = sphere_bundle, SPHERE_CAV
    X = facet_vertices(b, 1).reshape(-1, 3)
    assert np.allclose(np.linalg.norm(X, axis=1), SPHERE.radius_m, rtol=1e-9)
    L, r, tip = cav.length_m, cav.radius_m, cav.tip_length_m
    for tag, lo, hi in ((100, L - tip, L), (101, 0.0, L - tip)):
        X = facet_vertices(b, tag)
        t, rho = axial_radial(X, cav)
        assert np.all((t > lo - 1e-9) & (t < hi + 1e-9))
        on_wall = np.all(np.abs(rho - r) < 1e-9, axis=1)
        on_cap = np.all(np.abs(t - L) < 1e-9, axis=1)
        assert np.all(on_wall | on_cap)
        assert np.any(on_cap) == (tag == 100)
        # wall resolution: edge lengths ~ radius_m
        e = np.linalg.norm(X[:, [0, 1, 2]] - X[:, [1, 2, 0]], axis=2)
        assert e.mean() < 1.3 * r and e.max() < 2.0 * r, (tag, e.mean() / r, e.max() / r)
    assert_no_inverted_cells(b)


# --------------------------------------------------------------------------- box + tumour


@pytest.fixture(scope="module")
def box_bundle():
    t0 = time.perf_counter()
    b = build_mesh(BOX_TUMOUR, MPI.COMM_SELF, use_cache=False, cavities=[BOX_CAV])
    print(f"\nbox + tumour + applicator: built in {time.perf_counter() - t0:.2f} s, {b.num_cells_global()} cells")
    return b


def test_box_tumour_cavity_regions(box_bundle):
    b, cav = box_bundle, BOX_CAV
    assert b.regions == {"bone": 1, "tumour": 2}
    assert set(b.surfaces) == set(BOX_TUMOUR.surface_names()) | {"lt", "lt_tip", "lt_shaft"}
    vol = region_volumes(b)
    total = total_volume(b)
    # every cell is in a region
    assert vol["bone"] + vol["tumour"] == pytest.approx(total, rel=EXACT)
    r = cav.radius_m
    n = min(vertices_on_circle(b, cav, cav.length_m), vertices_on_circle(b, cav, cav.length_m - cav.tip_length_m))
    cavity = math.pi * r * r * cav.end_m[2]  # from z = 0 (the zmin face) to the end
    assert_deficit(BOX_TUMOUR.volume_m3() - total, cavity, polygon_deficit(n) * cavity, "cavity volume")
    # tumour = ball minus the part of the cavity in it (centre c, through the centre)
    R, c = 0.006, 0.015
    s0 = math.sqrt(R * R - r * r)
    lens = 2 * math.pi / 3 * (R**3 - (R * R - r * r) ** 1.5) - math.pi * r * r * s0
    in_tumour = math.pi * r * r * (cav.end_m[2] - c + s0) + lens
    err = vol["tumour"] - (4 / 3 * math.pi * R**3 - in_tumour)
    h = min(BOX_TUMOUR.mesh_size_m, R / MIN_CELLS_PER_RADIUS)
    assert -SAFETY * sphere_volume_deficit(h, R) <= err <= SAFETY * polygon_deficit(n) * in_tumour


def test_box_tumour_cavity_surfaces(box_bundle):
    b, cav = box_bundle, BOX_CAV
    areas = surface_areas(b)
    L = 0.03
    for s in ("xmin", "xmax", "ymin", "ymax", "zmax"):
        assert areas[s] == pytest.approx(L * L, rel=EXACT), s
    # zmin has the hole: a polygon inscribed in the circle of radius r
    n_hole = vertices_on_circle(b, cav, float(-cav.entry_m[2]))  # t of the plane z = 0
    r = cav.radius_m
    hole = math.pi * r * r * (1 - polygon_deficit(n_hole))
    assert areas["zmin"] == pytest.approx(L * L - hole, rel=1e-9)
    assert areas["outer"] == pytest.approx(5 * L * L + areas["zmin"], rel=EXACT)
    n = vertices_on_circle(b, cav, cav.length_m)
    cap = math.pi * r * r * (1 - polygon_deficit(n))
    wall = 2 * math.pi * r * cav.tip_length_m
    assert_deficit(areas["lt_tip"] - cap, wall, wall_deficit(min(n, n_hole)) * wall, "tip wall")
    shaft = 2 * math.pi * r * (cav.end_m[2] - cav.tip_length_m)
    assert_deficit(areas["lt_shaft"], shaft, wall_deficit(min(n, n_hole)) * shaft, "shaft")


def test_tip_faces_border_the_tumour(box_bundle):
    b = box_bundle
    mesh = b.mesh
    f2c = mesh.topology.connectivity(2, 3)
    vals = owned_cell_values(b)

    def cell_regions(tag):
        facets = b.facet_tags.find(tag)
        assert len(facets) > 0
        cells = [f2c.links(f) for f in facets]
        assert all(len(c) == 1 for c in cells), "cavity facets are exterior facets"
        return vals[np.array([c[0] for c in cells])]

    tip = cell_regions(b.surfaces["lt_tip"][0])
    assert np.all(tip == b.regions["tumour"])
    shaft = cell_regions(b.surfaces["lt_shaft"][0])
    # the shaft runs through bone, then the tumour
    assert set(np.unique(shaft)) == {b.regions["bone"], b.regions["tumour"]}
    assert_no_inverted_cells(b)


# --------------------------------------------------------------------------- cache


def test_cache_hit_and_key(tmp_path, monkeypatch):
    cache = tmp_path / "c"
    first = build_mesh(SPHERE, MPI.COMM_SELF, cache_dir=cache, cavities=[SPHERE_CAV])
    assert not first.from_cache
    assert first.cache_path == cache_file(cache, SPHERE, [SPHERE_CAV])
    assert first.cache_path != cache_file(cache, SPHERE)  # without the cavity

    def no_meshing(*args, **kwargs):
        raise AssertionError("gmsh meshing was invoked on a cache hit")

    monkeypatch.setattr(gmsh.model.mesh, "generate", no_meshing)
    # an equal cavity built anew (lists, ints) hits the same file
    same = CatheterCavity("applicator1", [0, 0, -0.03], [0, 0, 0.005], R_CATH, 0.01)
    second = build_mesh(SPHERE, MPI.COMM_SELF, cache_dir=cache, cavities=(same,))
    assert second.from_cache and second.cache_path == first.cache_path
    assert second.surfaces == first.surfaces and second.regions == first.regions
    assert surface_areas(second) == pytest.approx(surface_areas(first), rel=1e-14)
    assert region_volumes(second) == pytest.approx(region_volumes(first), rel=1e-14)

    for other in (
        CatheterCavity("applicator1", (0.0, 0.0, -0.03), (0.0, 0.0, 0.005), R_CATH, 0.008),
        CatheterCavity("applicator1", (0.0, 0.0, -0.03), (0.0, 0.0, 0.004), R_CATH, 0.01),
        CatheterCavity("applicator2", (0.0, 0.0, -0.03), (0.0, 0.0, 0.005), R_CATH, 0.01),
    ):
        assert cache_file(cache, SPHERE, [other]) != first.cache_path, other


# --------------------------------------------------------------------------- bad inputs


def test_tip_outside_the_domain():
    cav = CatheterCavity("applicator1", (0.0, 0.0, -0.03), (0.0, 0.0, 0.025), R_CATH, 0.01)
    with pytest.raises(ValueError, match=r"applicator\[0\] 'applicator1': end_m = \[0\.0, 0\.0, 0\.025\] lies outside"):
        build_mesh(SPHERE, MPI.COMM_SELF, use_cache=False, cavities=[cav])


def test_crossing_cavities():
    a = CatheterCavity("a1", (0.0, 0.0, -0.03), (0.0, 0.0, 0.005), R_CATH, 0.01)
    b = CatheterCavity("a2", (-0.03, 0.0, 0.0), (0.005, 0.0, 0.0), R_CATH, 0.01)
    with pytest.raises(ValueError, match=r"applicator\[0\] 'a1' and applicator\[1\] 'a2' intersect"):
        build_mesh(SPHERE, MPI.COMM_SELF, use_cache=False, cavities=[a, b])
    # parallel, 1 mm apart: radii 0.825 + 0.825 mm > 1 mm -> still intersecting
    c = CatheterCavity("a2", (0.001, 0.0, -0.03), (0.001, 0.0, 0.0), R_CATH, 0.01)
    with pytest.raises(ValueError, match=r"intersect: their axes come within 0\.001 m"):
        build_mesh(SPHERE, MPI.COMM_SELF, use_cache=False, cavities=[a, c])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"radius_m": 0.0}, r"applicator\[0\] 'applicator1': radius_m = 0\.0 must be > 0"),
        ({"tip_length_m": -0.001}, r"tip_length_m = -0\.001 must be > 0"),
        # 0.025 m of the catheter are inside the sphere (z from -0.02 to 0.005)
        ({"tip_length_m": 0.03}, r"tip_length_m = 0\.03 must be shorter .* 0\.025 m"),
        ({"end_m": (0.0, 0.0, 0.01999)}, r"end cap .* sticks out"),  # rim at 20.007 mm
        ({"name": "outer"}, r"surface name\(s\) \['outer'\] already in use"),
    ],
)
def test_bad_cavity_values(kwargs, message):
    base = dict(name="applicator1", entry_m=(0.0, 0.0, -0.03), end_m=(0.0, 0.0, 0.005), radius_m=R_CATH, tip_length_m=0.01)
    cav = CatheterCavity(**{**base, **kwargs})
    with pytest.raises(ValueError, match=message):
        build_mesh(SPHERE, MPI.COMM_SELF, use_cache=False, cavities=[cav])


def test_file_geometry_has_no_cavities(tmp_path):
    with pytest.raises(ValueError, match=r"applicator cavities need a primitive geometry"):
        build_mesh(FileGeometry(kind="file", path="m.msh"), MPI.COMM_SELF, case_dir=tmp_path, cavities=[SPHERE_CAV])


def test_two_cavities():
    """Two parallel catheters 6 mm apart: both sets of surfaces, tags 100..103."""
    a = CatheterCavity("a1", (-0.003, 0.0, -0.03), (-0.003, 0.0, 0.005), R_CATH, 0.01)
    b = CatheterCavity("a2", (0.003, 0.0, -0.03), (0.003, 0.0, 0.0), R_CATH, 0.008)
    bundle = build_mesh(SPHERE, MPI.COMM_SELF, use_cache=False, cavities=[a, b])
    assert bundle.surfaces == {
        "outer": [1],
        "a1_tip": [100], "a1_shaft": [101], "a1": [100, 101],
        "a2_tip": [102], "a2_shaft": [103], "a2": [102, 103],
    }
    areas = surface_areas(bundle)
    for cav in (a, b):
        wall = 2 * math.pi * cav.radius_m * cav.tip_length_m + math.pi * cav.radius_m**2
        assert areas[f"{cav.name}_tip"] == pytest.approx(wall, rel=0.08)


# --------------------------------------------------------------------------- MPI


@pytest.mark.mpi
def test_cavity_parallel_matches_serial(shared_tmp):
    """Distributed over COMM_WORLD, the global measures equal those of the same mesh (the cache
    file rank 0 wrote) read serially on each rank; both pass the analytic checks."""
    comm = MPI.COMM_WORLD
    cache = shared_tmp / "cache"
    par = build_mesh(SPHERE, comm, cache_dir=cache, cavities=[SPHERE_CAV])
    assert not par.from_cache
    assert comm.allgather(str(par.cache_path)) == [str(par.cache_path)] * comm.size
    a_par, v_par = surface_areas(par), region_volumes(par)

    ser = build_mesh(SPHERE, MPI.COMM_SELF, cache_dir=cache, cavities=[SPHERE_CAV])
    assert ser.from_cache and ser.num_cells_global() == par.num_cells_global()
    a_ser, v_ser = surface_areas(ser), region_volumes(ser)
    assert a_par == pytest.approx(a_ser, rel=1e-12)
    assert v_par == pytest.approx(v_ser, rel=1e-12)
    n = min(vertices_on_circle(ser, SPHERE_CAV, SPHERE_CAV.length_m),
            vertices_on_circle(ser, SPHERE_CAV, SPHERE_CAV.length_m - SPHERE_CAV.tip_length_m))
    check_sphere_measures(a_par, v_par, n)
    assert par.surfaces == ser.surfaces and comm.allgather(par.surfaces) == [par.surfaces] * comm.size
