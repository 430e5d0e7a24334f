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
import ufl
from dolfinx import fem
from mpi4py import MPI

from .damage import damage_fraction
from .fem import assemble_vector, region_dofs, region_function
from .sources import laser_load_name
from .optics import OpticalProperties

KELVIN = 273.15


def rylander_conductivity_factor(T_C) -> np.ndarray:
    """k(T) / k(37 C) with k(u) = 0.6489 + 0.0427 atan(0.02529 (u - 315.314)), u in K."""
    def k(u):
        return 0.6489 + 0.0427 * np.arctan(0.02529 * (u - 315.314))

    return k(np.asarray(T_C, dtype=float) + KELVIN) / k(37.0 + KELVIN)


class CoagulationModel:
    """Moves perfusion, optics and optionally k(T) with the damage of ``dose`` (solver.dose),
    through the heat problem's operator-update API (BioheatProblem.set_lumped_perfusion,
    set_conductivity, set_load_vector). Collective."""

    def __init__(self, heat, dose, laser=None):
        self.heat, self.dose, self.laser = heat, dose, laser
        self.comm = heat.comm
        self.cfg = heat.case.coagulation
        V, Q0, tissues = heat.V, heat.Q0, heat.tissues
        tags, regions = heat.bundle.cell_tags, heat.bundle.regions
        self.regions = region_dofs(Q0, tags, regions)
        W1 = region_function(Q0, tags, regions, lambda r: tissues[r].perfusion_coagulated_W_per_m3K)
        # lumped perfusion vectors (native W0 and coagulated W1), assembled once
        v = ufl.TestFunction(V)
        W0, Ta = heat.props["W"], heat.props["T_a"]
        self.n_owned = n = V.dofmap.index_map.size_local
        self.w0, self.w1, self.wta0, self.wta1 = (
            assemble_vector(e * v * heat.dx).array[:n].copy() for e in (W0, W1, W0 * Ta, W1 * Ta)
        )
        self.d = np.zeros_like(heat.T.x.array)
        self.apply()
        # optics
        self.d_cells_at_light = None
        self.d_fn = fem.Function(V)
        self.d_cells = fem.Function(Q0)
        self.light_refreshes = 0
        if laser is not None:
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
            self.k0 = heat.props["k"].x.array.copy()
            self.T_cells = fem.Function(Q0)

    def apply(self) -> None:
        """Put the current (lumped) perfusion w = w0 + d (w1 - w0) into the heat operators."""
        d = self.d[: self.n_owned]
        self.heat.set_lumped_perfusion(self.w0 + d * (self.w1 - self.w0), self.wta0 + d * (self.wta1 - self.wta0))

    # ------------------------------------------------------------------ per step
    def after_step(self) -> None:
        """Move the properties with the damage the dose tracker has just integrated."""
        self.update_operators()
        if self.optics_change:
            self._maybe_refresh_light()

    def update_operators(self) -> None:
        """Perfusion (and k(T)) of the current Omega and T in the operators. Also used to
        rebuild them from a checkpoint's Omega and T (solver.checkpoint)."""
        self.d[:] = damage_fraction(self.dose.omega.x.array)
        if self.cfg.temperature_dependent_conductivity:
            self.T_cells.interpolate(self.heat.T)
            self.heat.set_conductivity(self.k0 * rylander_conductivity_factor(self.T_cells.x.array))
        self.apply()

    def _maybe_refresh_light(self) -> None:
        self.d_fn.x.array[:] = self.d
        self.d_cells.interpolate(self.d_fn)  # cell-midpoint value = mean of the P1 vertex values
        dc = self.d_cells.x.array
        if self.d_cells_at_light is None:
            self.d_cells_at_light = np.zeros_like(dc)
        change = float(np.max(np.abs(dc - self.d_cells_at_light))) if dc.size else 0.0
        change = self.comm.allreduce(change, op=MPI.MAX)
        if change <= self.cfg.optical_refresh_tolerance:
            return
        self.refresh_light(dc)

    def refresh_light(self, dc: np.ndarray) -> None:
        """Re-solve the light with optical properties moved by the cell-wise damage fraction
        ``dc`` (DG0 array, local cells with ghosts). Collective. Deterministic, so a resumed
        run rebuilds the light of its checkpoint from ``d_cells_at_light`` alone."""
        mu_a = np.empty_like(dc)
        mus = np.empty_like(dc)
        for region, dofs in self.regions.items():
            n0, n1 = self.native[region], self.coag[region]
            mu_a[dofs] = n0.absorption_per_m + dc[dofs] * (n1.absorption_per_m - n0.absorption_per_m)
            mus[dofs] = n0.reduced_scattering_per_m + dc[dofs] * (
                n1.reduced_scattering_per_m - n0.reduced_scattering_per_m
            )
        self.laser.refresh_cellwise(mu_a, mus)
        for em in self.laser.emitters:
            self.heat.set_load_vector(laser_load_name(em), em.load)
        self.d_cells_at_light = dc.copy()
        self.light_refreshes += 1

    # ------------------------------------------------------------------ output
    def summary(self) -> dict:
        n = self.n_owned
        om = self.dose.omega.x.array
        om_max = self.comm.allreduce(float(om[:n].max()) if n else 0.0, op=MPI.MAX)
        return {
            "arrhenius_set": self.cfg.arrhenius_set,
            "max_omega": om_max,
            "light_refreshes": self.light_refreshes,
            "temperature_dependent_conductivity": self.cfg.temperature_dependent_conductivity,
        }
