"""Small FEM helpers shared by the solver's modules (in the spirit of scifem): region-wise DG0
functions, assembled-and-scattered load vectors, one Krylov-solver factory and the smallest
cell size. Collective where stated.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from . import compat  # noqa: F401  (import order)
import dolfinx.fem.petsc
from dolfinx import fem
from mpi4py import MPI
from petsc4py import PETSc

from meshes.quality import min_cell_size  # noqa: F401  (the one definition; solver modules import it from here)


def region_dofs(Q0: fem.FunctionSpace, cell_tags, regions: Mapping[str, int]) -> dict[str, np.ndarray]:
    """Local DG0 dofs (with ghosts) of every named region: {name: dof indices}. ``regions``
    maps a region name to its cell tag (MeshBundle.regions)."""
    return {name: Q0.dofmap.list[cell_tags.find(tag)].reshape(-1) for name, tag in regions.items()}


def region_function(
    Q0: fem.FunctionSpace,
    cell_tags,
    regions: Mapping[str, int],
    value: Mapping[str, float] | Callable[[str], float],
    *,
    name: str | None = None,
    fill: float = 0.0,
) -> fem.Function:
    """A DG0 function with one value per region: ``value[region]`` (or ``value(region)``);
    cells of no listed region hold ``fill``. Ghosts are updated from their owners."""
    f = fem.Function(Q0, name=name) if name else fem.Function(Q0)
    f.x.array[:] = fill
    get = value if callable(value) else value.__getitem__
    for region, dofs in region_dofs(Q0, cell_tags, regions).items():
        f.x.array[dofs] = get(region)
    f.x.scatter_forward()
    return f


def untagged_cells(mesh, cell_tags, tags) -> int:
    """Number of owned cells (over all ranks) that carry none of ``tags``. Collective."""
    tdim = mesh.topology.dim
    imap = mesh.topology.index_map(tdim)
    assigned = np.zeros(imap.size_local + imap.num_ghosts, dtype=bool)
    for tag in tags:
        assigned[cell_tags.find(tag)] = True
    return mesh.comm.allreduce(int(np.count_nonzero(~assigned[: imap.size_local])), op=MPI.SUM)


def assemble_vector(form, out: PETSc.Vec | None = None) -> PETSc.Vec:
    """Assemble a linear form (a compiled ``fem.form`` or a UFL form) and add the ghost
    contributions to their owners: the owned entries are complete. With ``out``, it is zeroed
    and assembled into. Collective."""
    if not isinstance(form, fem.Form):
        form = fem.form(form)
    if out is None:
        out = dolfinx.fem.petsc.assemble_vector(form)
    else:
        with out.localForm() as loc:
            loc.set(0.0)
        dolfinx.fem.petsc.assemble_vector(out, form)
    out.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
    return out


def cell_pattern_cells(form: fem.Form) -> np.ndarray | None:
    """Which local cells (bool per cell, ghosts included) the bilinear ``form`` integrates
    over, when its sparsity is made of cell couplings only: one space for test and trial, only
    cell and exterior-facet integrals (an exterior facet couples only the dofs of its cell), and
    cell integrals covering every owned cell. None otherwise. Two such forms on the same space
    with the same cells have the same sparsity pattern. Not collective."""
    spaces = form.function_spaces
    if form.rank != 2 or spaces[0] is not spaces[1]:
        return None
    types = set(form.integral_types)
    if not types <= {fem.IntegralType.cell, fem.IntegralType.exterior_facet} or fem.IntegralType.cell not in types:
        return None
    cpp = form._cpp_object  # the integration domains are not exposed by the Python Form (DOLFINx 0.11)
    imap = form.mesh.topology.index_map(form.mesh.topology.dim)
    cells = np.zeros(imap.size_local + imap.num_ghosts, dtype=bool)
    for i in range(form.num_integrals(fem.IntegralType.cell, 0)):
        cells[np.asarray(cpp.domains(fem.IntegralType.cell, i))] = True
    return cells if cells[: imap.size_local].all() else None


def assemble_operator(form: fem.Form, bcs=(), like: tuple[PETSc.Mat, fem.Form] | None = None) -> PETSc.Mat:
    """``dolfinx.fem.petsc.assemble_matrix(form, bcs)``, assembled. With ``like = (A0, form0)``
    where ``form0`` and ``form`` are on the same space and made of cell couplings over the same
    cells (``cell_pattern_cells``), the matrix starts as a copy of A0's sparsity pattern
    (MatDuplicate without values) instead of a pattern built again from the mesh (0.2-0.4 s at
    150k dofs): the same matrix, entry for entry. Otherwise, or when ranks disagree, the
    pattern is built. Collective."""
    reuse = False
    if like is not None and like[1].function_spaces[0] is form.function_spaces[0]:
        mine, theirs = cell_pattern_cells(form), cell_pattern_cells(like[1])
        reuse = mine is not None and theirs is not None and np.array_equal(mine, theirs)
    if form.mesh.comm.allreduce(bool(reuse), op=MPI.LAND):
        A = like[0].duplicate(copy=False)
        A.zeroEntries()
        dolfinx.fem.petsc.assemble_matrix(A, form, bcs=list(bcs))
    else:
        A = dolfinx.fem.petsc.assemble_matrix(form, bcs=list(bcs))
    A.assemble()
    return A


def create_ksp(
    comm: MPI.Comm,
    A: PETSc.Mat,
    *,
    prefix: str,
    ksp_type: str = "cg",
    pc_type: str = "jacobi",
    rtol: float = 1e-10,
    atol: float = 1e-50,
    max_it: int = 10000,
    warm_start: bool = False,
    from_options: bool = True,
) -> PETSc.KSP:
    """A Krylov solver for ``A``, configured on the object (the global PETSc options database is
    never written).

    ``pc_type = "lu"`` is a direct MUMPS solve (KSP preonly); ``icc``/``ilu`` on more than one
    rank become block Jacobi with that factorisation per rank. ``prefix`` (e.g. ``"bioheat_"``)
    names the solver's role, so users may still tune every solver of that role with
    ``-<prefix>ksp_...`` options (read when ``from_options``). ``warm_start`` starts from the
    solution vector's content (nonzero initial guess). Destroy it with ``ksp.destroy()``.
    """
    ksp = PETSc.KSP().create(comm)
    ksp.setOptionsPrefix(prefix)
    ksp.setOperators(A)
    if pc_type == "lu":
        ksp_type = "preonly"
    sub_pc = None
    if pc_type in ("icc", "ilu") and comm.size > 1:
        sub_pc, pc_type = pc_type, "bjacobi"  # incomplete factorisations are per-rank blocks
    ksp.setType(ksp_type)
    pc = ksp.getPC()
    pc.setType(pc_type)
    if pc_type == "lu":
        pc.setFactorSolverType("mumps")
    ksp.setTolerances(rtol=rtol, atol=atol, max_it=max_it)
    if from_options:
        ksp.setFromOptions()
    if sub_pc is not None:
        # the blocks' preconditioner set directly rather than through the options database
        ksp.setUp()
        for sub in pc.getBJacobiSubKSP():
            sub.getPC().setType(sub_pc)
    if warm_start and ksp_type != "preonly":
        ksp.setInitialGuessNonzero(True)
    return ksp
