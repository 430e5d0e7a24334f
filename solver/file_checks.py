"""Checks of a ``kind = "file"`` case against the mesh file's physical groups, done when the
case file is loaded (``bioheat validate`` and before ``bioheat run`` builds anything).

The file is read once on rank 0 with gmsh (or meshio), without building the FEM mesh; the
result is broadcast so every rank raises the same error.
"""

from __future__ import annotations

from pathlib import Path

from . import case_checks as cc
from .config import NeumannBC, RobinBC, UniformSource


def file_problems(case) -> tuple[list[str], list[str]]:
    """(refusals, warnings) of a validated file-geometry case. Collective over COMM_WORLD."""
    # Import on every rank before any rank-0-only work: importing DOLFINx initialises PETSc,
    # which is collective (and the PyPI wheel must come before mpi4py).
    from . import compat  # noqa: F401
    import meshes.file_groups  # noqa: F401
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    payload = None
    if comm.rank == 0:
        try:
            payload = _problems(case)
        except Exception as err:  # noqa: BLE001 - forwarded to every rank as a refusal
            payload = ([f"geometry.path = '{case.geometry.path}': {err}"], [])
    return comm.bcast(payload, root=0)


def _problems(case) -> tuple[list[str], list[str]]:
    from meshes.file_groups import read_file_groups  # gmsh: only for mesh-file cases

    geom = case.geometry
    errors: list[str] = []
    warnings: list[str] = []
    try:
        groups = read_file_groups(geom, Path(case.case_dir))
    except ValueError as err:
        return [str(err)], []
    regions, surfaces = list(groups.regions), list(groups.surfaces)
    where = f"the mesh file {geom.path}"
    for region in case.regions:
        if region not in groups.regions:
            errors.append(
                f"regions.{region}: {where} has no region '{region}'{cc.did_you_mean(region, regions)}; "
                f"its regions (physical volume groups) are {regions}"
            )
    for region in regions:
        if region not in case.regions:
            errors.append(f"regions: region '{region}' of {where} has no tissue; add regions.{region} = '<tissue>'")
    for i, src in enumerate(case.source):
        if isinstance(src, UniformSource) and src.region not in groups.regions:
            errors.append(
                f"source[{i}].region = '{src.region}': {where} has no such region"
                f"{cc.did_you_mean(src.region, regions)}; it has {regions}"
            )
    for i, bc in enumerate(case.boundary):
        for s in bc.surfaces():
            if s not in groups.surfaces:
                errors.append(
                    f"boundary[{i}].surface = '{s}': {where} has no such surface{cc.did_you_mean(s, surfaces)}; "
                    f"its surfaces (physical surface groups) are {surfaces}"
                )
            elif s in groups.interior_surfaces and isinstance(bc, RobinBC):
                errors.append(
                    f"boundary[{i}].surface = '{s}': a robin condition on a surface between two regions "
                    "(interior facets) has no outside to exchange heat with; use it on the outer boundary, "
                    "or a neumann heat flux (deposited on the surface)"
                )
    errors += cc.boundary_overlaps(cc.boundary_tables(case), groups.surface_entities)
    scale = geom.length_scale_m
    cc.check_extent(
        f"geometry.path = '{geom.path}' (bounding box {[round(c, 6) for c in groups.lower]} to "
        f"{[round(c, 6) for c in groups.upper]} file units, x length_scale_m = {scale:g})",
        groups.extent * scale, errors, warnings, scale_key="length_scale_m",
    )
    lo = [c * scale for c in groups.lower]
    hi = [c * scale for c in groups.upper]
    pts = [(f"probe[{i}].position_m", p.name, p.position_m) for i, p in enumerate(case.probe)]
    pts += [(f"monitor[{i}].position_m", m.name, m.position_m) for i, m in enumerate(case.monitor)]
    for i, src in enumerate(case.source):
        if src.type == "point":
            pts.append((f"source[{i}].position_m", "", src.position_m))
    for key, name, p in pts:
        if not all(lo[k] - 1e-12 <= p[k] <= hi[k] + 1e-12 for k in range(3)):
            label = f" ('{name}')" if name else ""
            errors.append(
                f"{key} = {list(p)}{label} lies outside the mesh's bounding box "
                f"{[round(c, 6) for c in lo]} to {[round(c, 6) for c in hi]} m"
            )
    for i, bc in enumerate(case.boundary):
        if isinstance(bc, NeumannBC) and any(s in groups.interior_surfaces for s in bc.surfaces()):
            warnings.append(
                f"boundary[{i}]: the heat flux on {bc.surfaces()} is applied on interior facets (between two "
                "regions) as a surface source: heat_flux_W_per_m2 x area enters once"
            )
    return errors, warnings
