"""Tests of meshes/: gmsh primitives, cache, mesh files, region volumes and surface areas.

Volume / area tolerances for curved boundaries
----------------------------------------------
gmsh puts the vertices of a curved boundary *on* the surface, so each boundary triangle of
edge ~a is a chord facet. Locally the surface is z = (k1 x^2 + k2 y^2)/2 above the facet plane,
and the mean gap between surface and linear interpolant over an equilateral triangle of edge
a is a^2 (k1 + k2)/16 = a^2 H/8 (H = mean curvature; the triangle's second moment about its
centroid is a^2/12 per direction, its vertices sit at squared distance a^2/3). Hence the
volume *deficit* of the meshed body is

    dV ~= (a^2/8) * integral(H dA)        (a convex body: always a deficit, dV > 0)

  sphere R:        integral(H dA) = 4 pi R      ->  dV/V = (3/8) (a/R)^2
  cylinder side R: integral(H dA) = pi L        ->  dV/V = (1/8) (a/R)^2
  ellipsoid:       integral(H dA) by quadrature (``total_mean_curvature``)

Areas: radial projection of a chord facet onto a sphere gives dA/A = (5/24)(a/R)^2; a disc
bounded by chords is an inscribed polygon, dA/A = (1/6)(a/R)^2; along a cylinder's side only
the circumferential extent (<= a) of a facet is curved, dA/A <= (1/24)(a/R)^2.

We take a = h, the mesh size gmsh aims at on that surface (mesh_size_m, or the smaller size
meshes.MIN_CELLS_PER_RADIUS imposes on small curved inclusions), and accept 0 < deficit <= 2 x
the estimate. The factor 2 covers the spread of gmsh edge lengths about the target size
(mean-square edge length up to ~2 h^2); in practice the measured deficits are 0.74-0.99 x the
estimate for the meshes below (e.g. the sphere with h/R = 0.15: estimate 0.84 %, measured
0.82 %). A wrong region (e.g. a missing fragment) or a badly resolved surface fails these
bounds by a wide margin.
Flat faces are exact: box volumes and areas are checked to 1e-12 relative.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import solver.compat  # noqa: F401  - before dolfinx / petsc4py

import gmsh
import meshio
import numpy as np
import pytest
from mpi4py import MPI

from meshes import (
    MIN_CELLS_PER_RADIUS,
    build_mesh,
    cache_file,
    default_cache_dir,
    region_volumes,
    surface_areas,
)
from meshes.cache import arrays_file as cache_arrays_file
from meshes.cache import partition_file as cache_partition_file
from solver.config import (
    BoxGeometry,
    CylinderGeometry,
    FileGeometry,
    ShellGeometry,
    SphereGeometry,
)

COMM = MPI.COMM_SELF
EXACT = 1e-12
SAFETY = 2.0


# --------------------------------------------------------------------------- helpers


pytestmark = pytest.mark.mpi  # every mesh test also runs under mpiexec -n 2


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    """Never touch the user's cache: the default cache dir is a per-test directory."""
    monkeypatch.setenv("SPINE_LITT_MESH_CACHE", str(tmp_path / "mesh-cache"))


def total_mean_curvature(a: float, b: float, c: float, n: int = 400) -> float:
    """integral of the mean curvature H over the ellipsoid x^2/a^2 + y^2/b^2 + z^2/c^2 = 1
    (midpoint rule in (theta, phi); error ~1e-6 relative for n = 400)."""
    th = (np.arange(n) + 0.5) * math.pi / n
    ph = (np.arange(2 * n) + 0.5) * math.pi / n
    T, P = np.meshgrid(th, ph, indexing="ij")
    x, y, z = a * np.sin(T) * np.cos(P), b * np.sin(T) * np.sin(P), c * np.cos(T)
    H = np.abs(x**2 + y**2 + z**2 - a**2 - b**2 - c**2) / (
        2 * (a * b * c) ** 2 * (x**2 / a**4 + y**2 / b**4 + z**2 / c**4) ** 1.5
    )
    dA = np.sin(T) * np.sqrt(
        (b * c * np.sin(T) * np.cos(P)) ** 2 + (a * c * np.sin(T) * np.sin(P)) ** 2 + (a * b * np.cos(T)) ** 2
    )
    return float(np.sum(H * dA) * (math.pi / n) ** 2)


