"""Meshes for the bioheat solver: gmsh primitives (cached) and mesh files.

    import solver.compat  # before dolfinx (loads dolfinx_solver where installed)
    from meshes import build_mesh, region_volumes, surface_areas

    bundle = build_mesh(case.geometry, MPI.COMM_WORLD, case_dir=Path(case.case_dir))
    dx, ds = bundle.dx(), bundle.ds()
    dx(bundle.regions["tumour"]), ds(tuple(bundle.surfaces["outer"]))

    # with an applicator cavity: surfaces applicator1_tip, applicator1_shaft, applicator1
    cav = CatheterCavity("applicator1", entry_m=..., end_m=..., radius_m=8.25e-4, tip_length_m=0.01)
    bundle = build_mesh(case.geometry, MPI.COMM_WORLD, cavities=[cav])

    # one thoracic vertebra (geometry.kind == "spine"): meshes/spine.py, spine_dimensions.py
    entry, end = transpedicular_track(case.geometry, side="left")
"""

from .bundle import MeshBundle, region_volumes, surface_areas
from .cavities import CAVITY_TAG_BASE, CatheterCavity, cavity_surface_tags, validate_cavities
from .cache import CACHE_ENV, MESH_BUILDER_VERSION, cache_file, cache_key, default_cache_dir
from .loading import build_mesh, load_file, resolve_path
from .primitives import MIN_CELLS_PER_RADIUS, SURFACE_ALIASES, SURFACE_TAGS, primitive_tags
from .spine import build_spine_mesh, spine_mesh_statistics
from .spine_dimensions import check_track, transpedicular_track, validate_spine

__all__ = [
    "CAVITY_TAG_BASE",
    "CatheterCavity",
    "CACHE_ENV",
    "MESH_BUILDER_VERSION",
    "MIN_CELLS_PER_RADIUS",
    "SURFACE_ALIASES",
    "SURFACE_TAGS",
    "MeshBundle",
    "build_mesh",
    "build_spine_mesh",
    "check_track",
    "cache_file",
    "cache_key",
    "cavity_surface_tags",
    "default_cache_dir",
    "load_file",
    "primitive_tags",
    "region_volumes",
    "resolve_path",
    "spine_mesh_statistics",
    "surface_areas",
    "transpedicular_track",
    "validate_cavities",
    "validate_spine",
]
