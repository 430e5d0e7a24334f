"""Damage-driven tissue changes during a transient run (case key [coagulation]).

Every step the Arrhenius damage Omega integrated at every node by solver.dose (exact for the
linear-in-time temperature of the step) sets d = Omega / (ln 2 + Omega), which moves

- perfusion from native W0 to coagulated W1. Done cheaply: with coagulation on, the
  perfusion term is *lumped* (diagonal) - W_i = integral (W0 + d_i (W1 - W0)) phi_i dx -
  so a change of perfusion updates the operator's diagonal (one vector operation) instead of
  re-assembling it. Lumping keeps the method's O(h^2) accuracy.
- optical properties (cell-wise, from the cell-mean d) from native to coagulated values; the
  light is re-solved only when d changed by more than ``optical_refresh_tolerance`` in some
  cell since the last solve.
- optionally conductivity k(T) (Rylander 2005), which needs the stiffness re-assembled every
  step (about 40x the cost of a step without it, see the README).
"""

from __future__ import annotations


import numpy as np

from . import compat  # noqa: F401  (import order)
import dolfinx.fem.petsc
import ufl
from dolfinx import fem
from mpi4py import MPI
from petsc4py import PETSc

from .damage import damage_fraction
from .optics import OpticalProperties

KELVIN = 273.15


def rylander_conductivity_factor(T_C) -> np.ndarray:
    """k(T) / k(37 C) with k(u) = 0.6489 + 0.0427 atan(0.02529 (u - 315.314)), u in K."""
    def k(u):
        return 0.6489 + 0.0427 * np.arctan(0.02529 * (u - 315.314))

    return k(np.asarray(T_C, dtype=float) + KELVIN) / k(37.0 + KELVIN)


