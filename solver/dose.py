"""Thermal dose at every node during a transient run: Arrhenius Omega, CEM43, the maximum
temperature reached, and the time spent above 43 C and 45 C.

Each step integrates with rules exact for the temperature linear in time between the two
time levels (solver.damage). The Arrhenius parameters are per tissue (case keys
``arrhenius_A_per_s`` / ``arrhenius_Ea_J_per_mol``, default ``coagulation.arrhenius_set``:
Henriques, the MD Anderson LITT code's default; no spinal-cord/bone-specific set is
published, docs/MODEL.md section 3). A node on a region interface takes one adjacent cell's
parameters.
"""

from __future__ import annotations

import math

import numpy as np

from . import compat  # noqa: F401  (import order)
from dolfinx import fem

from .fem import region_function
from .damage import ARRHENIUS_SETS
from .dose_kernels import add_time_above, call, nodal_dose_step
from .zone import ZoneSampler

THRESHOLDS_C = (43.0, 45.0)


class DoseTracker:
    def __init__(self, problem):
        self.p = problem
        V, Q0 = problem.V, problem.Q0
        A_default, Ea_default = ARRHENIUS_SETS[problem.case.coagulation.arrhenius_set]
        tissues, tags, regions = problem.tissues, problem.bundle.cell_tags, problem.bundle.regions
        logA = region_function(Q0, tags, regions, lambda r: math.log(tissues[r].arrhenius_A_per_s or A_default))
        Ea = region_function(Q0, tags, regions, lambda r: tissues[r].arrhenius_Ea_J_per_mol or Ea_default)
        # Ghost nodes take the owner's value (scatter_forward): the adjacent cell an interface
        # node takes its parameters from may differ between ranks, and every rank must
        # integrate the same dose at a shared node (partition-independent; checkpoints).
        nodal = fem.Function(V)
        nodal.interpolate(logA)
        nodal.x.scatter_forward()
        self.A = np.exp(nodal.x.array)
        nodal.interpolate(Ea)
        nodal.x.scatter_forward()
        self.Ea = nodal.x.array.copy()
        n = len(problem.T.x.array)
        self.omega = fem.Function(V, name="damage_omega")
        self.cem43 = fem.Function(V, name="cem43_min")
        self.T_max = fem.Function(V, name="max_temperature_C")
        self.time_above = {lvl: np.zeros(n) for lvl in THRESHOLDS_C}
        # exp(-E_a / (R T)) at the last step's end, per node (-1: not yet): kept by the kernel
        self.rate_prev = np.full(n, -1.0)
        self.T_prev = None
        # the ablation zone: dose at quadrature points (solver.zone), not thresholded nodal values
        n_cells = problem.mesh.topology.index_map(problem.mesh.topology.dim).size_local
        cell_dof = Q0.dofmap.list[:n_cells, 0]
        self.zone = ZoneSampler(
            problem, problem.case.damage.ablation_criterion, logA.x.array[cell_dof], Ea.x.array[cell_dof]
        )

    def start(self) -> None:
        self.T_max.x.array[:] = self.p.T.x.array
        self.zone.start()

    def before_step(self) -> None:
        self.T_prev = self.p.T.x.array.copy()

    def after_step(self, dt: float) -> None:
        T0, T1 = self.T_prev, self.p.T.x.array
        # compiled loops (solver.dose_kernels), the formulas of solver.damage point by point
        call(nodal_dose_step, T0, T1, float(dt), self.A, self.Ea, self.omega.x.array, self.cem43.x.array,
             self.T_max.x.array, self.rate_prev)
        for lvl, acc in self.time_above.items():
            call(add_time_above, T0, T1, float(lvl), float(dt), acc)
        self.zone.after_step(dt, T0)
