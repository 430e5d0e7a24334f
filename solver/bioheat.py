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
import dolfinx.fem.petsc
import ufl
from dolfinx import fem
from mpi4py import MPI
from petsc4py import PETSc

from .boundaries import (check_mesh_names, coolant_boundaries, dirichlet_conditions, interface_measure, split_boundaries,
                         surface_measure)
from .config import Case, CaseError
from .errors import SolverError
from .fem import assemble_operator, assemble_vector, create_ksp, region_function, untagged_cells
from .startup import DampedStart

KSP_NOTE = """Krylov solver chosen by measurement (scripts/bench.py, 205k P1 dofs, 2-core machine):
transient (mass-dominated, dt = 1 s): CG + Jacobi 30 ms/step, SOR 35, ICC 39, GAMG 169;
steady: CG + ICC 0.43 s (1 rank; block-Jacobi/ICC 0.22 s on 2), Jacobi 0.47 s, GAMG 1.14 s.
T8 spine case, 64k and 139k dofs (scripts/ksp_compare.py, docs/PERFORMANCE.md): Jacobi 21-28
iterations; ICC 5-19 % faster on 1 rank, block-Jacobi ICC 20-30 % slower on 2; GAMG 1.5-3x
slower; hypre is not in the wheel's PETSc. Jacobi stays the transient default."""


@dataclass
class LoadTerm:
    """A source: a load vector for unit power, scaled by the power in W (or 1 for densities).
    ``mean_power(t0, t1)`` (W) is the power's average over a step, so that every step delivers
    exactly the scheduled energy; ``laser`` loads are scaled by the control loop's gate."""

    name: str
    vector: PETSc.Vec
    power: Callable[[float], float]
    mean_power: Callable[[float, float], float]
    laser: bool = False


@dataclass
class SolveStats:
    iterations: list[int] = field(default_factory=list)