class CoagulationModel:
    def __init__(self, problem):
        self.p = problem
        case = problem.case
        self.cfg = case.coagulation
        V = problem.V
        Q0 = problem.Q0
        tissues = problem.tissues
        # coagulated perfusion per region (DG0)
        W1 = fem.Function(Q0)
        for region, tag in problem.bundle.regions.items():
            dofs = Q0.dofmap.list[problem.bundle.cell_tags.find(tag)].reshape(-1)
            W1.x.array[dofs] = tissues[region].perfusion_coagulated_W_per_m3K
        W1.x.scatter_forward()
        fields = {"W1": W1}
        # lumped perfusion vectors, assembled once
        v = ufl.TestFunction(V)
        W0, Ta = problem.props["W"], problem.props["T_a"]
        dx = problem.dx

        def vec(expr):
            b = dolfinx.fem.petsc.assemble_vector(fem.form(expr * v * dx))
            b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
            return b

        self.w0, self.w1 = vec(W0), vec(fields["W1"])
        self.wta0, self.wta1 = vec(W0 * Ta), vec(fields["W1"] * Ta)
        bc_rows = np.concatenate([bc.dof_indices()[0][: bc.dof_indices()[1]] for bc in problem.bcs]) if problem.bcs else np.zeros(0, np.int32)
        self.bc_rows = bc_rows[bc_rows < V.dofmap.index_map.size_local]
        for w in (self.w0, self.w1):
            w.array[self.bc_rows] = 0.0  # Dirichlet rows keep their unit diagonal
        self.n_owned = V.dofmap.index_map.size_local
        self.d = np.zeros_like(problem.T.x.array)
        self.w = self.w0.duplicate()
        self.tmp = self.w0.duplicate()
        self._base_operators()
        self.apply()
        # optics
        self.d_cells_at_light = None
        self.d_fn = fem.Function(V)
        self.d_cells = fem.Function(Q0)
        self.light_refreshes = 0
        if problem.laser is not None:
            self.native = {r: OpticalProperties(t.absorption_per_m, t.reduced_scattering_per_m) for r, t in tissues.items()}
            self.coag = {
                r: OpticalProperties(
                    t.absorption_coagulated_per_m or t.absorption_per_m * self.cfg.absorption_factor,
                    t.reduced_scattering_coagulated_per_m
                    if t.reduced_scattering_coagulated_per_m is not None
                    else t.reduced_scattering_per_m * self.cfg.scattering_factor,
                )
                for r, t in tissues.items()
            }
            self.optics_change = any(self.native[r] != self.coag[r] for r in tissues)
        else:
            self.optics_change = False
        if self.cfg.temperature_dependent_conductivity:
            self.k0 = problem.props["k"].x.array.copy()
            self.T_cells = fem.Function(Q0)

    # ------------------------------------------------------------------ operators
    def _base_operators(self) -> None:
        """Diagonals and constant vector of the operator without perfusion."""
        p = self.p
        self.diagA = p.A.getDiagonal()
        self.diagB = p.B.getDiagonal() if (p.B is not None and p.theta < 1.0) else None
        self.c0 = p.c.copy()

    def apply(self) -> None:
        """Put the current (lumped) perfusion into A, B and c: O(N) vector work."""
        p, th = self.p, self.p.theta
        d = self.d[: self.n_owned]
        # w = w0 + d (w1 - w0)
        self.w.array[:] = self.w0.array + d * (self.w1.array - self.w0.array)
        self.tmp.array[:] = self.diagA.array + th * self.w.array
        p.A.setDiagonal(self.tmp, addv=PETSc.InsertMode.INSERT_VALUES)
        if self.diagB is not None:
            self.tmp.array[:] = self.diagB.array - (1.0 - th) * self.w.array
            p.B.setDiagonal(self.tmp, addv=PETSc.InsertMode.INSERT_VALUES)
        p.c.array[:] = self.c0.array + self.wta0.array + d * (self.wta1.array - self.wta0.array)
        p.ksp.setOperators(p.A)  # refreshes the (Jacobi) preconditioner: a diagonal copy

    # ------------------------------------------------------------------ per step
    def after_step(self) -> None:
        """Move the properties with the damage the dose tracker has just integrated."""
        self.update_operators()
        if self.optics_change:
            self._maybe_refresh_light()

    def update_operators(self) -> None:
        """Perfusion (and k(T)) of the current Omega and T in the operators. Also used to
        rebuild them from a checkpoint's Omega and T (solver.checkpoint)."""
        self.d[:] = damage_fraction(self.p.dose.omega.x.array)
        if self.cfg.temperature_dependent_conductivity:
            self._update_conductivity()
        self.apply()

    def _update_conductivity(self) -> None:
        p = self.p
        self.T_cells.interpolate(p.T)
        p.props["k"].x.array[:] = self.k0 * rylander_conductivity_factor(self.T_cells.x.array)
        p.A.zeroEntries()
        dolfinx.fem.petsc.assemble_matrix(p.A, p.a_form, bcs=p.bcs)
        p.A.assemble()
        if p.B is not None:
            p.B.zeroEntries()
            dolfinx.fem.petsc.assemble_matrix(p.B, p.b_form)
            p.B.assemble()
        p._update_lift()
        self._base_operators_keep_c()

    def _base_operators_keep_c(self) -> None:
        p = self.p
        self.diagA = p.A.getDiagonal()
        self.diagB = p.B.getDiagonal() if (p.B is not None and p.theta < 1.0) else None

    def _maybe_refresh_light(self) -> None:
        p = self.p
        self.d_fn.x.array[:] = self.d
        self.d_cells.interpolate(self.d_fn)  # cell-midpoint value = mean of the P1 vertex values
        dc = self.d_cells.x.array
        if self.d_cells_at_light is None:
            self.d_cells_at_light = np.zeros_like(dc)
        change = float(np.max(np.abs(dc - self.d_cells_at_light))) if dc.size else 0.0
        change = p.comm.allreduce(change, op=MPI.MAX)
        if change <= self.cfg.optical_refresh_tolerance:
            return
        self.refresh_light(dc)

    def refresh_light(self, dc: np.ndarray) -> None:
        """Re-solve the light with optical properties moved by the cell-wise damage fraction
        ``dc`` (DG0 array, local cells with ghosts). Collective. Deterministic, so a resumed
        run rebuilds the light of its checkpoint from ``d_cells_at_light`` alone."""
        p = self.p
        mu_a = np.empty_like(dc)
        mus = np.empty_like(dc)
        Q0 = p.Q0
        for region, tag in p.bundle.regions.items():
            dofs = Q0.dofmap.list[p.bundle.cell_tags.find(tag)].reshape(-1)
            n0, n1 = self.native[region], self.coag[region]
            mu_a[dofs] = n0.absorption_per_m + dc[dofs] * (n1.absorption_per_m - n0.absorption_per_m)
            mus[dofs] = n0.reduced_scattering_per_m + dc[dofs] * (
                n1.reduced_scattering_per_m - n0.reduced_scattering_per_m
            )
        p.laser.refresh_cellwise(mu_a, mus)
        for load, em in zip(p.laser_loads, p.laser.emitters):
            load.vector = em.load
        self.d_cells_at_light = dc.copy()
        self.light_refreshes += 1

    # ------------------------------------------------------------------ output
    def summary(self) -> dict:
        p = self.p
        n = self.n_owned
        om = self.p.dose.omega.x.array
        om_max = p.comm.allreduce(float(om[:n].max()) if n else 0.0, op=MPI.MAX)
        return {
            "arrhenius_set": self.cfg.arrhenius_set,
            "max_omega": om_max,
            "light_refreshes": self.light_refreshes,
            "temperature_dependent_conductivity": self.cfg.temperature_dependent_conductivity,
        }
