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

Importing this package imports none of its submodules: each name below is loaded from its
submodule on first use (PEP 562), so the pure-Python parts (``meshes.spine_dimensions``,
``meshes.cavities``) serve the case validator without gmsh, PETSc or DOLFINx.
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> submodule that defines it (loaded on first attribute access)
_LAZY_EXPORTS = {
    "MeshBundle": "bundle",
    "region_volumes": "bundle",
    "surface_areas": "bundle",
    "CAVITY_TAG_BASE": "cavities",
    "CatheterCavity": "cavities",
    "cavity_surface_tags": "cavities",
    "validate_cavities": "cavities",
    "CACHE_ENV": "cache",
    "MESH_BUILDER_VERSION": "cache",
    "cache_file": "cache",
    "cache_key": "cache",
    "default_cache_dir": "cache",
    "build_mesh": "loading",
    "load_file": "loading",
    "resolve_path": "file_groups",
    "MIN_CELLS_PER_RADIUS": "primitives",
    "SURFACE_ALIASES": "primitives",
    "SURFACE_TAGS": "primitives",
    "primitive_tags": "primitives",
    "build_spine_mesh": "spine",
    "spine_mesh_statistics": "spine",
    "check_track": "spine_dimensions",
    "transpedicular_track": "spine_dimensions",
    "validate_spine": "spine_dimensions",
}

__all__ = sorted(_LAZY_EXPORTS)


def __getattr__(name: str) -> Any:
    sub = _LAZY_EXPORTS.get(name)
    if sub is None:
        raise AttributeError(f"module 'meshes' has no attribute '{name}'")
    value = getattr(importlib.import_module(f"{__name__}.{sub}"), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY_EXPORTS))
