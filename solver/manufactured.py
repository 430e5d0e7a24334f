"""Manufactured solutions for verification ([manufactured] solution = ...): the right-hand
side that makes a closed-form u(x, t) exact for the discrete problem's PDE and boundary
conditions, its Dirichlet data, initial field and the L2 error (solver.analytic lists them)."""

from __future__ import annotations

import math

from . import compat  # noqa: F401  (import order)
import ufl
from dolfinx import fem
from mpi4py import MPI
from petsc4py import PETSc

from .analytic import MANUFACTURED
from .bioheat import BioheatProblem
from .fem import assemble_vector


class ManufacturedSolution:
    """Hooks a manufactured solution into ``heat``: its rhs_term (the theta-weighted residual
    of u) and its Dirichlet data. Collective."""

    def __init__(self, heat: BioheatProblem):
        self.heat = heat
        self.solution = MANUFACTURED[heat.case.manufactured.solution]
        self.mesh = heat.mesh
        self.t_new = fem.Constant(self.mesh, PETSc.ScalarType(0.0))
        self.t_old = fem.Constant(self.mesh, PETSc.ScalarType(0.0))
        if heat.steady:
            self.form = fem.form(self._rhs(self.t_new))
        else:
            th = heat.theta
            self.form = fem.form(th * self._rhs(self.t_new) + (1.0 - th) * self._rhs(self.t_old))
        self.vec = assemble_vector(self.form)
        heat.rhs_term = self.rhs
        heat.dirichlet_update = self.set_dirichlet

    def _rhs(self, t):
        """The PDE's residual of u in the volume, and on every non-Dirichlet surface the
        mismatch between the exact flux and what the case's boundary condition prescribes."""
        heat, v = self.heat, ufl.TestFunction(self.heat.V)
        x, n = ufl.SpatialCoordinate(self.mesh), ufl.FacetNormal(self.mesh)
        k, rho_c, W = heat.props["k"], heat.props["rho_c"], heat.props["W"]
        T_a, Q_met = heat.props["T_a"], heat.props["Q_met"]
        u = self.solution.u(x, t, ufl)
        f = -ufl.div(k * ufl.grad(u)) + W * (u - T_a) - Q_met
        if not heat.steady:
            f += rho_c * self.solution.du_dt(x, t, ufl)
        form = f * v * heat.dx
        flux = k * ufl.dot(ufl.grad(u), n)
        surfaces = heat.bundle.surfaces

        def tags(bc):
            return {t for s in bc.surfaces() for t in surfaces[s]}

        dirichlet_tags = {t for bc in heat.dirichlet for t in tags(bc)}
        robin_tags, neumann_tags = set(), set()
        for bc in heat.robin:
            h, Tamb = bc.heat_transfer_coefficient_W_per_m2K, bc.ambient_temperature_C
            ts = tags(bc) - dirichlet_tags
            robin_tags |= ts
            if ts:
                form += (flux + h * (u - Tamb)) * v * heat.ds(tuple(sorted(ts)))
        for bc in heat.neumann:
            ts = tags(bc) - dirichlet_tags
            neumann_tags |= ts
            if ts:
                form += (flux - bc.heat_flux_W_per_m2) * v * heat.ds(tuple(sorted(ts)))
        free = {t for ts in surfaces.values() for t in ts} - dirichlet_tags - robin_tags - neumann_tags
        if free:
            form += flux * v * heat.ds(tuple(sorted(free)))
        return form

    def rhs(self, t_old: float, t_new: float) -> PETSc.Vec:
        """theta F(t_new) + (1 - theta) F(t_old) (W per dof), assembled into one vector."""
        self.t_old.value = t_old
        self.t_new.value = t_new
        return assemble_vector(self.form, out=self.vec)

    def interpolate(self, f: fem.Function, t: float) -> None:
        """f = u(., t) (nodal interpolation)."""
        x = ufl.SpatialCoordinate(self.mesh)
        tc = fem.Constant(self.mesh, PETSc.ScalarType(t))
        f.interpolate(fem.Expression(self.solution.u(x, tc, ufl), f.function_space.element.interpolation_points))

    def set_dirichlet(self, values: list[fem.Function], t: float) -> None:
        for g in values:
            self.interpolate(g, t)

    def l2_error(self, t: float, degree_raise: int = 3) -> float:
        """L2 norm (K m^{3/2}) of T - u(., t)."""
        heat = self.heat
        e = heat.T - self.solution.u(ufl.SpatialCoordinate(self.mesh), t, ufl)
        deg = heat.case.solver.element_degree + degree_raise
        dx = ufl.dx(domain=self.mesh, metadata={"quadrature_degree": 2 * deg})
        return math.sqrt(heat.comm.allreduce(fem.assemble_scalar(fem.form(e * e * dx)), op=MPI.SUM))
