"""What planners read off a run: ablation zone, tumour coverage, critical-region safety.

All functions are collective and MPI-reduced. The ablated set is where the dose of the
temperature solution, integrated at quadrature points during the run (solver.zone), reaches
the criterion's threshold; volumes are the quadrature of that indicator, extents and
margins come from the same points. Nodal doses (exact at the nodes) give the maxima over
critical regions.
"""

from __future__ import annotations

import math

import numpy as np

from . import compat  # noqa: F401  (import order)
from dolfinx import fem
from mpi4py import MPI

from .zone import ZONE_QUADRATURE_DEGREE, distance_max_min, distance_min


def ablation_field(problem) -> tuple[fem.Function, float, str]:
    """(nodal field, threshold, label) of the case's ablation criterion. The nodal field is
    for display only (report maps); the zone itself is measured by solver.zone."""
    cfg = problem.case.damage
    dose = problem.dose
    if cfg.ablation_criterion == "omega":
        return dose.omega, cfg.ablation_omega, f"Omega >= {cfg.ablation_omega:g}"
    if cfg.ablation_criterion == "cem43":
        return dose.cem43, cfg.ablation_cem43_min, f"CEM43 >= {cfg.ablation_cem43_min:g} min"
    return dose.T_max, cfg.ablation_isotherm_C, f"max T >= {cfg.ablation_isotherm_C:g} C"


class RegionNodes:
    """Owned nodes (dofs) of each region, for maxima over regions."""

    def __init__(self, problem, exclude: np.ndarray | None = None):
        """``exclude``: bool per local dof, nodes to leave out (singular neighbourhoods of point
        and line sources, solver.temperature_range)."""
        V = problem.V
        n_owned = V.dofmap.index_map.size_local
        self.nodes = {}
        # A node belongs to a region when any cell around it does. That cell may live only on
        # another rank (a vertex neighbour outside this rank's ghost layer), so every rank marks
        # the nodes of its cells and the marks are summed onto the owners (reverse scatter):
        # the node sets, and the maxima over them, do not depend on the partition.
        from dolfinx import la

        mark = fem.Function(V)
        for region, tag in problem.bundle.regions.items():
            cells = problem.bundle.cell_tags.find(tag)
            mark.x.array[:] = 0.0
            mark.x.array[V.dofmap.list[cells].reshape(-1)] = 1.0
            mark.x.scatter_reverse(la.InsertMode.add)
            dofs = np.flatnonzero(mark.x.array[:n_owned] > 0.0).astype(np.int32)
            if exclude is not None:
                dofs = dofs[~exclude[dofs]]
            self.nodes[region] = dofs
        self.coords = V.tabulate_dof_coordinates()
        self.comm = problem.comm

    def max(self, region: str, values: np.ndarray) -> float:
        idx = self.nodes[region]
        local = float(values[idx].max()) if len(idx) else -math.inf
        return self.comm.allreduce(local, op=MPI.MAX)

    def argmax(self, region: str, values: np.ndarray) -> tuple[float, list[float]]:
        """(maximum over the region's nodes, the node's coordinates in m)."""
        return located_max(self.comm, values, self.nodes[region], self.coords)


def located_max(comm, values: np.ndarray, idx: np.ndarray, coords: np.ndarray) -> tuple[float, list[float] | None]:
    """(max of ``values`` over the local nodes ``idx`` of all ranks, that node's coordinates in m);
    (-inf, None) when no rank has a node. Collective; the same answer on every rank."""
    if len(idx):
        k = idx[int(np.argmax(values[idx]))]
        local = (float(values[k]), comm.rank)
        where = coords[k].tolist()
    else:
        local, where = (-math.inf, comm.rank), None
    value, rank = comm.allreduce(local, op=MPI.MAXLOC)
    return value, comm.bcast(where, root=rank)


class CriticalTracker:
    """Per critical region: the running maximum temperature and when it happened."""

    def __init__(self, problem, regions: list[str], region_nodes: RegionNodes):
        self.p = problem
        self.regions = regions
        self.rn = region_nodes
        self.peak = {r: (-math.inf, 0.0, None) for r in regions}

    def update(self, t: float) -> None:
        T = self.p.T.x.array
        for r in self.regions:
            v = self.rn.max(r, T)
            if v > self.peak[r][0]:
                self.peak[r] = (v, t, None)

    def locate_peaks(self) -> None:
        """Where each region's hottest node was (from the max-over-time field)."""
        for r in self.regions:
            v, where = self.rn.argmax(r, self.p.dose.T_max.x.array)
            self.peak[r] = (self.peak[r][0], self.peak[r][1], where)


