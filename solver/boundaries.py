"""The case's boundary conditions against the mesh: names checked before any assembly, and
the report of what was applied (areas, heat-flux powers). No solver state."""

from __future__ import annotations

from . import compat  # noqa: F401  (import order)
import numpy as np
from dolfinx import fem
from mpi4py import MPI
from petsc4py import PETSc

from .case_checks import boundary_overlaps, boundary_tables, coolant_boundaries  # noqa: F401  (re-exported)
from .config import CaseError, DirichletBC, NeumannBC, RobinBC, UniformSource


def check_mesh_names(case, bundle) -> None:
    """CaseError unless the case's regions, boundary surfaces and sources match the mesh's names."""
    regions, surfaces = bundle.regions, bundle.surfaces
    problems = []
    for region in case.regions:
        if region not in regions:
            problems.append(
                f"regions.{region}: the mesh has no region '{region}'; it has {sorted(regions)}"
            )
    for region in regions:
        if region not in case.regions:
            problems.append(
                f"regions: mesh region '{region}' has no tissue; add regions.{region} = '<tissue>'"
            )
    tables = boundary_tables(case)
    interior = getattr(bundle, "interior_surfaces", set())
    for label, bc in tables:
        for s in bc.surfaces():
            if s not in surfaces:
                problems.append(
                    f"{label}.surface = '{s}': the mesh has no such surface; it has {sorted(surfaces)}"
                )
            elif s in interior and isinstance(bc, RobinBC):
                problems.append(
                    f"{label}.surface = '{s}': a robin condition on a surface between two regions "
                    "(interior facets) has no outside to exchange heat with; use a neumann heat flux"
                )
    if not problems:
        problems = boundary_overlaps(tables, surfaces)
    if problems:
        raise CaseError("\n".join(problems))
    for i, src in enumerate(case.source):
        if isinstance(src, UniformSource) and src.region not in regions:
            raise CaseError(f"source[{i}].region = '{src.region}': no such region in the mesh")


def boundary_report(problem) -> list[dict]:
    """Per boundary condition: label, type, surfaces, area (m2, exterior plus interior
    facets) and for a heat flux the power it puts in (W). Collective."""
    one = fem.Constant(problem.mesh, PETSc.ScalarType(1.0))
    out = []
    for label, bc in boundary_tables(problem.case):
        form = one * problem.surface_measure(bc.surfaces())
        inner = problem.interface_measure(bc.surfaces())
        if inner is not None:
            form += one("+") * inner
        area = problem.comm.allreduce(float(fem.assemble_scalar(fem.form(form))), op=MPI.SUM)
        entry = {"table": label, "type": bc.type, "surfaces": bc.surfaces(), "area_m2": area,
                 "interior": inner is not None}
        if isinstance(bc, NeumannBC):
            entry["power_W"] = bc.heat_flux_W_per_m2 * area
        out.append(entry)
    return out


def split_boundaries(boundaries: list) -> tuple[list[RobinBC], list[NeumannBC], list[DirichletBC]]:
    """The boundary tables by type: (robin, neumann, dirichlet), each in the case's order."""
    return ([bc for bc in boundaries if isinstance(bc, RobinBC)], [bc for bc in boundaries if isinstance(bc, NeumannBC)],
            [bc for bc in boundaries if isinstance(bc, DirichletBC)])


def dirichlet_conditions(V, bundle, dirichlet: list[DirichletBC]) -> tuple[list, list]:
    """(DOLFINx Dirichlet conditions, their value functions filled with temperature_C (C)), one
    per table. Collective (creates the facet-to-cell connectivity)."""
    mesh = V.mesh
    fdim = mesh.topology.dim - 1
    mesh.topology.create_connectivity(fdim, mesh.topology.dim)
    bcs, values = [], []
    for bc in dirichlet:
        tags = [t for s in bc.surfaces() for t in bundle.surfaces[s]]
        facets = np.unique(np.concatenate([bundle.facet_tags.find(t) for t in tags]).astype(np.int32))
        g = fem.Function(V)
        g.x.array[:] = bc.temperature_C
        values.append(g)
        bcs.append(fem.dirichletbc(g, fem.locate_dofs_topological(V, fdim, facets)))
    return bcs, values


def surface_measure(ds, bundle, names: list[str]):
    """Exterior-facet measure ``ds`` restricted to the named surfaces."""
    return ds(tuple(sorted({t for s in names for t in bundle.surfaces[s]})))


def interface_measure(dS, bundle, names: list[str]):
    """Interior-facet measure ``dS`` over the named surfaces' facets between two cells, or None."""
    names = [s for s in names if s in getattr(bundle, "interior_surfaces", set())]
    return dS(tuple(sorted({t for s in names for t in bundle.surfaces[s]}))) if names else None
