"""The one place for DOLFINx/PETSc import order and version differences.

The PyPI wheel ``dolfinx-solver-real`` must be imported before dolfinx/petsc4py (it loads
its MPI and refuses a foreign petsc4py). DOLFINx from conda-forge, Docker or Spack has no
such module, which is fine.
"""

from __future__ import annotations

try:  # PyPI wheel route
    import dolfinx_solver  # noqa: F401
except ImportError:  # conda-forge / Docker / Spack route
    dolfinx_solver = None

import dolfinx  # noqa: E402
from petsc4py import PETSc  # noqa: E402

DOLFINX_VERSION = dolfinx.__version__
PETSC_VERSION = ".".join(str(v) for v in PETSc.Sys.getVersion())

_major_minor = tuple(int(p) for p in DOLFINX_VERSION.split(".")[:2])
if _major_minor < (0, 10):
    raise ImportError(
        f"spine-litt needs DOLFINx >= 0.10 (found {DOLFINX_VERSION}); see README for install routes"
    )


def coordinate_map(mesh):
    """(coordinate element, geometry dofmap) of a single-cell-type mesh.

    DOLFINx 0.10 has ``geometry.cmap``/``geometry.dofmap``; 0.11 deprecates them for the
    mixed-topology lists ``cmaps[0]``/``dofmaps[0]``.
    """
    geom = mesh.geometry
    if hasattr(geom, "cmaps"):
        return geom.cmaps[0], geom.dofmaps[0]
    return geom.cmap, geom.dofmap