def sphere_volume_deficit(h: float, R: float) -> float:
    return h**2 / 8 * 4 * math.pi * R  # = (3/8)(h/R)^2 * V


def sphere_area_deficit(h: float, R: float) -> float:
    return 5 / 24 * (h / R) ** 2 * 4 * math.pi * R**2


def curved_size(h: float, r_min: float) -> float:
    """The size gmsh is asked for on a curved inclusion / cavity of smallest radius r_min."""
    return min(h, r_min / MIN_CELLS_PER_RADIUS)


def assert_deficit(measured: float, exact: float, estimate: float, what: str) -> None:
    deficit = exact - measured
    assert 0.0 < deficit <= SAFETY * estimate, (
        f"{what}: mesh {measured:.6e}, exact {exact:.6e}, deficit {deficit:.3e} "
        f"({deficit / estimate:.2f} x the estimate {estimate:.3e}; allowed (0, {SAFETY}])"
    )


def cell_vertex_coords(bundle) -> np.ndarray:
    """(num_local_cells, 4, 3) vertex coordinates of the owned cells."""
    mesh = bundle.mesh
    n = mesh.topology.index_map(3).size_local
    return mesh.geometry.x[mesh.geometry.dofmaps[0][:n]]


def assert_no_inverted_cells(bundle) -> None:
    X = cell_vertex_coords(bundle)
    J = np.stack([X[:, 1] - X[:, 0], X[:, 2] - X[:, 0], X[:, 3] - X[:, 0]], axis=-1)
    det = np.linalg.det(J)
    scale = np.max(np.linalg.norm(J, axis=1), axis=1) ** 3
    assert np.all(np.abs(det) > 1e-10 * scale), "degenerate cells"
    assert np.all(det > 0) or np.all(det < 0), "cells of both orientations (inverted cells)"


def cell_diameters_and_centroids(bundle) -> tuple[np.ndarray, np.ndarray]:
    X = cell_vertex_coords(bundle)
    pairs = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    edges = np.stack([np.linalg.norm(X[:, i] - X[:, j], axis=1) for i, j in pairs], axis=1)
    return edges.max(axis=1), X.mean(axis=1)


