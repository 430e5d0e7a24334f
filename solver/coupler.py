"""The composition root of a run (FESTIM's coupled-problem pattern: initialise / iterate /
run): it builds and owns the heat problem, the laser, the thermal dose, the coagulation and
the safety-point control, and keeps the run's state in one explicit object (RunState) that
solver.checkpoint writes and restores.

    run = Coupler(case, bundle)
    run.initialise()
    run.iterate(t_old, t_new)          # one time step of every part
    run.run(recorders, first_step)     # the time loop (recorders: solver.recorders)

Collective: construct and call on every rank.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .bioheat import BioheatProblem
from .boundaries import boundary_report
from .coagulation import CoagulationModel
from .config import Case
from .control import ControlLoop
from .dose import DoseTracker
from .errors import SolverError
from .laser import Laser
from .manufactured import ManufacturedSolution
from .metrics import located_max
from .sources import case_loads, laser_loads


@dataclass
class RunState:
    """Everything of a run that changes over time beside the fields (solver.checkpoint
    writes and restores it): step and time (s), the control loop's laser gate (0 or 1), the
    power log (t0, t1, requested W, delivered W per step) and the recorders' series."""

    step: int = 0
    time_s: float = 0.0
    laser_gate: float = 1.0
    power_log: list[tuple[float, float, float, float]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # probe rows' times (s)
    rows: list[Any] = field(default_factory=list)  # probe rows (per probe: T, then other fields)
    peak: dict = field(default_factory=lambda: {"value": float("-inf"), "where": None, "time": 0.0})
    control: Any = None  # solver.control.ControlLoop
    critical: Any = None  # solver.metrics.CriticalTracker (dose runs)
    recorder: Any = None  # solver.sampling.CriticalRecorder: critical maxima per output step
    watch: Any = None  # solver.temperature_range.TemperatureWatch


class Coupler:
    """Heat + laser + dose + coagulation + control of one case."""

    def __init__(self, case: Case, bundle):
        self.case, self.bundle = case, bundle
        self.heat = heat = BioheatProblem(case, bundle)
        heat.add_loads(case_loads(heat))
        self.laser = Laser(case, bundle, heat.V, pattern_of=(heat.A, heat.a_form)) if case.applicator else None
        if self.laser is not None:
            heat.add_loads(laser_loads(self.laser))
        self.manufactured = ManufacturedSolution(heat) if case.manufactured else None
        self.dose = DoseTracker(heat) if not heat.steady else None
        self.coagulation = CoagulationModel(heat, self.dose, self.laser) if heat.lumped_perfusion else None
        self.state = RunState()
        self._coords = None

    # what the recorders, metrics and checkpoints read
    mesh = property(lambda self: self.heat.mesh)
    comm = property(lambda self: self.heat.comm)
    V = property(lambda self: self.heat.V)
    Q0 = property(lambda self: self.heat.Q0)
    T = property(lambda self: self.heat.T)
    tissues = property(lambda self: self.heat.tissues)
    steady = property(lambda self: self.heat.steady)
    startup = property(lambda self: self.heat.startup)
    stats = property(lambda self: self.heat.stats)

    def num_dofs(self) -> int:
        return self.heat.num_dofs()

    def num_cells(self) -> int:
        return self.heat.num_cells()

    def max_temperature(self) -> tuple[float, list[float]]:
        """Global maximum of the nodal temperatures (C) and where (m). Collective."""
        if self._coords is None:
            self._coords = self.V.tabulate_dof_coordinates()  # once: the mesh does not move
        owned = np.arange(self.V.dofmap.index_map.size_local)
        return located_max(self.comm, self.T.x.array, owned, self._coords)

    def solver_types(self) -> tuple[str, str]:
        return self.heat.solver_types()

    def boundary_report(self) -> list[dict]:
        return boundary_report(self.heat)

    def l2_error(self, t: float) -> float:
        """L2 error (K m^{3/2}) against the manufactured solution at t (manufactured cases)."""
        return self.manufactured.l2_error(t)

    # ------------------------------------------------------------------ initialise / iterate
    def initialise(self) -> None:
        """Initial temperature (the manufactured solution's, or initial.temperature_C) and
        the dose tracker's start."""
        if self.manufactured is not None:
            self.manufactured.interpolate(self.T, 0.0)
        else:
            self.T.x.array[:] = self.case.initial.temperature_C
        self.T.x.scatter_forward()
        if self.dose is not None:
            self.dose.start()

    set_initial = initialise

    def solve_steady(self) -> None:
        self.heat.solve_steady()

    def iterate(self, t_old: float, t_new: float) -> None:
        """One time step of every part: heat (in half steps after a discontinuity, with the
        dose integrated over each), the power log, then the damage-driven coagulation."""
        st = self.state
        parts = self.heat.substeps(t_old, t_new, st.laser_gate)
        requested = delivered = 0.0
        for t0, t1, half in parts:
            if self.dose is not None:
                self.dose.before_step()
            r, d = self.heat.advance(t0, t1, st.laser_gate, half)
            requested, delivered = requested + r, delivered + d
            if self.dose is not None:
                self.dose.after_step(t1 - t0)
        if self.laser is not None:
            n = len(parts)
            st.power_log.append((t_old, t_new, requested if n == 1 else 0.5 * requested,
                                 delivered if n == 1 else 0.5 * delivered))
        if self.coagulation is not None:
            self.coagulation.after_step()

    step = iterate

    # ------------------------------------------------------------------ run
    def run(self, recorders: list, first_step: int, n_steps: int, dt: float) -> None:
        """The time loop: steps first_step..n_steps (a steady case: one solve), each followed
        by every recorder's after_step(n, t) in order. A SolverError is explained by the
        temperature watch (which sources, which step)."""
        watch = self.state.watch
        if self.steady:
            try:
                self.heat.solve_steady()
            except SolverError as err:
                raise watch.explain(err, 0, 0.0) from None
            for r in recorders:
                r.after_step(0, 0.0)
            return
        if first_step == 1:
            for r in recorders:
                r.start(0.0)
        t = (first_step - 1) * dt
        for n in range(first_step, n_steps + 1):
            t_new = n * dt
            try:
                self.iterate(t, t_new)
            except SolverError as err:
                raise watch.explain(err, n, t_new) from None
            t = t_new
            self.state.step, self.state.time_s = n, t
            for r in recorders:
                r.after_step(n, t)
