"""Where the temperatures leave the model, and where they have no converged value.

- Singular neighbourhoods: the temperature of a point source grows like P / (4 pi k r) and
  that of a line source like log r; the nodal value at the source grows without bound under
  refinement (and the dose there is meaningless). Nodes within a radius of every point and
  segment source (``exclusion_radius_m``, at least 2 local cell sizes, so that the value at
  the radius is resolved) are left out of the peak temperature, the temperature checks and
  the critical-region maxima; summary.json says so and reports the raw nodal maximum too.
  Volumes (ablation, above 100 C) keep them: the singular ball's volume vanishes with its
  radius and it is certainly ablated.
- Model validity: above 100 C tissue water boils and chars, which Pennes with constant
  properties does not model: runs warn (console, summary.json, report.md) with where and
  when it first happened and the volume above 100 C. Above ``solver.temperature_ceiling_C``
  (default 150 C, see its description) or at any non-finite value the run stops with a
  SolverError (exit 3) naming the step, the time and the place.

All methods are collective.
"""

from __future__ import annotations

import math

import numpy as np

from . import compat  # noqa: F401  (import order)
from mpi4py import MPI

from .errors import SolverError
from .config import PointSource, SegmentSource
from .metrics import located_max
from .zone import ZoneSampler

from .zone import MODEL_LIMIT_C  # 100 C: water boils