def compute(problem, critical: CriticalTracker | None, region_nodes: RegionNodes) -> dict:
    """Ablation-zone and safety metrics at the end of a transient run."""
    case = problem.case
    comm = problem.comm
    zone = problem.dose.zone
    _, threshold, label = ablation_field(problem)
    ablated = zone.dose() >= threshold  # (owned cells, quadrature points)
    tags = problem.bundle.regions
    region_volume = zone.volume_by_region(np.ones_like(ablated))
    region_ablated = zone.volume_by_region(ablated)
    total = sum(region_ablated.values())
    out: dict = {
        "criterion": label,
        "ablation_volume_m3": total,
        "ablation_volume_mL": total * 1e6,
        "zone_sampling": f"dose integrated at {zone.n_points} quadrature points per cell "
        f"(degree {ZONE_QUADRATURE_DEGREE}) from the temperature solution",
    }
    coords = region_nodes.coords
    hit_cells = np.flatnonzero(ablated.any(axis=1))
    ablated_pts = zone.coordinates(zone.cells[hit_cells])[ablated[hit_cells]]  # (n, 3), owned
    # extents along and across the (first) applicator axis, from the ablated points
    if case.applicator:
        ap = case.applicator[0]
        axis = np.asarray(ap.axis)
        origin = np.asarray(ap.positions()[0][1])
        pts = ablated_pts - origin
        s = pts @ axis if len(pts) else np.zeros(0)
        radial = np.linalg.norm(pts - np.outer(s, axis), axis=1) if len(pts) else np.zeros(0)
        smin = comm.allreduce(float(s.min()) if len(s) else math.inf, op=MPI.MIN)
        smax = comm.allreduce(float(s.max()) if len(s) else -math.inf, op=MPI.MAX)
        rmax = comm.allreduce(float(radial.max()) if len(radial) else 0.0, op=MPI.MAX)
        out["extent_along_axis_m"] = max(smax - smin, 0.0) if math.isfinite(smin) else 0.0
        out["extent_across_axis_m"] = 2.0 * rmax
    tumours = case.tumour_regions()
    out["tumour_coverage"] = {
        r: (region_ablated[r] / region_volume[r] if region_volume[r] > 0 else 0.0) for r in tumours if r in tags
    }
    out["healthy_ablated_volume_m3"] = {r: region_ablated[r] for r in tags if r not in tumours}
    out["region_volume_m3"] = region_volume

    # critical regions
    boundary = zone.boundary_points(ablated, problem.V)
    dose = problem.dose
    cfg = case.damage
    crit = {}
    t_end = case.time.num_steps * case.time.dt_s
    for r in case.critical_regions():
        idx = region_nodes.nodes[r]
        if critical is not None:
            critical.locate_peaks()
            peak_T, peak_t, peak_at = critical.peak[r]
        else:
            (peak_T, peak_at), peak_t = region_nodes.argmax(r, dose.T_max.x.array), None
        in_region = zone.region_of_cell == tags[r]
        n_overlap = comm.allreduce(int(ablated[in_region].sum()), op=MPI.SUM)
        if n_overlap == 0:
            margin = comm.allreduce(distance_min(coords[idx], boundary), op=MPI.MIN)
            if not math.isfinite(margin):
                margin = None  # no ablation zone at all
        else:
            region_hit = hit_cells[in_region[hit_cells]]
            inside = zone.coordinates(zone.cells[region_hit])[ablated[region_hit]]
            margin = -comm.allreduce(distance_max_min(inside, boundary), op=MPI.MAX)
        entry = {
            "max_temperature_C": peak_T,
            "max_temperature_time_s": peak_t,
            "max_temperature_location_m": peak_at,
            "max_cem43_min": region_nodes.max(r, dose.cem43.x.array),
            "max_omega": region_nodes.max(r, dose.omega.x.array),
            "time_above_43C_s": region_nodes.max(r, dose.time_above[43.0]),
            "time_above_45C_s": region_nodes.max(r, dose.time_above[45.0]),
            "margin_m": margin,
            "ablated_volume_m3": region_ablated[r],
        }
        # still rising at the end: the maximum came at the last step, so it is a lower bound
        entry["still_heating_at_end"] = bool(peak_t is not None and peak_t >= t_end - 0.5 * case.time.dt_s)
        entry["safe"] = bool(
            entry["max_temperature_C"] < cfg.max_temperature_C and entry["max_cem43_min"] < cfg.max_cem43_min
        )
        crit[r] = entry
    out["critical"] = crit
    failing = [r for r, e in crit.items() if not e["safe"]]
    if not crit:
        verdict = "no critical regions in this case"
    elif failing:
        verdict = "FAIL: " + "; ".join(
            f"{r} reaches {crit[r]['max_temperature_C']:.2f} C (limit {cfg.max_temperature_C:g}) and "
            f"{crit[r]['max_cem43_min']:.3g} CEM43 min (limit {cfg.max_cem43_min:g})"
            for r in failing
        )
    else:
        verdict = "PASS: " + "; ".join(
            f"{r} max {e['max_temperature_C']:.2f} C < {cfg.max_temperature_C:g} C, "
            f"{e['max_cem43_min']:.3g} < {cfg.max_cem43_min:g} CEM43 min"
            for r, e in crit.items()
        )
    rising = [r for r, e in crit.items() if e["still_heating_at_end"]]
    if rising:
        verdict += (
            f" [LOWER BOUND: {', '.join(rising)} still heating at the end (t = {t_end:g} s); "
            "simulate a longer cooling period]"
        )
    out["safety"] = {
        "limits": {"max_temperature_C": cfg.max_temperature_C, "max_cem43_min": cfg.max_cem43_min},
        "verdict": verdict,
        "pass": bool(crit) and not failing,
        "lower_bound": bool(rising),
    }
    return out