def count_tets_in_msh(path: Path) -> int:
    gmsh.initialize(readConfigFiles=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.merge(str(path))
        types, tags, _ = gmsh.model.mesh.getElements(3)
        return sum(len(t) for t in tags)
    finally:
        gmsh.finalize()


# --------------------------------------------------------------------------- geometries

BOX = BoxGeometry(kind="box", lower_m=(0.0, -0.01, 0.0), upper_m=(0.03, 0.01, 0.012), mesh_size_m=0.004)

BOX_TUMOUR = BoxGeometry(
    kind="box",
    lower_m=(0.0, 0.0, 0.0),
    upper_m=(0.03, 0.03, 0.03),
    mesh_size_m=0.004,
    region="bone",
    inclusion=[{"name": "tumour", "shape": "sphere", "center_m": (0.015, 0.015, 0.015), "radius_m": 0.006}],
)

SPHERE = SphereGeometry(kind="sphere", radius_m=0.02, center_m=(0.01, 0.0, -0.01), mesh_size_m=0.003)

SHELL = ShellGeometry(kind="shell", outer_radius_m=0.02, inner_radius_m=0.005, mesh_size_m=0.003)

CYLINDER = CylinderGeometry(
    kind="cylinder",
    radius_m=0.01,
    length_m=0.03,
    center_m=(0.0, 0.0, 0.01),
    axis=(1.0, 1.0, 0.0),
    mesh_size_m=0.0025,
)

SPHERE_ELLIPSOID = SphereGeometry(
    kind="sphere",
    radius_m=0.015,
    mesh_size_m=0.003,
    inclusion=[
        {"name": "lesion", "shape": "ellipsoid", "center_m": (0.002, 0.0, 0.0), "semi_axes_m": (0.008, 0.006, 0.004)}
    ],
)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Each geometry meshed once per module (cache in a module temp dir)."""
    cache = tmp_path_factory.mktemp("module-cache")
    out = {}

    def get(name, geom):
        if name not in out:
            out[name] = build_mesh(geom, COMM, cache_dir=cache)
        return out[name]

    return get


# --------------------------------------------------------------------------- primitives


def test_box_names_volume_areas(built):
    b = built("box", BOX)
    assert b.regions == {"body": 1}
    assert set(b.surfaces) == set(BOX.surface_names())
    assert sorted(b.surfaces["outer"]) == sorted(b.surfaces[s][0] for s in ("xmin", "xmax", "ymin", "ymax", "zmin", "zmax"))
    assert all(len(b.surfaces[s]) == 1 for s in ("xmin", "xmax", "ymin", "ymax", "zmin", "zmax"))
    vol = region_volumes(b)
    assert vol["body"] == pytest.approx(BOX.volume_m3(), rel=EXACT)
    lx, ly, lz = (BOX.upper_m[i] - BOX.lower_m[i] for i in range(3))
    areas = surface_areas(b)
    expected = {"xmin": ly * lz, "xmax": ly * lz, "ymin": lx * lz, "ymax": lx * lz, "zmin": lx * ly, "zmax": lx * ly}
    expected["outer"] = sum(expected.values())
    for name, a in expected.items():
        assert areas[name] == pytest.approx(a, rel=EXACT), name
    assert_no_inverted_cells(b)


def test_box_surfaces_are_where_they_say(built):
    """Facets tagged xmin lie on x = lower_x, etc."""
    b = built("box", BOX)
    mesh = b.mesh
    from dolfinx.mesh import compute_midpoints

    for i, axis in enumerate("xyz"):
        for side, bound in (("min", BOX.lower_m[i]), ("max", BOX.upper_m[i])):
            (tag,) = b.surfaces[f"{axis}{side}"]
            facets = b.facet_tags.find(tag)
            assert len(facets) > 0
            mid = compute_midpoints(mesh, 2, facets)
            assert np.allclose(mid[:, i], bound, atol=1e-12)


def test_box_with_sphere_inclusion(built):
    b = built("box_tumour", BOX_TUMOUR)
    assert b.regions == {"bone": 1, "tumour": 2}
    vol = region_volumes(b)
    # Conforming fragments: the regions tile the box exactly.
    assert vol["bone"] + vol["tumour"] == pytest.approx(BOX_TUMOUR.volume_m3(), rel=EXACT)
    R = 0.006
    h = curved_size(BOX_TUMOUR.mesh_size_m, R)
    assert_deficit(vol["tumour"], 4 / 3 * math.pi * R**3, sphere_volume_deficit(h, R), "tumour volume")
    # The interface is internal: the boundary is just the box.
    areas = surface_areas(b)
    assert areas["outer"] == pytest.approx(6 * 0.03**2, rel=EXACT)
    # Tumour cells are inside the sphere (centroids within R), bone cells outside R - h.
    _, cen = cell_diameters_and_centroids(b)
    n = b.mesh.topology.index_map(3).size_local
    vals = np.zeros(n, dtype=np.int32)
    vals[b.cell_tags.indices[b.cell_tags.indices < n]] = b.cell_tags.values[b.cell_tags.indices < n]
    r = np.linalg.norm(cen - np.array([0.015, 0.015, 0.015]), axis=1)
    assert np.all(vals > 0), "every cell has a region"
    assert np.all(r[vals == 2] < R) and np.all(r[vals == 1] > R - h)
    assert_no_inverted_cells(b)


def test_sphere(built):
    b = built("sphere", SPHERE)
    assert b.regions == {"body": 1} and b.surfaces == {"outer": [1]}
    R, h = SPHERE.radius_m, SPHERE.mesh_size_m
    assert_deficit(region_volumes(b)["body"], SPHERE.volume_m3(), sphere_volume_deficit(h, R), "sphere volume")
    assert_deficit(surface_areas(b)["outer"], 4 * math.pi * R**2, sphere_area_deficit(h, R), "sphere area")
    # vertices of the outer surface lie on the sphere
    from dolfinx.mesh import entities_to_geometry

    facets = b.facet_tags.find(1)
    x = b.mesh.geometry.x[entities_to_geometry(b.mesh, 2, facets)].reshape(-1, 3)
    assert np.allclose(np.linalg.norm(x - np.array(SPHERE.center_m), axis=1), R, rtol=1e-9)
    assert_no_inverted_cells(b)


def test_shell(built):
    b = built("shell", SHELL)
    assert b.regions == {"body": 1}
    assert set(b.surfaces) == {"outer", "inner"} == set(SHELL.surface_names())
    Ro, Ri, h = SHELL.outer_radius_m, SHELL.inner_radius_m, SHELL.mesh_size_m
    hi = curved_size(h, Ri)
    err = region_volumes(b)["body"] - SHELL.volume_m3()
    # body = outer polytope (deficit dVo) minus cavity polytope (deficit dVi): err = dVi - dVo
    est_o, est_i = sphere_volume_deficit(h, Ro), sphere_volume_deficit(hi, Ri)
    assert -SAFETY * est_o <= err <= SAFETY * est_i, (err, est_o, est_i)
    areas = surface_areas(b)
    assert_deficit(areas["outer"], 4 * math.pi * Ro**2, sphere_area_deficit(h, Ro), "shell outer area")
    assert_deficit(areas["inner"], 4 * math.pi * Ri**2, sphere_area_deficit(hi, Ri), "shell inner area")
    assert_no_inverted_cells(b)


def test_cylinder(built):
    b = built("cylinder", CYLINDER)
    assert b.regions == {"body": 1}
    assert set(b.surfaces) == set(CYLINDER.surface_names())
    assert sorted(b.surfaces["outer"]) == sorted(b.surfaces["side"] + b.surfaces["top"] + b.surfaces["bottom"])
    R, L, h = CYLINDER.radius_m, CYLINDER.length_m, CYLINDER.mesh_size_m
    assert_deficit(region_volumes(b)["body"], CYLINDER.volume_m3(), h**2 / 8 * math.pi * L, "cylinder volume")
    areas = surface_areas(b)
    disc = math.pi * R**2
    for end in ("top", "bottom"):
        assert_deficit(areas[end], disc, (h / R) ** 2 / 6 * disc, f"cylinder {end} area")
    side = 2 * math.pi * R * L
    assert_deficit(areas["side"], side, (h / R) ** 2 / 24 * side, "cylinder side area")
    assert areas["outer"] == pytest.approx(areas["side"] + areas["top"] + areas["bottom"], rel=1e-12)
    # bottom is at center - axis*L/2
    from dolfinx.mesh import compute_midpoints

    axis = np.array(CYLINDER.axis)
    for name, sign in (("bottom", -1.0), ("top", 1.0)):
        mid = compute_midpoints(b.mesh, 2, b.facet_tags.find(b.surfaces[name][0]))
        along = (mid - np.array(CYLINDER.center_m)) @ axis
        assert np.allclose(along, sign * L / 2, atol=1e-9)
    assert_no_inverted_cells(b)


def test_ellipsoid_inclusion(built):
    b = built("sphere_ellipsoid", SPHERE_ELLIPSOID)
    assert b.regions == {"body": 1, "lesion": 2}
    assert b.surfaces == {"outer": [1]}
    a = (0.008, 0.006, 0.004)
    h_inc = curved_size(SPHERE_ELLIPSOID.mesh_size_m, min(a))
    vol = region_volumes(b)
    est = h_inc**2 / 8 * total_mean_curvature(*a)
    assert_deficit(vol["lesion"], 4 / 3 * math.pi * math.prod(a), est, "ellipsoid volume")
    R, h = SPHERE_ELLIPSOID.radius_m, SPHERE_ELLIPSOID.mesh_size_m
    assert_deficit(vol["body"] + vol["lesion"], 4 / 3 * math.pi * R**3, sphere_volume_deficit(h, R), "sphere total")
    assert_no_inverted_cells(b)


def test_total_mean_curvature_quadrature():
    assert total_mean_curvature(0.3, 0.3, 0.3) == pytest.approx(4 * math.pi * 0.3, rel=1e-5)


def test_overlapping_inclusions_go_to_the_later_one():
    geom = BoxGeometry(
        kind="box",
        lower_m=(0.0, 0.0, 0.0),
        upper_m=(0.02, 0.02, 0.02),
        mesh_size_m=0.004,
        inclusion=[
            {"name": "a", "shape": "box", "center_m": (0.006, 0.01, 0.01), "size_m": (0.01, 0.01, 0.01)},
            # overlaps 'a' for x in [0.008, 0.011]
            {"name": "b", "shape": "box", "center_m": (0.013, 0.01, 0.01), "size_m": (0.01, 0.01, 0.01)},
        ],
    )
    b = build_mesh(geom, COMM)
    assert b.regions == {"body": 1, "a": 2, "b": 3}
    vol = region_volumes(b)
    assert vol["a"] == pytest.approx(0.007 * 0.01 * 0.01, rel=EXACT)
    assert vol["b"] == pytest.approx(0.01 * 0.01 * 0.01, rel=EXACT)
    assert sum(vol.values()) == pytest.approx(geom.volume_m3(), rel=EXACT)
    assert_no_inverted_cells(b)


def test_inclusion_sticking_out_is_clipped_to_the_body():
    """A sphere inclusion whose centre is inside but which crosses the xmax face."""
    geom = BoxGeometry(
        kind="box",
        lower_m=(0.0, 0.0, 0.0),
        upper_m=(0.02, 0.02, 0.02),
        mesh_size_m=0.003,
        inclusion=[{"name": "t", "shape": "sphere", "center_m": (0.017, 0.01, 0.01), "radius_m": 0.005}],
    )
    b = build_mesh(geom, COMM)
    vol = region_volumes(b)
    assert sum(vol.values()) == pytest.approx(geom.volume_m3(), rel=EXACT)
    areas = surface_areas(b)
    assert areas["xmax"] == pytest.approx(0.02**2, rel=EXACT)
    assert areas["outer"] == pytest.approx(6 * 0.02**2, rel=EXACT)
    # clipped ball: sphere minus the cap beyond x = 0.02 (cap height 0.002)
    R, hc = 0.005, 0.002
    exact = 4 / 3 * math.pi * R**3 - math.pi * hc**2 * (3 * R - hc) / 3
    h = curved_size(geom.mesh_size_m, R)
    assert_deficit(vol["t"], exact, sphere_volume_deficit(h, R), "clipped sphere")
    assert_no_inverted_cells(b)


# --------------------------------------------------------------------------- refinement


def _near_far(bundle, distance_fn, near: float, far: float) -> tuple[float, float]:
    diam, cen = cell_diameters_and_centroids(bundle)
    d = distance_fn(cen)
    assert np.count_nonzero(d < near) > 0 and np.count_nonzero(d > far) > 0
    return float(diam[d < near].mean()), float(diam[d > far].mean())


def test_point_refinement_makes_cells_smaller_near_the_point():
    p = np.array([0.012, 0.02, 0.02])
    geom = BoxGeometry(
        kind="box",
        lower_m=(0.0, 0.0, 0.0),
        upper_m=(0.04, 0.04, 0.04),
        mesh_size_m=0.008,
        refinement=[{"point_m": tuple(p), "size_m": 0.001, "distance_m": 0.01}],
    )
    b = build_mesh(geom, COMM)
    near, far = _near_far(b, lambda c: np.linalg.norm(c - p, axis=1), 0.002, 0.015)
    # near: cells of size ~1 mm (diameter = longest edge); far: ~8 mm
    assert near < 2.5 * 0.001, near
    assert far > 0.5 * 0.008, far
    assert near < far / 3
    coarse = build_mesh(geom.model_copy(update={"refinement": []}), COMM)
    assert b.num_cells_global() > 1.5 * coarse.num_cells_global()
    assert region_volumes(b)["body"] == pytest.approx(geom.volume_m3(), rel=EXACT)
    assert_no_inverted_cells(b)


def test_segment_refinement_makes_cells_smaller_near_the_segment():
    a, e = np.array([0.0, 0.0, -0.008]), np.array([0.0, 0.004, 0.008])
    geom = CylinderGeometry(
        kind="cylinder",
        radius_m=0.015,
        length_m=0.03,
        mesh_size_m=0.006,
        refinement=[{"segment_start_m": tuple(a), "segment_end_m": tuple(e), "size_m": 0.0008, "distance_m": 0.006}],
    )
    b = build_mesh(geom, COMM)

    def dist(c):
        d = e - a
        t = np.clip((c - a) @ d / (d @ d), 0.0, 1.0)
        return np.linalg.norm(c - a - t[:, None] * d, axis=1)

    near, far = _near_far(b, dist, 0.0015, 0.01)
    assert near < 2.5 * 0.0008, near
    assert near < far / 3, (near, far)
    assert_no_inverted_cells(b)


# --------------------------------------------------------------------------- cache


def test_cache_hit_reads_the_file_and_does_not_mesh(tmp_path, monkeypatch):
    cache = tmp_path / "c"
    t0 = time.perf_counter()
    first = build_mesh(BOX_TUMOUR, COMM, cache_dir=cache)
    t_build = time.perf_counter() - t0
    assert not first.from_cache
    assert first.cache_path == cache_file(cache, BOX_TUMOUR) and first.cache_path.is_file()
    assert "built and cached" in first.source and str(first.cache_path) in first.source
    # issue 10: the content hash is stored beside the cached mesh
    # issue 12: and the same mesh as arrays for DOLFINx (read without gmsh), with its own hash
    arrays = cache_arrays_file(first.cache_path).name
    assert arrays == first.cache_path.stem + ".arrays.npz"
    expected = [first.cache_path.name, arrays]
    if COMM.size > 1:  # and the cell partition the graph partitioner chose on this many ranks
        expected.append(cache_partition_file(first.cache_path, COMM.size).name)
    if COMM.rank == 0:
        assert sorted(p.name for p in cache.iterdir()) == sorted(expected + [e + ".sha256" for e in expected]), (
            "no temporary files left"
        )

    def no_meshing(*args, **kwargs):
        raise AssertionError("gmsh meshing was invoked on a cache hit")

    monkeypatch.setattr(gmsh.model.mesh, "generate", no_meshing)
    t0 = time.perf_counter()
    second = build_mesh(BOX_TUMOUR, COMM, cache_dir=cache)
    t_hit = time.perf_counter() - t0
    assert second.from_cache and second.source == f"gmsh box, cached at {first.cache_path}"
    assert second.num_cells_global() == first.num_cells_global() == count_tets_in_msh(first.cache_path)
    assert second.regions == first.regions and second.surfaces == first.surfaces
    v1, v2 = region_volumes(first), region_volumes(second)
    assert v1 == pytest.approx(v2, rel=1e-14)
    assert surface_areas(first) == pytest.approx(surface_areas(second), rel=1e-14)
    print(f"\nbox+tumour: build {t_build:.3f} s, cache hit {t_hit:.3f} s")


def test_cache_key_depends_on_geometry(tmp_path):
    other = BOX.model_copy(update={"mesh_size_m": 0.005})
    assert cache_file(tmp_path, BOX) != cache_file(tmp_path, other)
    assert cache_file(tmp_path, BOX) == cache_file(tmp_path, BoxGeometry.model_validate(BOX.model_dump()))
    assert cache_file(tmp_path, BOX).name.startswith("box-")


def test_default_cache_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SPINE_LITT_MESH_CACHE", str(tmp_path / "x"))
    assert default_cache_dir() == tmp_path / "x"
    monkeypatch.delenv("SPINE_LITT_MESH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "spine-litt" / "meshes"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "spine-litt" / "meshes"


def test_default_cache_dir_is_used(tmp_path):
    b = build_mesh(BOX, COMM)  # the autouse fixture points the env var at tmp_path/mesh-cache
    assert b.cache_path is not None and b.cache_path.parent == tmp_path / "mesh-cache"


def test_no_cache(tmp_path):
    b = build_mesh(BOX, COMM, cache_dir=tmp_path / "never", use_cache=False)
    assert b.cache_path is None and not (tmp_path / "never").exists()
    assert "not cached" in b.source


def test_corrupt_cache_entry_is_rebuilt(tmp_path):
    path = cache_file(tmp_path, BOX)
    path.write_text("not a mesh\n")
    b = build_mesh(BOX, COMM, cache_dir=tmp_path)
    assert not b.from_cache
    assert region_volumes(b)["body"] == pytest.approx(BOX.volume_m3(), rel=EXACT)
    assert build_mesh(BOX, COMM, cache_dir=tmp_path).from_cache


def test_caller_gmsh_session_is_left_alone(tmp_path):
    gmsh.initialize(readConfigFiles=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("mine")
        gmsh.option.setNumber("Mesh.MeshSizeMax", 123.0)
        build_mesh(BOX, COMM, cache_dir=tmp_path)
        assert gmsh.isInitialized()
        assert gmsh.model.getCurrent() == "mine"
        assert gmsh.option.getNumber("Mesh.MeshSizeMax") == 123.0
    finally:
        gmsh.finalize()


# --------------------------------------------------------------------------- files


def _vols_by_tag(bundle) -> dict[int, float]:
    return {tag: v for (name, tag), v in zip(bundle.regions.items(), region_volumes(bundle).values())}


def test_msh_file_gives_the_same_regions(built, tmp_path):
    b = built("box_tumour", BOX_TUMOUR)
    f = build_mesh(FileGeometry(kind="file", path=str(b.cache_path)), COMM)
    assert f.regions == b.regions
    assert set(f.surfaces) == set(BOX_TUMOUR.surface_names()) - {"outer"}  # aliases are not in files
    assert region_volumes(f) == pytest.approx(region_volumes(b), rel=EXACT)
    assert f.num_cells_global() == b.num_cells_global()
    assert f.source == f"file {b.cache_path}"


@pytest.mark.parametrize("ext", ["vtu", "vtk"])
def test_meshio_file_gives_the_same_region_volumes(built, tmp_path, ext):
    b = built("box_tumour", BOX_TUMOUR)
    m = meshio.read(b.cache_path)
    meshio.write(tmp_path / f"mesh.{ext}", m)
    f = build_mesh(FileGeometry(kind="file", path=f"mesh.{ext}"), COMM, case_dir=tmp_path)
    # VTK formats keep the region numbers ('gmsh:physical') but not the names: regions are
    # named by their number then.
    assert _vols_by_tag(f) == pytest.approx(_vols_by_tag(b), rel=EXACT)
    assert sorted(f.regions.values()) == [1, 2]
    by_tag_b = {t[0]: a for n, t in b.surfaces.items() if len(t) == 1 for a in [surface_areas(b)[n]]}
    by_tag_f = {t[0]: a for n, t in f.surfaces.items() for a in [surface_areas(f)[n]]}
    assert by_tag_f == pytest.approx(by_tag_b, rel=EXACT)
    assert f.num_cells_global() == b.num_cells_global()
    assert_no_inverted_cells(f)


def test_meshio_names_and_length_scale(built, tmp_path):
    """A file in millimetres with physical names in field_data (gmsh 2.2 via meshio)."""
    b = built("box_tumour", BOX_TUMOUR)
    m = meshio.read(b.cache_path)
    m.points = m.points * 1000.0
    meshio.write(tmp_path / "mm.msh", m, file_format="gmsh22", binary=False)
    f = build_mesh(FileGeometry(kind="file", path="mm.msh", length_scale_m=1e-3), COMM, case_dir=tmp_path)
    assert f.regions == b.regions
    assert region_volumes(f) == pytest.approx(region_volumes(b), rel=1e-12)
    assert "scaled by 0.001" in f.source
    # same through the meshio (non-.msh) path
    meshio.write(tmp_path / "mm.vtu", m)
    g = build_mesh(FileGeometry(kind="file", path="mm.vtu", length_scale_m=1e-3), COMM, case_dir=tmp_path)
    assert _vols_by_tag(g) == pytest.approx(_vols_by_tag(b), rel=1e-12)


def test_missing_file_names_the_key(tmp_path):
    with pytest.raises(ValueError, match=r"geometry\.path = 'nope/mesh\.msh'.*not found"):
        build_mesh(FileGeometry(kind="file", path="nope/mesh.msh"), COMM, case_dir=tmp_path)


def test_file_without_tetrahedra(tmp_path):
    pts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=float)
    meshio.write(tmp_path / "tri.vtu", meshio.Mesh(pts, [("triangle", np.array([[0, 1, 2]]))]))
    with pytest.raises(ValueError, match=r"geometry\.path = 'tri\.vtu'.*no tetrahedra"):
        build_mesh(FileGeometry(kind="file", path="tri.vtu"), COMM, case_dir=tmp_path)


def test_file_without_physical_volumes(tmp_path):
    pts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=float)
    meshio.write(tmp_path / "tet.vtu", meshio.Mesh(pts, [("tetra", np.array([[0, 1, 2, 3]]))]))
    with pytest.raises(ValueError, match=r"geometry\.path = 'tet\.vtu'.*no physical volume groups"):
        build_mesh(FileGeometry(kind="file", path="tet.vtu"), COMM, case_dir=tmp_path)
    # a gmsh .msh without physical groups
    gmsh.initialize(readConfigFiles=False)
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.occ.addBox(0, 0, 0, 1, 1, 1)
        gmsh.model.occ.synchronize()
        gmsh.option.setNumber("Mesh.MeshSizeMax", 0.5)
        gmsh.model.mesh.generate(3)
        gmsh.write(str(tmp_path / "plain.msh"))
    finally:
        gmsh.finalize()
    with pytest.raises(ValueError, match=r"geometry\.path = 'plain\.msh'.*no physical volume groups"):
        build_mesh(FileGeometry(kind="file", path="plain.msh"), COMM, case_dir=tmp_path)


def test_unreadable_file(tmp_path):
    (tmp_path / "junk.vtu").write_text("this is not xml")
    with pytest.raises(ValueError, match=r"geometry\.path = 'junk\.vtu'"):
        build_mesh(FileGeometry(kind="file", path="junk.vtu"), COMM, case_dir=tmp_path)