def _distance_to_segment(x: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    s = np.clip(((x - a) @ ab) / float(ab @ ab), 0.0, 1.0)
    return np.linalg.norm(x - (a + s[:, None] * ab[None, :]), axis=1)


def _fmt_mm(where) -> str:
    return "[" + ", ".join(f"{1e3 * c:.2f}" for c in where) + "] mm"


class TemperatureWatch:
    """Singular-source exclusion, the peak temperature and the model-validity checks."""

    def __init__(self, problem):
        self.p = problem
        self.comm = problem.comm
        V = problem.V
        self.n_owned = V.dofmap.index_map.size_local
        self.coords = V.tabulate_dof_coordinates()
        self.ceiling = problem.case.solver.temperature_ceiling_C
        self.excluded = np.zeros(len(self.coords), dtype=bool)
        self.sources: list[dict] = []
        mesh = problem.mesh
        tdim = mesh.topology.dim
        n_cells = mesh.topology.index_map(tdim).size_local
        h = mesh.h(tdim, np.arange(n_cells, dtype=np.int32))
        cell_dofs = V.dofmap.list[:n_cells]
        for i, src in enumerate(problem.case.source):
            if isinstance(src, PointSource):
                p = np.asarray(src.position_m, float)
                dist = np.linalg.norm(self.coords - p[None, :], axis=1)
                kind = "point"
            elif isinstance(src, SegmentSource):
                dist = _distance_to_segment(self.coords, np.asarray(src.start_m, float), np.asarray(src.end_m, float))
                kind = "segment"
            else:
                continue
            # local cell size: the mean size (longest edge) of the cells with a node within the
            # requested radius (or, on a mesh coarser than the radius, of the nearest cells)
            cell_dist = dist[cell_dofs].min(axis=1) if n_cells else np.zeros(0)
            nearest = self.comm.allreduce(float(cell_dist.min()) if n_cells else math.inf, op=MPI.MIN)
            near = cell_dist <= max(src.exclusion_radius_m, nearest)
            total = self.comm.allreduce(np.array([float(h[near].sum()), float(near.sum())]), op=MPI.SUM)
            h_local = float(total[0] / total[1])
            radius = max(src.exclusion_radius_m, 2.0 * h_local)
            inside = dist <= radius
            self.excluded |= inside
            self.sources.append(
                {"source": f"source[{i}]", "type": kind, "exclusion_radius_m": radius,
                 "local_cell_size_m": h_local, "mask": inside, "max_nodal_temperature_C": -math.inf}
            )
        self.kept = ~self.excluded
        # owned node indices of each mask, once (the masks do not change; check runs every step)
        self._kept_owned = np.flatnonzero(self.kept[: self.n_owned])
        self._source_owned = [np.flatnonzero(s["mask"][: self.n_owned]) for s in self.sources]
        self.first_above_limit: dict | None = None

    # ------------------------------------------------------------------ reductions
    def _max(self, values: np.ndarray, owned: np.ndarray) -> tuple[float, list[float] | None]:
        """(max of values over the owned nodes ``owned`` (indices), where); (-inf, None) when empty."""
        return located_max(self.comm, values, owned, self.coords)

    def max_temperature(self) -> tuple[float, list[float] | None]:
        """Peak nodal temperature (C) outside the singular neighbourhoods, and where (m)."""
        return self._max(self.p.T.x.array, self._kept_owned)

    # ------------------------------------------------------------------ checks
    def check(self, step: int, t: float) -> tuple[float, list[float] | None]:
        """After a solve: stop on non-finite values anywhere or above the ceiling outside the
        singular neighbourhoods; remember the first time above 100 C. Returns the peak
        (max_temperature(): C, where in m), so a caller need not gather it again."""
        T = self.p.T.x.array
        for s, owned in zip(self.sources, self._source_owned):
            s["max_nodal_temperature_C"] = max(s["max_nodal_temperature_C"], self._max(T, owned)[0])
        value, where = self.max_temperature()
        if value > self.ceiling:
            raise SolverError(
                f"{self._when(step, t)}: temperature {value:.1f} C at {_fmt_mm(where)} exceeds "
                f"solver.temperature_ceiling_C = {self.ceiling:g} C; above 100 C the model (no "
                "vaporisation, no charring) does not hold: lower the power or shorten the dose"
            )
        if value > MODEL_LIMIT_C and self.first_above_limit is None:
            self.first_above_limit = {"step": step, "time_s": t, "temperature_C": value, "location_m": where}
        return value, where

    def explain(self, err: SolverError, step: int, t: float) -> SolverError:
        """The solver's error with the step, the time and where the field is not finite."""
        T = self.p.T.x.array[: self.n_owned]
        bad = np.flatnonzero(~np.isfinite(T))
        local = self.coords[bad[0]].tolist() if len(bad) else None
        found = [w for w in self.comm.allgather(local) if w is not None]
        place = f" (non-finite at {_fmt_mm(found[0])})" if found else ""
        return SolverError(f"{self._when(step, t)}: {err}{place}")

    def _when(self, step: int, t: float) -> str:
        return "steady solve" if self.p.steady else f"step {step}, t = {t:g} s"

    # ------------------------------------------------------------------ summary
    def volume_above_limit(self) -> float:
        """Volume (m^3) where the maximum temperature over time reached 100 C (quadrature)."""
        dose = self.p.dose
        if dose is not None:
            zone = dose.zone
        else:  # steady: the temperature itself
            n = self.p.mesh.topology.index_map(self.p.mesh.topology.dim).size_local
            zone = ZoneSampler(self.p, "isotherm", np.zeros(n), np.zeros(n))
            zone.start()
        return sum(zone.volume_by_region(zone.T_max >= MODEL_LIMIT_C).values())

    def summary(self, peak: dict) -> tuple[dict, list[str]]:
        """(summary.json entries, warnings for the console). ``peak``: value, where, time of
        the run's peak outside the singular neighbourhoods."""
        out: dict = {}
        warnings: list[str] = []
        if self.sources:
            raw = max(s["max_nodal_temperature_C"] for s in self.sources)
            out["singular_sources"] = {
                "note": "nodes within exclusion_radius_m of point/segment heat sources have no converged "
                "temperature; they are left out of max_temperature_C, the temperature checks and the "
                "critical-region maxima (volumes keep them)",
                "sources": [{k: v for k, v in s.items() if k != "mask"} for s in self.sources],
                "max_nodal_temperature_including_sources_C": max(raw, peak["value"]),
            }
            radii = ", ".join(f"{s['source']} {1e3 * s['exclusion_radius_m']:.2f} mm" for s in self.sources)
            above = f"; above {MODEL_LIMIT_C:g} C, where the model does not hold" if raw > MODEL_LIMIT_C else ""
            warnings.append(
                f"peak temperature excludes the singular neighbourhood of point/line sources ({radii}); "
                f"raw nodal maximum there {raw:.1f} C (not a converged value{above})"
            )
        above = self.first_above_limit
        entry: dict = {"model_limit_C": MODEL_LIMIT_C, "ceiling_C": self.ceiling, "above_model_limit": above is not None}
        if above is not None:
            volume = self.volume_above_limit()
            entry.update(
                {
                    "first_above_time_s": above["time_s"],
                    "first_above_location_m": above["location_m"],
                    "peak_C": peak["value"],
                    "peak_time_s": peak["time"],
                    "peak_location_m": peak["where"],
                    "volume_above_model_limit_m3": volume,
                    "warning": f"temperatures above {MODEL_LIMIT_C:g} C (peak {peak['value']:.1f} C at "
                    f"{_fmt_mm(peak['where'])}, t = {peak['time']:g} s; first at t = {above['time_s']:g} s, "
                    f"{_fmt_mm(above['location_m'])}; {1e6 * volume:.3g} mL reached {MODEL_LIMIT_C:g} C): "
                    "the model ignores vaporisation and charring, so temperatures and doses there are "
                    "overestimates",
                }
            )
            warnings.append(entry["warning"])
        out["temperature_range"] = entry
        return out, warnings
