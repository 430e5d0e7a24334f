"""What planners read off a run: ablation zone, tumour coverage, critical-region safety.

All functions are collective and MPI-reduced. Volumes are integrals of the indicator of the
ablated set, with the P1/P2 dose field evaluated at quadrature points (degree 4), so the
level-set boundary is resolved inside cells rather than snapped to whole cells.
"""

from __future__ import annotations

import math

import numpy as np

from . import compat  # noqa: F401  (import order)
import ufl
from dolfinx import fem
from mpi4py import MPI


def ablation_field(problem) -> tuple[fem.Function, float, str]:
    """(field, threshold, label) of the case's ablation criterion."""
    cfg = problem.case.damage
    dose = problem.dose
    if cfg.ablation_criterion == "omega":
        return dose.omega, cfg.ablation_omega, f"Omega >= {cfg.ablation_omega:g}"
    if cfg.ablation_criterion == "cem43":
        return dose.cem43, cfg.ablation_cem43_min, f"CEM43 >= {cfg.ablation_cem43_min:g} min"
    return dose.T_max, cfg.ablation_isotherm_C, f"max T >= {cfg.ablation_isotherm_C:g} C"


class RegionNodes:
    """Owned nodes (dofs) of each region, for maxima over regions."""

    def __init__(self, problem):
        V = problem.V
        n_owned = V.dofmap.index_map.size_local
        self.nodes = {}
        for region, tag in problem.bundle.regions.items():
            cells = problem.bundle.cell_tags.find(tag)
            dofs = np.unique(V.dofmap.list[cells].reshape(-1))
            self.nodes[region] = dofs[dofs < n_owned]
        self.coords = V.tabulate_dof_coordinates()
        self.comm = problem.comm

    def max(self, region: str, values: np.ndarray) -> float:
        idx = self.nodes[region]
        local = float(values[idx].max()) if len(idx) else -math.inf
        return self.comm.allreduce(local, op=MPI.MAX)

    def argmax(self, region: str, values: np.ndarray) -> tuple[float, list[float]]:
        """(maximum over the region's nodes, the node's coordinates in m)."""
        idx = self.nodes[region]
        if len(idx):
            k = idx[int(np.argmax(values[idx]))]
            local = (float(values[k]), self.comm.rank)
            where = self.coords[k].tolist()
        else:
            local, where = (-math.inf, self.comm.rank), None
        value, rank = self.comm.allreduce(local, op=MPI.MAXLOC)
        return value, self.comm.bcast(where, root=rank)


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


def _volume(problem, indicator, region_tag=None) -> float:
    dx = ufl.Measure("dx", domain=problem.mesh, subdomain_data=problem.bundle.cell_tags,
                     metadata={"quadrature_degree": 4})
    measure = dx(region_tag) if region_tag is not None else dx
    return problem.comm.allreduce(fem.assemble_scalar(fem.form(indicator * measure)), op=MPI.SUM)


def _boundary_nodes(problem, ablated: np.ndarray) -> np.ndarray:
    """Coordinates (gathered on every rank) of ablated nodes next to a non-ablated node."""
    V = problem.V
    cells = V.dofmap.list
    a = ablated[cells]
    mixed = a.any(axis=1) & ~a.all(axis=1)
    dofs = np.unique(cells[mixed].reshape(-1))
    dofs = dofs[ablated[dofs] & (dofs < V.dofmap.index_map.size_local)]
    coords = V.tabulate_dof_coordinates()[dofs]
    gathered = problem.comm.allgather(coords)
    return np.concatenate(gathered) if gathered else np.zeros((0, 3))


def _min_distance(points: np.ndarray, targets: np.ndarray, chunk: int = 2048) -> float:
    if len(points) == 0 or len(targets) == 0:
        return math.inf
    best = math.inf
    for i in range(0, len(points), chunk):
        d = np.linalg.norm(points[i : i + chunk, None, :] - targets[None, :, :], axis=2)
        best = min(best, float(d.min()))
    return best


def _max_min_distance(points: np.ndarray, targets: np.ndarray, chunk: int = 1024) -> float:
    """max over points of the distance to the nearest target."""
    if len(points) == 0 or len(targets) == 0:
        return 0.0
    worst = 0.0
    for i in range(0, len(points), chunk):
        d = np.linalg.norm(points[i : i + chunk, None, :] - targets[None, :, :], axis=2)
        worst = max(worst, float(d.min(axis=1).max()))
    return worst


def compute(problem, critical: CriticalTracker | None, region_nodes: RegionNodes) -> dict:
    """Ablation-zone and safety metrics at the end of a transient run."""
    case = problem.case
    comm = problem.comm
    field, threshold, label = ablation_field(problem)
    values = field.x.array
    ablated_nodes = values >= threshold
    indicator = ufl.conditional(ufl.ge(field, threshold), 1.0, 0.0)
    tags = problem.bundle.regions
    region_volume = {r: _volume(problem, 1.0, t) for r, t in tags.items()}
    region_ablated = {r: _volume(problem, indicator, t) for r, t in tags.items()}
    total = sum(region_ablated.values())
    out: dict = {
        "criterion": label,
        "ablation_volume_m3": total,
        "ablation_volume_mL": total * 1e6,
    }
    # extents along and across the (first) applicator axis, from ablated nodes
    coords = region_nodes.coords
    n_owned = problem.V.dofmap.index_map.size_local
    if case.applicator:
        ap = case.applicator[0]
        axis = np.asarray(ap.axis)
        origin = np.asarray(ap.positions()[0][1])
        pts = coords[:n_owned][ablated_nodes[:n_owned]] - origin
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
    boundary = _boundary_nodes(problem, ablated_nodes)
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
        region_pts = coords[idx]
        overlap = ablated_nodes[idx]
        n_overlap = comm.allreduce(int(overlap.sum()), op=MPI.SUM)
        if n_overlap == 0:
            local = _min_distance(region_pts, boundary)
            margin = comm.allreduce(local, op=MPI.MIN)
            if not math.isfinite(margin):
                margin = None  # no ablation zone at all
        else:
            local = _max_min_distance(region_pts[overlap], boundary)
            margin = -comm.allreduce(local, op=MPI.MAX)
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
