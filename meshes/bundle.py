"""The mesh bundle handed to the solver, and global region/surface measures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from solver import compat  # noqa: F401  - dolfinx_solver (PyPI wheel) before the DOLFINx bindings

import numpy as np
import ufl
from mpi4py import MPI

import dolfinx
from dolfinx import fem


@dataclass
class MeshBundle:
    """A distributed mesh with named volume regions and boundary surfaces.

    ``regions`` maps a region name to its value in ``cell_tags``; ``surfaces`` maps a
    surface name to the list of ``facet_tags`` values it covers (an alias such as the
    box's ``outer`` covers several; a facet in two groups of a mesh file carries a tag
    that both names list). Interfaces between regions are tagged only when a mesh file names
    them; those surfaces are listed in ``interior_surfaces`` (integrate them with dS).
    """

    mesh: dolfinx.mesh.Mesh
    cell_tags: dolfinx.mesh.MeshTags
    facet_tags: dolfinx.mesh.MeshTags
    regions: dict[str, int]
    surfaces: dict[str, list[int]]
    source: str
    cache_path: Path | None = None  # the .msh file behind a primitive (None for files / no cache)
    from_cache: bool = False  # True when a primitive was read from the cache (no gmsh meshing)
    interior_surfaces: set[str] = field(default_factory=set)  # surfaces with facets between two cells

    @property
    def comm(self) -> MPI.Comm:
        return self.mesh.comm

    def num_cells_global(self) -> int:
        imap = self.mesh.topology.index_map(self.mesh.topology.dim)
        return int(imap.size_global)

    def dx(self) -> ufl.Measure:
        """Cell measure with ``subdomain_data=cell_tags``: ``bundle.dx()(bundle.regions[name])``."""
        return ufl.Measure("dx", domain=self.mesh, subdomain_data=self.cell_tags)

    def ds(self) -> ufl.Measure:
        """Exterior facet measure with ``subdomain_data=facet_tags``.

        ``bundle.ds()(tuple(bundle.surfaces[name]))`` integrates over a (possibly aliased) surface.
        """
        return ufl.Measure("ds", domain=self.mesh, subdomain_data=self.facet_tags)


def empty_meshtags(mesh: dolfinx.mesh.Mesh, dim: int) -> dolfinx.mesh.MeshTags:
    return dolfinx.mesh.meshtags(mesh, dim, np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int32))


def _global_measure(mesh: dolfinx.mesh.Mesh, measure: ufl.Measure) -> float:
    one = fem.Constant(mesh, dolfinx.default_scalar_type(1.0))
    local = fem.assemble_scalar(fem.form(one * measure))
    return float(mesh.comm.allreduce(float(np.real(local)), op=MPI.SUM))


def region_volumes(bundle: MeshBundle) -> dict[str, float]:
    """Global volume (m^3) of every region. Collective."""
    dx = bundle.dx()
    return {name: _global_measure(bundle.mesh, dx(tag)) for name, tag in bundle.regions.items()}


def surface_areas(bundle: MeshBundle) -> dict[str, float]:
    """Global area (m^2) of every named surface (aliases included), over exterior facets. Collective."""
    ds = bundle.ds()
    out = {}
    for name, tags in bundle.surfaces.items():
        out[name] = _global_measure(bundle.mesh, ds(tuple(int(t) for t in tags))) if tags else 0.0
    return out