class BioheatProblem:
    """Function space, property fields, forms, operators and the linear solve of one case.
    It receives its load terms (``add_loads``) and, optionally, a time-dependent right-hand
    side and Dirichlet data (``rhs_term``, ``dirichlet_update``: manufactured solutions).
    Operator updates go through ``set_lumped_perfusion``, ``set_conductivity`` and
    ``set_load_vector``; nothing else touches its matrices, lift or solver."""

    def __init__(self, case: Case, bundle, comm: MPI.Comm | None = None):
        self.case, self.bundle, self.mesh = case, bundle, bundle.mesh
        self.comm = self.mesh.comm
        self.steady = case.time.mode == "steady"
        self.theta = 1.0 if (self.steady or case.time.scheme == "backward_euler") else 0.5
        self.dt = case.time.dt_s
        self.boundaries = list(case.boundary) + coolant_boundaries(case)
        # with coagulation the perfusion term is lumped, so damage changes only a diagonal
        self.lumped_perfusion = case.coagulation.enabled and not self.steady
        check_mesh_names(case, bundle)
        self.V = fem.functionspace(self.mesh, ("Lagrange", case.solver.element_degree))
        self.T = fem.Function(self.V, name="temperature")
        self.loads: list[LoadTerm] = []
        self.rhs_term: Callable[[float, float], PETSc.Vec] | None = None  # extra F(t0, t1), W per dof
        self.dirichlet_update: Callable[[list[fem.Function], float], None] | None = None
        self._properties()
        self.dx = ufl.Measure("dx", domain=self.mesh, subdomain_data=bundle.cell_tags)
        self.ds = ufl.Measure("ds", domain=self.mesh, subdomain_data=bundle.facet_tags)
        self.dS = ufl.Measure("dS", domain=self.mesh, subdomain_data=bundle.facet_tags)
        self._boundary_conditions()
        self._forms()
        self._operators()

    def _properties(self) -> None:
        """Piecewise-constant (DG0) property fields, one value per region."""
        self.Q0 = fem.functionspace(self.mesh, ("DG", 0))
        self.tissues = tissues = self.case.resolved_tissues()
        n = untagged_cells(self.mesh, self.bundle.cell_tags, self.bundle.regions.values())
        if n:
            raise CaseError(f"geometry: {n} cells belong to no named region")
        keys = {"k": "conductivity_W_per_mK", "rho_c": "volumetric_heat_capacity_J_per_m3K",
                "W": "perfusion_W_per_m3K", "T_a": "arterial_temperature_C", "Q_met": "metabolic_heat_W_per_m3"}
        self.props = {n: region_function(self.Q0, self.bundle.cell_tags, self.bundle.regions,
                                         lambda r, a=attr: getattr(tissues[r], a), name=n) for n, attr in keys.items()}

    def surface_measure(self, names: list[str]):
        return surface_measure(self.ds, self.bundle, names)

    def interface_measure(self, names: list[str]):
        return interface_measure(self.dS, self.bundle, names)

    def _boundary_conditions(self) -> None:
        self.robin, self.neumann, self.dirichlet = split_boundaries(self.boundaries)
        # Dirichlet data as functions (one per table, in its order): time-dependent ones are refilled
        self.bcs, self.dirichlet_values = dirichlet_conditions(self.V, self.bundle, self.dirichlet)

    def _forms(self) -> None:
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        k, rho_c, W = self.props["k"], self.props["rho_c"], self.props["W"]
        stiff = k * ufl.inner(ufl.grad(u), ufl.grad(v)) * self.dx
        const = self.props["Q_met"] * v * self.dx
        if not self.lumped_perfusion:
            stiff += W * u * v * self.dx
            const += W * self.props["T_a"] * v * self.dx
        for bc in self.robin:
            h, ds = bc.heat_transfer_coefficient_W_per_m2K, self.surface_measure(bc.surfaces())
            stiff += h * u * v * ds
            const += h * bc.ambient_temperature_C * v * ds
        for bc in self.neumann:
            const += bc.heat_flux_W_per_m2 * v * self.surface_measure(bc.surfaces())
            inner = self.interface_measure(bc.surfaces())
            if inner is not None:  # a flux on an interface between regions deposits q per unit area once
                const += bc.heat_flux_W_per_m2 * ufl.avg(v) * inner
        self.b_form = self.m_form = None
        if self.steady:
            self.a_form = fem.form(stiff)
        else:
            mass = rho_c / fem.Constant(self.mesh, PETSc.ScalarType(self.dt)) * u * v * self.dx
            self.a_form = fem.form(mass + self.theta * stiff)
            self.b_form = fem.form(mass - (1.0 - self.theta) * stiff if self.theta < 1.0 else mass)
            # M / dt for the backward-Euler half steps of the damped Crank-Nicolson start-up
            self.m_form = fem.form(mass) if self.theta < 1.0 else None
        self.c_form = fem.form(const)

    def _operators(self) -> None:
        self.A = dolfinx.fem.petsc.assemble_matrix(self.a_form, bcs=self.bcs)
        self.A.assemble()
        self.B = self.M_dt = self.startup = None
        # B and M_dt on A's sparsity pattern where their couplings allow (solver.fem.assemble_operator)
        if self.b_form is not None:
            self.B = assemble_operator(self.b_form, like=(self.A, self.a_form))
        if self.m_form is not None:
            self.M_dt = assemble_operator(self.m_form, like=(self.A, self.a_form))  # no BC rows: like B
            self.startup = DampedStart(self.case)
        self.c = assemble_vector(self.c_form)
        self.lift = dolfinx.fem.petsc.create_vector(self.V)
        self._update_lift()
        self.b = dolfinx.fem.petsc.create_vector(self.V)
        s = self.case.solver  # (KSP_NOTE: why CG + Jacobi / ICC)
        self.ksp = create_ksp(self.comm, self.A, prefix="bioheat_", ksp_type=s.ksp_type,
                              pc_type=s.pc_type or ("icc" if self.steady else "jacobi"), rtol=s.rtol, atol=s.atol,
                              max_it=s.max_iterations, warm_start=True)
        self.stats = SolveStats()
        # the solve's initial guess (_extrapolate_guess): T at the starts of the last steps
        self._guess = [fem.Function(self.V) for _ in range(3)]
        self.guess_times: list[float] = []  # those steps' start times (s), oldest first
        self.guess_end: float | None = None  # end time (s) of the last step
        if self.lumped_perfusion:
            self._base = (self.A.getDiagonal(), self.B.getDiagonal() if self.theta < 1.0 else None, self.c.copy())
            rows = np.concatenate([bc.dof_indices()[0][: bc.dof_indices()[1]] for bc in self.bcs]) if self.bcs else []
            self._bc_rows = np.asarray(rows, np.int32)[np.asarray(rows) < self.V.dofmap.index_map.size_local]

    def _update_lift(self) -> None:
        """lift = -A[:, bc] g on free rows: the known Dirichlet values moved to the right side."""
        with self.lift.localForm() as loc:
            loc.set(0.0)
        dolfinx.fem.petsc.apply_lifting(self.lift, [self.a_form], bcs=[self.bcs])
        self.lift.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)

    # ------------------------------------------------------------------ operator updates
    def add_loads(self, loads: list[LoadTerm]) -> None:
        self.loads.extend(loads)

    def set_load_vector(self, name: str, vector: PETSc.Vec) -> None:
        """Replace the unit-power load vector of the load term ``name`` (e.g. after a light re-solve)."""
        (load,) = [ld for ld in self.loads if ld.name == name]
        load.vector = vector

    def set_lumped_perfusion(self, w: np.ndarray, w_Ta: np.ndarray) -> None:
        """Lumped perfusion (owned entries): w_i = integral W phi_i dx (W/K) on the diagonal
        of A (theta w) and B (-(1 - theta) w), and w_Ta_i = integral W T_a phi_i dx (W) in c.
        Dirichlet rows keep their unit diagonal. O(N) vector work."""
        diagA, diagB, c0 = self._base
        w = np.array(w)
        w[self._bc_rows] = 0.0
        tmp = diagA.duplicate()
        tmp.array[:] = diagA.array + self.theta * w
        self.A.setDiagonal(tmp, addv=PETSc.InsertMode.INSERT_VALUES)
        if diagB is not None:
            tmp.array[:] = diagB.array - (1.0 - self.theta) * w
            self.B.setDiagonal(tmp, addv=PETSc.InsertMode.INSERT_VALUES)
        tmp.destroy()
        self.c.array[:] = c0.array + w_Ta
        self.ksp.setOperators(self.A)  # refreshes the (Jacobi) preconditioner

    def set_conductivity(self, k: np.ndarray) -> None:
        """New conductivity k (W/(m K), DG0 array with ghosts): re-assembles A, B and the lift
        (without lumped perfusion: call set_lumped_perfusion next)."""
        self.props["k"].x.array[:] = k
        for M, form, bcs in ((self.A, self.a_form, self.bcs), (self.B, self.b_form, [])):
            if M is not None:
                M.zeroEntries()
                dolfinx.fem.petsc.assemble_matrix(M, form, bcs=bcs)
                M.assemble()
        self._update_lift()
        diagB = self.B.getDiagonal() if (self.B is not None and self.theta < 1.0) else None
        self._base = (self.A.getDiagonal(), diagB, self._base[2])

    # ------------------------------------------------------------------ stepping
    def substeps(self, t_old: float, t_new: float, gate: float = 1.0) -> list[tuple[float, float, bool]]:
        """The (t0, t1, half) pieces of the step: with Crank-Nicolson, a step at or right
        after a discontinuity (solver.startup) is two backward-Euler half steps."""
        if self.startup is not None and self.startup.damp(t_old, t_new, gate):
            t_half = 0.5 * (t_old + t_new)
            return [(t_old, t_half, True), (t_half, t_new, True)]
        return [(t_old, t_new, False)]

    def advance(self, t0: float, t1: float, gate: float = 1.0, half: bool = False) -> tuple[float, float]:
        """Advance T from t0 to t1 (s); laser loads scaled by ``gate``. A ``half`` step is
        backward Euler of dt / 2 with the Crank-Nicolson operator:
        (M / dt + K / 2) T^{n+1/2} = M / dt T^n + F(t^{n+1/2}) / 2. Returns the requested and
        delivered laser power (W, means over the step)."""
        self._set_dirichlet_values(t1)  # lift = -A[:, bc] g: for a half step that of the equation halved
        scale = 0.5 if half else 1.0
        b = self.b
        (self.M_dt if half else self.B).mult(self.T.x.petsc_vec, b)
        b.axpy(scale, self.c)
        requested = delivered = 0.0
        for load in self.loads:
            p = load.mean_power(t0, t1)
            if load.laser:
                requested += p
                p *= gate
                delivered += p
            if p != 0.0:
                b.axpy(scale * p, load.vector)
        if self.rhs_term is not None:
            b.axpy(scale, self.rhs_term(t1, t1) if half else self.rhs_term(t0, t1))
        self._extrapolate_guess(t0, t1)
        self._finish_solve(b)
        return requested, delivered

    def _extrapolate_guess(self, t0: float, t1: float) -> None:
        """Initial guess of the step's solve (CG converges from it; only the iteration count
        depends on it): T extrapolated in time through the states at the starts of the last
        steps, when those steps were contiguous and ended at t0: quadratic (3 T0 - 3 T-1 + T-2)
        after two equal steps of this length, linear otherwise, T(t0) itself (warm start)
        after a break. Dirichlet values set exactly. Measured on T8 (standard, 180 steps of
        1 s): CG-Jacobi iterations per step 16.6 (warm start) -> 12.8 (linear) -> 9.8
        (quadratic). The states are checkpointed (guess_arrays, guess_times), so a resumed run
        takes the same iterations as an uninterrupted one."""
        x = self.T.x.petsc_vec
        hist, times = self._guess, self.guess_times
        if times and self.guess_end != t0:
            times.clear()
        work = hist.pop()  # the oldest state's storage
        x.copy(work.x.petsc_vec)  # T(t0)
        dt = t1 - t0
        if len(times) >= 2 and abs(t0 - times[-1] - dt) <= 1e-12 * t1 and abs(times[-1] - times[-2] - dt) <= 1e-12 * t1:
            x.scale(3.0)
            x.axpy(-3.0, hist[0].x.petsc_vec)
            x.axpy(1.0, hist[1].x.petsc_vec)
            dolfinx.fem.petsc.set_bc(x, self.bcs)
        elif times and times[-1] < t0 < t1:
            r = dt / (t0 - times[-1])
            x.axpy(r, work.x.petsc_vec)
            x.axpy(-r, hist[0].x.petsc_vec)
            dolfinx.fem.petsc.set_bc(x, self.bcs)
        hist.insert(0, work)
        times.append(t0)
        del times[:-2]
        self.guess_end = t1

    def guess_arrays(self) -> dict[str, np.ndarray]:
        """The extrapolation's stored states (newest first), nodal arrays with ghosts, by
        name; with guess_times and guess_end they are the whole state of _extrapolate_guess."""
        return {f"guess.{i}": f.x.array for i, f in enumerate(self._guess)}

    def solve_steady(self) -> None:
        self._set_dirichlet_values(0.0)
        b = self.b
        self.c.copy(b)
        for load in self.loads:
            b.axpy(load.power(0.0), load.vector)
        if self.rhs_term is not None:
            b.axpy(1.0, self.rhs_term(0.0, 0.0))
        self._finish_solve(b)

    def _set_dirichlet_values(self, t: float) -> None:
        if self.dirichlet_update is not None:
            self.dirichlet_update(self.dirichlet_values, t)
            self._update_lift()

    def _finish_solve(self, b: PETSc.Vec) -> None:
        b.axpy(1.0, self.lift)
        dolfinx.fem.petsc.set_bc(b, self.bcs)
        x = self.T.x.petsc_vec
        self.ksp.solve(b, x)
        reason = self.ksp.getConvergedReason()
        if reason < 0:
            # a steady solve has no time step to shrink: only the solver settings can help
            hint = ("try solver.pc_type = 'lu' (direct solve) or a larger solver.max_iterations" if self.steady
                    else "try a smaller time step, solver.pc_type = 'lu' or a larger solver.max_iterations")
            raise SolverError(f"linear solve did not converge (PETSc reason {reason}, {self.ksp.getIterationNumber()} "
                              f"iterations, residual {self.ksp.getResidualNorm():.3e}); " + hint)
        self.T.x.scatter_forward()
        self.stats.iterations.append(self.ksp.getIterationNumber())
        if not math.isfinite(x.norm()):
            raise SolverError("the temperature field is not finite (NaN or Inf) after the solve")

    # ------------------------------------------------------------------ diagnostics
    def solver_types(self) -> tuple[str, str]:
        """(KSP type, PC type) of the heat solve as applied (after PETSc options)."""
        return self.ksp.getType(), self.ksp.getPC().getType()

    def num_dofs(self) -> int:
        return self.V.dofmap.index_map.size_global * self.V.dofmap.index_map_bs

    def num_cells(self) -> int:
        return self.mesh.topology.index_map(self.mesh.topology.dim).size_global
