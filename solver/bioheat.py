"""The Pennes bioheat problem on a tagged mesh: forms, operators and the linear solve.

    rho c dT/dt = div(k grad T) - W (T - T_a) + Q_met + Q_sources

Time discretisation: the theta scheme (theta = 1 backward Euler, theta = 1/2
Crank-Nicolson). With constant properties the operator never changes, so

    A T^{n+1} = B T^n + c + sum_j [theta P_j(t^{n+1}) + (1 - theta) P_j(t^n)] q_j + lift

with A, B, c, q_j (unit-power load vectors) and the Dirichlet lift assembled once:
each step costs one mat-vec, a few axpys and a warm-started Krylov solve. Crank-Nicolson
takes the steps at and after a discontinuity as backward-Euler half steps with the same A
(solver.startup), so it does not oscillate after a jump.
Temperatures are in C throughout (the equation is linear, so C and K differ only
in the offset that the arterial and boundary temperatures carry).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import compat  # noqa: F401  (import order)
import dolfinx
import dolfinx.fem.petsc
import ufl
from dolfinx import fem
from mpi4py import MPI
from petsc4py import PETSc

from .analytic import MANUFACTURED
from .config import (
    Case,
    CaseError,
    DirichletBC,
    NeumannBC,
    PointSource,
    RobinBC,
    SegmentSource,
    UniformSource,
)
from .probes import PointOutsideMesh, point_load_vector


from .errors import SolverError  # noqa: E402,F401  (re-exported: its old home)


@dataclass
class LoadTerm:
    """A source: a load vector for unit power, scaled by the power in W (or 1 for densities).

    ``power(t)`` is the power at time t; ``mean_power(t0, t1)`` its average over a step, which
    the time loop uses so that every step delivers exactly the scheduled energy (a step
    schedule switching off inside a step is not rounded to the step's end).
    """

    name: str
    vector: PETSc.Vec
    power: Callable[[float], float]
    mean_power: Callable[[float, float], float]
    laser: bool = False  # switched off by the safety-point control loop


@dataclass
class SolveStats:
    iterations: list[int] = field(default_factory=list)


def _ksp(comm, A: PETSc.Mat, opts, steady: bool, prefix: str) -> PETSc.KSP:
    """Krylov solver chosen by measurement (scripts/bench.py, 205k P1 dofs, 2-core machine):

    transient (mass-dominated, dt = 1 s): CG + Jacobi 30 ms/step, SOR 35, ICC 39, GAMG 169;
    steady: CG + ICC 0.43 s (1 rank; block-Jacobi/ICC 0.22 s on 2), Jacobi 0.47 s, GAMG 1.14 s.
    GAMG would win only on much finer meshes or much larger alpha dt / h^2.
    T8 spine case, 64k and 139k dofs (scripts/ksp_compare.py, docs/PERFORMANCE.md): Jacobi 21-28
    iterations; ICC 5-19 % faster on 1 rank, block-Jacobi ICC 20-30 % slower on 2; GAMG 1.5-3x
    slower; hypre is not in the wheel's PETSc. Jacobi stays the transient default.
    """
    ksp = PETSc.KSP().create(comm)
    ksp.setOptionsPrefix(prefix)  # users may still tune it with -<prefix>ksp_... options
    ksp.setOperators(A)
    pc_type = opts.pc_type or ("icc" if steady else "jacobi")
    ksp_type = "preonly" if pc_type == "lu" else opts.ksp_type
    sub_pc = None
    if pc_type in ("icc", "ilu") and comm.size > 1:
        sub_pc, pc_type = pc_type, "bjacobi"  # incomplete factorisations are per-rank blocks
    ksp.setType(ksp_type)
    pc = ksp.getPC()
    pc.setType(pc_type)
    if pc_type == "lu":
        pc.setFactorSolverType("mumps")
    ksp.setTolerances(rtol=opts.rtol, atol=opts.atol, max_it=opts.max_iterations)
    ksp.setFromOptions()
    if sub_pc is not None:
        # Set the blocks' preconditioner directly rather than through the options database,
        # where an unused entry would be reported as left over at exit.
        ksp.setUp()
        for sub in pc.getBJacobiSubKSP():
            sub.getPC().setType(sub_pc)
    if ksp_type != "preonly":
        ksp.setInitialGuessNonzero(True)  # warm start from the previous step
    return ksp


class BioheatProblem:
    """Owns the function space, property fields, forms, operators and the solver of one case."""

    def __init__(self, case: Case, bundle, comm: MPI.Comm | None = None):
        self.case = case
        self.bundle = bundle
        self.mesh = bundle.mesh
        self.comm = self.mesh.comm
        self.steady = case.time.mode == "steady"
        self.theta = 1.0 if (self.steady or case.time.scheme == "backward_euler") else 0.5
        self.dt = case.time.dt_s
        self.manufactured = MANUFACTURED[case.manufactured.solution] if case.manufactured else None
        self.boundaries = list(case.boundary) + coolant_boundaries(case)
        # With coagulation the perfusion term is lumped, so damage changes only a diagonal.
        self.lumped_perfusion = case.coagulation.enabled and not self.steady
        self._check_mesh_names()
        self.V = fem.functionspace(self.mesh, ("Lagrange", case.solver.element_degree))
        self.T = fem.Function(self.V, name="temperature")
        self.T_old = fem.Function(self.V)
        self._properties()
        self._measures()
        self._boundary_conditions()
        self._forms()
        self._loads()
        self._laser_loads()
        self._operators()
        self.laser_gate = 1.0  # 0 while the control loop holds the laser off
        self.power_log: list[tuple[float, float, float, float]] = []  # t0, t1, requested W, delivered W
        self.dose = None
        if not self.steady:
            from .dose import DoseTracker

            self.dose = DoseTracker(self)
        self.coagulation = None
        if self.lumped_perfusion:
            from .coagulation import CoagulationModel

            self.coagulation = CoagulationModel(self)

    # ------------------------------------------------------------------ set-up
    def _check_mesh_names(self) -> None:
        regions, surfaces = self.bundle.regions, self.bundle.surfaces
        problems = []
        for region in self.case.regions:
            if region not in regions:
                problems.append(
                    f"regions.{region}: the mesh has no region '{region}'; it has {sorted(regions)}"
                )
        for region in regions:
            if region not in self.case.regions:
                problems.append(
                    f"regions: mesh region '{region}' has no tissue; add regions.{region} = '<tissue>'"
                )
        from .case_checks import boundary_overlaps, boundary_tables

        tables = boundary_tables(self.case)
        interior = getattr(self.bundle, "interior_surfaces", set())
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
        for i, src in enumerate(self.case.source):
            if isinstance(src, UniformSource) and src.region not in regions:
                raise CaseError(f"source[{i}].region = '{src.region}': no such region in the mesh")

    def _properties(self) -> None:
        """Piecewise-constant (DG0) property fields, one value per region."""
        Q = fem.functionspace(self.mesh, ("DG", 0))
        self.Q0 = Q
        self.tissues = self.case.resolved_tissues()
        names = ["k", "rho_c", "W", "T_a", "Q_met"]
        self.props = {n: fem.Function(Q, name=n) for n in names}
        tdim = self.mesh.topology.dim
        num_cells = self.mesh.topology.index_map(tdim).size_local + self.mesh.topology.index_map(
            tdim
        ).num_ghosts
        assigned = np.zeros(num_cells, dtype=bool)
        ct = self.bundle.cell_tags
        for region, tag in self.bundle.regions.items():
            t = self.tissues[region]
            cells = ct.find(tag)
            assigned[cells] = True
            values = {
                "k": t.conductivity_W_per_mK,
                "rho_c": t.volumetric_heat_capacity_J_per_m3K,
                "W": t.perfusion_W_per_m3K,
                "T_a": t.arterial_temperature_C,
                "Q_met": t.metabolic_heat_W_per_m3,
            }
            for n, v in values.items():
                dofs = Q.dofmap.list[cells].reshape(-1)
                self.props[n].x.array[dofs] = v
        owned = self.mesh.topology.index_map(tdim).size_local
        missing = int(np.count_nonzero(~assigned[:owned]))
        missing = self.comm.allreduce(missing, op=MPI.SUM)
        if missing:
            raise CaseError(f"geometry: {missing} cells belong to no named region")
        for f in self.props.values():
            f.x.scatter_forward()

    def _measures(self) -> None:
        self.dx = ufl.Measure("dx", domain=self.mesh, subdomain_data=self.bundle.cell_tags)
        self.ds = ufl.Measure("ds", domain=self.mesh, subdomain_data=self.bundle.facet_tags)
        self.dS = ufl.Measure("dS", domain=self.mesh, subdomain_data=self.bundle.facet_tags)

    def _ds(self, surface_names: list[str]):
        tags = []
        for s in surface_names:
            tags.extend(self.bundle.surfaces[s])
        return self.ds(tuple(sorted(set(tags))))

    def _dS(self, surface_names: list[str]):
        """Interior-facet measure over the named surfaces' facets between two cells, or None."""
        interior = getattr(self.bundle, "interior_surfaces", set())
        names = [s for s in surface_names if s in interior]
        if not names:
            return None
        tags = sorted({t for s in names for t in self.bundle.surfaces[s]})
        return self.dS(tuple(tags))

    def boundary_report(self) -> list[dict]:
        """Per boundary condition: label, type, surfaces, area (m2, exterior plus interior
        facets) and for a heat flux the power it puts in (W). Collective."""
        from .case_checks import boundary_tables

        one = fem.Constant(self.mesh, PETSc.ScalarType(1.0))
        out = []
        for label, bc in boundary_tables(self.case):
            form = one * self._ds(bc.surfaces())
            inner = self._dS(bc.surfaces())
            if inner is not None:
                form += one("+") * inner
            area = self.comm.allreduce(float(fem.assemble_scalar(fem.form(form))), op=MPI.SUM)
            entry = {"table": label, "type": bc.type, "surfaces": bc.surfaces(), "area_m2": area,
                     "interior": inner is not None}
            if isinstance(bc, NeumannBC):
                entry["power_W"] = bc.heat_flux_W_per_m2 * area
            out.append(entry)
        return out

    def _boundary_conditions(self) -> None:
        fdim = self.mesh.topology.dim - 1
        self.mesh.topology.create_connectivity(fdim, self.mesh.topology.dim)
        self.bcs: list[fem.DirichletBC] = []
        self._bc_functions: list[fem.Function] = []
        self.robin = [bc for bc in self.boundaries if isinstance(bc, RobinBC)]
        self.neumann = [bc for bc in self.boundaries if isinstance(bc, NeumannBC)]
        self.dirichlet = [bc for bc in self.boundaries if isinstance(bc, DirichletBC)]
        for bc in self.dirichlet:
            tags = [t for s in bc.surfaces() for t in self.bundle.surfaces[s]]
            facets = np.unique(
                np.concatenate([self.bundle.facet_tags.find(t) for t in tags]).astype(np.int32)
            )
            dofs = fem.locate_dofs_topological(self.V, fdim, facets)
            if self.manufactured is not None:
                g = fem.Function(self.V)
                self._bc_functions.append(g)
                self.bcs.append(fem.dirichletbc(g, dofs))
            else:
                value = fem.Constant(self.mesh, PETSc.ScalarType(bc.temperature_C))
                self.bcs.append(fem.dirichletbc(value, dofs, self.V))

    def _forms(self) -> None:
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        k, rho_c, W = self.props["k"], self.props["rho_c"], self.props["W"]
        dx = self.dx
        stiff = k * ufl.inner(ufl.grad(u), ufl.grad(v)) * dx
        if not self.lumped_perfusion:
            stiff += W * u * v * dx
        for bc in self.robin:
            stiff += bc.heat_transfer_coefficient_W_per_m2K * u * v * self._ds(bc.surfaces())
        const = self.props["Q_met"] * v * dx
        if not self.lumped_perfusion:
            const += W * self.props["T_a"] * v * dx
        for bc in self.robin:
            h = bc.heat_transfer_coefficient_W_per_m2K
            const += h * bc.ambient_temperature_C * v * self._ds(bc.surfaces())
        for bc in self.neumann:
            const += bc.heat_flux_W_per_m2 * v * self._ds(bc.surfaces())
            inner = self._dS(bc.surfaces())
            if inner is not None:
                # a flux on an interface between regions deposits q per unit area once
                const += bc.heat_flux_W_per_m2 * ufl.avg(v) * inner
        if self.steady:
            a = stiff
            b = None
        else:
            dt = fem.Constant(self.mesh, PETSc.ScalarType(self.dt))
            mass = rho_c / dt * u * v * dx
            theta = self.theta
            a = mass + theta * stiff
            b = mass - (1.0 - theta) * stiff if theta < 1.0 else mass
        self.a_form = fem.form(a)
        self.b_form = fem.form(b) if b is not None else None
        # M / dt for the backward-Euler half steps of the damped Crank-Nicolson start-up
        self.m_form = fem.form(mass) if (not self.steady and self.theta < 1.0) else None
        self.c_form = fem.form(const)
        self.mms_form = self._manufactured_form(v) if self.manufactured else None

    def _manufactured_form(self, v):
        """Right-hand side that makes the manufactured solution exact: the residual of the
        PDE in the volume, and on every non-Dirichlet surface the mismatch between the exact
        flux and what the case's boundary condition prescribes."""
        ms = self.manufactured
        x = ufl.SpatialCoordinate(self.mesh)
        n = ufl.FacetNormal(self.mesh)
        k, rho_c, W = self.props["k"], self.props["rho_c"], self.props["W"]
        T_a, Q_met = self.props["T_a"], self.props["Q_met"]
        self.t_new = fem.Constant(self.mesh, PETSc.ScalarType(0.0))
        self.t_old = fem.Constant(self.mesh, PETSc.ScalarType(0.0))

        def rhs(t):
            u = ms.u(x, t, ufl)
            f = -ufl.div(k * ufl.grad(u)) + W * (u - T_a) - Q_met
            if not self.steady:
                f += rho_c * ms.du_dt(x, t, ufl)
            form = f * v * self.dx
            flux = k * ufl.dot(ufl.grad(u), n)
            dirichlet_tags = {t for bc in self.dirichlet for s in bc.surfaces() for t in self.bundle.surfaces[s]}
            robin_tags, neumann_tags = set(), set()
            for bc in self.robin:
                h, Tamb = bc.heat_transfer_coefficient_W_per_m2K, bc.ambient_temperature_C
                tags = {t for s in bc.surfaces() for t in self.bundle.surfaces[s]} - dirichlet_tags
                robin_tags |= tags
                if tags:
                    form += (flux + h * (u - Tamb)) * v * self.ds(tuple(sorted(tags)))
            for bc in self.neumann:
                tags = {t for s in bc.surfaces() for t in self.bundle.surfaces[s]} - dirichlet_tags
                neumann_tags |= tags
                if tags:
                    form += (flux - bc.heat_flux_W_per_m2) * v * self.ds(tuple(sorted(tags)))
            all_tags = {t for ts in self.bundle.surfaces.values() for t in ts}
            free = all_tags - dirichlet_tags - robin_tags - neumann_tags
            if free:
                form += flux * v * self.ds(tuple(sorted(free)))
            return form

        if self.steady:
            return fem.form(rhs(self.t_new))
        return fem.form(self.theta * rhs(self.t_new) + (1.0 - self.theta) * rhs(self.t_old))

    def exact_expression(self, t: float):
        """UFL expression of the manufactured solution at time t (for errors and BCs)."""
        x = ufl.SpatialCoordinate(self.mesh)
        return self.manufactured.u(x, t, ufl)

    def _interpolate_exact(self, f: fem.Function, t: float) -> None:
        x = ufl.SpatialCoordinate(self.mesh)
        tc = fem.Constant(self.mesh, PETSc.ScalarType(t))
        expr = fem.Expression(self.manufactured.u(x, tc, ufl), self.V.element.interpolation_points)
        f.interpolate(expr)

    def _loads(self) -> None:
        """Unit-power load vectors of the case's sources, assembled once."""
        self.loads: list[LoadTerm] = []
        v = ufl.TestFunction(self.V)
        h_min = self._min_cell_size()
        for i, src in enumerate(self.case.source):
            name = f"source[{i}]"
            if isinstance(src, UniformSource):
                tag = self.bundle.regions[src.region]
                vol = self.comm.allreduce(
                    fem.assemble_scalar(fem.form(fem.Constant(self.mesh, 1.0) * self.dx(tag))),
                    op=MPI.SUM,
                )
                if src.power_density_W_per_m3 is not None:
                    scale, power, mean = src.power_density_W_per_m3, (lambda t: 1.0), (lambda a, b: 1.0)
                else:
                    scale, power, mean = 1.0 / vol, src.power_at, src.mean_power
                vec = dolfinx.fem.petsc.assemble_vector(fem.form(scale * v * self.dx(tag)))
                vec.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
            elif isinstance(src, PointSource):
                vec = self._point_vector(name, [src.position_m], [1.0])
                power, mean = src.power_at, src.mean_power
            elif isinstance(src, SegmentSource):
                pts, w = segment_quadrature(src.start_m, src.end_m, h_min)
                vec = self._point_vector(name, pts, w)
                power, mean = src.power_at, src.mean_power
            else:  # pragma: no cover - config forbids it
                raise CaseError(f"{name}: unsupported source type")
            self.loads.append(LoadTerm(name, vec, power, mean))

    def _laser_loads(self) -> None:
        """Unit heat loads of every laser emitter (light solved once here, not per step)."""
        self.laser = None
        if not self.case.applicator:
            return
        from .laser import Laser

        self.laser = Laser(self.case, self.bundle, self.V)
        self.laser_loads = [
            LoadTerm(f"laser {em.label}", em.load, em.power, em.mean_power, laser=True) for em in self.laser.emitters
        ]
        self.loads.extend(self.laser_loads)

    def _point_vector(self, name: str, points, weights) -> PETSc.Vec:
        try:
            return point_load_vector(self.V, points, weights)
        except PointOutsideMesh as err:
            raise CaseError(f"{name}: position {err.points[err.indices[0]].tolist()} m is outside the mesh") from None

    def _min_cell_size(self) -> float:
        tdim = self.mesh.topology.dim
        n = self.mesh.topology.index_map(tdim).size_local
        h = self.mesh.h(tdim, np.arange(n, dtype=np.int32))
        return self.comm.allreduce(float(h.min()) if n else np.inf, op=MPI.MIN)

    def _operators(self) -> None:
        self.A = dolfinx.fem.petsc.assemble_matrix(self.a_form, bcs=self.bcs)
        self.A.assemble()
        self.B = None
        if self.b_form is not None:
            self.B = dolfinx.fem.petsc.assemble_matrix(self.b_form)
            self.B.assemble()
        self.M_dt = None
        self.startup = None
        if self.m_form is not None:
            from .startup import DampedStart

            self.M_dt = dolfinx.fem.petsc.assemble_matrix(self.m_form)  # no BC rows: like B
            self.M_dt.assemble()
            self.startup = DampedStart(self.case)
        self.c = dolfinx.fem.petsc.assemble_vector(self.c_form)
        self.c.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        self.lift = dolfinx.fem.petsc.create_vector(self.V)
        self._update_lift()
        self.b = dolfinx.fem.petsc.create_vector(self.V)
        self.ksp = _ksp(self.comm, self.A, self.case.solver, self.steady, prefix=f"bioheat_{id(self)}_")
        self.stats = SolveStats()
        if self.mms_form is not None:
            self.mms_vec = dolfinx.fem.petsc.create_vector(self.V)

    def _update_lift(self) -> None:
        """lift = -A[:, bc] g on free rows: the known Dirichlet values moved to the right side."""
        with self.lift.localForm() as loc:
            loc.set(0.0)
        dolfinx.fem.petsc.apply_lifting(self.lift, [self.a_form], bcs=[self.bcs])
        self.lift.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)

    # ------------------------------------------------------------------ stepping
    def set_initial(self) -> None:
        if self.manufactured is not None:
            self._interpolate_exact(self.T, 0.0)
        else:
            self.T.x.array[:] = self.case.initial.temperature_C
        self.T.x.scatter_forward()
        if self.dose is not None:
            self.dose.start()

    def _set_dirichlet_values(self, t: float) -> None:
        if self.manufactured is None:
            return
        for g in self._bc_functions:
            self._interpolate_exact(g, t)
        self._update_lift()

    def solve_steady(self) -> None:
        t = 0.0
        self._set_dirichlet_values(t)
        b = self.b
        self.c.copy(b)
        for load in self.loads:
            b.axpy(load.power(t), load.vector)
        if self.mms_form is not None:
            self._assemble_mms(t, t)
            b.axpy(1.0, self.mms_vec)
        b.axpy(1.0, self.lift)
        dolfinx.fem.petsc.set_bc(b, self.bcs)
        self._solve(b)

    def step(self, t_old: float, t_new: float) -> None:
        """Advance T from t_old to t_new (s). With Crank-Nicolson, a step at or right after a
        discontinuity (solver.startup) is taken as two backward-Euler half steps."""
        if self.startup is not None and self.startup.damp(t_old, t_new, self.laser_gate):
            t_half = 0.5 * (t_old + t_new)
            req0, got0 = self._half_step(t_old, t_half)
            req1, got1 = self._half_step(t_half, t_new)
            if self.laser is not None:
                self.power_log.append((t_old, t_new, 0.5 * (req0 + req1), 0.5 * (got0 + got1)))
            if self.coagulation is not None:
                self.coagulation.after_step()
            return
        if self.dose is not None:
            self.dose.before_step()
        self._set_dirichlet_values(t_new)
        b = self.b
        self.B.mult(self.T.x.petsc_vec, b)
        b.axpy(1.0, self.c)
        requested, delivered = self._add_loads(b, t_old, t_new, 1.0)
        if self.laser is not None:
            self.power_log.append((t_old, t_new, requested, delivered))
        if self.mms_form is not None:
            self._assemble_mms(t_old, t_new)
            b.axpy(1.0, self.mms_vec)
        b.axpy(1.0, self.lift)
        dolfinx.fem.petsc.set_bc(b, self.bcs)
        self._solve(b)
        if self.dose is not None:
            self.dose.after_step(t_new - t_old)
        if self.coagulation is not None:
            self.coagulation.after_step()

    def _add_loads(self, b: PETSc.Vec, t_old: float, t_new: float, scale: float) -> tuple[float, float]:
        """b += scale * sum_j P_j q_j with P_j the mean power over [t_old, t_new] (the laser
        gated by the control loop); returns the requested and delivered laser power (W)."""
        requested = delivered = 0.0
        for load in self.loads:
            p = load.mean_power(t_old, t_new)
            if load.laser:
                requested += p
                p *= self.laser_gate
                delivered += p
            if p != 0.0:
                b.axpy(scale * p, load.vector)
        return requested, delivered

    def _half_step(self, t_old: float, t_new: float) -> tuple[float, float]:
        """One backward-Euler step of dt / 2 with the Crank-Nicolson operator (solver.startup):
        (M / dt + K / 2) T^{n+1/2} = M / dt T^n + F(t^{n+1/2}) / 2, the Dirichlet rows set.
        Returns the requested and delivered laser power (W) over the half step."""
        if self.dose is not None:
            self.dose.before_step()
        self._set_dirichlet_values(t_new)  # lift = -A[:, bc] g: that of the equation halved
        b = self.b
        self.M_dt.mult(self.T.x.petsc_vec, b)
        b.axpy(0.5, self.c)
        requested, delivered = self._add_loads(b, t_old, t_new, 0.5)
        if self.mms_form is not None:
            self._assemble_mms(t_new, t_new)  # theta rhs(t_new) + (1 - theta) rhs(t_new)
            b.axpy(0.5, self.mms_vec)
        b.axpy(1.0, self.lift)
        dolfinx.fem.petsc.set_bc(b, self.bcs)
        self._solve(b)
        if self.dose is not None:
            self.dose.after_step(t_new - t_old)
        return requested, delivered

    def _assemble_mms(self, t_old: float, t_new: float) -> None:
        self.t_old.value = t_old
        self.t_new.value = t_new
        with self.mms_vec.localForm() as loc:
            loc.set(0.0)
        dolfinx.fem.petsc.assemble_vector(self.mms_vec, self.mms_form)
        self.mms_vec.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)

    def _solve(self, b: PETSc.Vec) -> None:
        x = self.T.x.petsc_vec
        self.ksp.solve(b, x)
        reason = self.ksp.getConvergedReason()
        if reason < 0:
            # A steady solve has no time step to shrink (and a case without a heat sink is
            # refused at validation): only the solver settings can help.
            hint = (
                "try solver.pc_type = 'lu' (direct solve) or a larger solver.max_iterations"
                if self.steady
                else "try a smaller time step or solver.pc_type = 'lu'"
            )
            raise SolverError(
                f"linear solve did not converge (PETSc reason {reason}, "
                f"{self.ksp.getIterationNumber()} iterations, residual {self.ksp.getResidualNorm():.3e}); "
                + hint
            )
        self.T.x.scatter_forward()
        self.stats.iterations.append(self.ksp.getIterationNumber())
        norm = x.norm()
        if not math.isfinite(norm):
            raise SolverError("the temperature field is not finite (NaN or Inf) after the solve")

    # ------------------------------------------------------------------ diagnostics
    def l2_error(self, t: float, degree_raise: int = 3) -> float:
        """L2 norm (K m^{3/2}) of T - u_exact at time t (manufactured cases only)."""
        e = self.T - self.exact_expression(t)
        deg = self.case.solver.element_degree + degree_raise
        dx = ufl.dx(domain=self.mesh, metadata={"quadrature_degree": 2 * deg})
        val = fem.assemble_scalar(fem.form(e * e * dx))
        return math.sqrt(self.comm.allreduce(val, op=MPI.SUM))

    def max_temperature(self) -> tuple[float, list[float]]:
        """Global maximum of the nodal temperatures (C) and where (m)."""
        n = self.V.dofmap.index_map.size_local
        arr = self.T.x.array[:n]
        if n:
            i = int(np.argmax(arr))
            local = (float(arr[i]), self.comm.rank)
            coords = self.V.tabulate_dof_coordinates()[i]
        else:
            local = (-np.inf, self.comm.rank)
            coords = np.zeros(3)
        value, rank = self.comm.allreduce(local, op=MPI.MAXLOC)
        where = self.comm.bcast(coords.tolist() if self.comm.rank == rank else None, root=rank)
        return value, where

    def num_dofs(self) -> int:
        return self.V.dofmap.index_map.size_global * self.V.dofmap.index_map_bs

    def num_cells(self) -> int:
        return self.mesh.topology.index_map(self.mesh.topology.dim).size_global


from .case_checks import coolant_boundaries  # noqa: E402,F401  (pure; re-exported here)


def segment_quadrature(start, end, h: float, points_per_cell: int = 4):
    """Gauss points and weights (unit total) along a segment, sub-segments shorter than h/4.

    The weights sum to 1 exactly, so the delivered power is exact; the distribution along
    the segment converges with the sub-segment length.
    """
    a, b = np.asarray(start, float), np.asarray(end, float)
    length = float(np.linalg.norm(b - a))
    n_sub = max(8, int(math.ceil(points_per_cell * length / h)))
    gx, gw = np.polynomial.legendre.leggauss(3)
    s_edges = np.linspace(0.0, 1.0, n_sub + 1)
    pts, w = [], []
    for s0, s1 in zip(s_edges[:-1], s_edges[1:]):
        s = 0.5 * (s0 + s1) + 0.5 * (s1 - s0) * gx
        pts.append(a[None, :] + s[:, None] * (b - a)[None, :])
        w.append(0.5 * (s1 - s0) * gw)
    return np.concatenate(pts), np.concatenate(w)
