"""What the report needs from the finite-element solution (collective; ``solver.report`` draws it
without FEM).

- ``CriticalRecorder``: each critical region's maximum temperature (C) and maximum CEM43 (min)
  at every output step, written to ``critical.csv``.
- ``report_data(problem, region_nodes)``: planes in the patient's frame (axial through the tip,
  axial through the hottest critical node, sagittal through the canal, the plane along the
  applicator), each sampled on a grid of ``PLANE_SPACING_M`` by exact evaluation of the FE
  fields at the grid points (region from the tag of the cell holding the point); the window is
  fitted to the ablation zone, the tip and the hottest critical nodes plus ``WINDOW_MARGIN_M``.
  Also the hottest node of each critical region, the catheter, probes and monitors, and
  volume-weighted cumulative dose-volume histograms (``dvh``).

Frame of spine cases (meshes.spine): origin at the vertebral body centre, x patient left,
y posterior, z cranial; coordinates are kept in metres here, the report shows millimetres.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from . import compat  # noqa: F401  (import order)
import basix
import ufl
from dolfinx import fem
from mpi4py import MPI

from .fem import region_function
from .probes import evaluate, locate
from .metrics import RegionNodes, ablation_field
from .zone import DOSE_FLOOR_FRACTION

PLANE_SPACING_M = 0.00015  # finest grid spacing (m): resolves a 0.35 mm cortex, 0.5 mm dura, 0.8 mm catheter
MAX_GRID = 320  # points per side at most (the spacing grows for larger windows)
WINDOW_MARGIN_M = 0.005  # margin around the ablation zone, tip and hot spots (m)
MIN_HALF_WIDTH_M = 0.008  # smallest half-width of a window (m)
# Window ends are rounded outward to multiples of this (m): the zone's box can move by a node
# between partitions (a node's Omega next to 1 differs in the last bits), and the grid must not.
WINDOW_QUANTUM_M = 0.0025
PLANE_MARK_DISTANCE_M = 0.001  # probes/monitors/hot spots within this distance of a plane are drawn on it
DVH_QUADRATURE_DEGREE = 4
DVH_T_STEP_C = 0.05
# log10 of CEM43 (min) and of Omega, up to the CEM43 cap (1e12 min, solver.damage): the T8 tumour
# still had 30 % of its volume above 1e8 min, where the levels used to end
DVH_LOG_LEVELS = np.arange(-6.0, 12.0001, 0.02)


# --------------------------------------------------------------------------- time series


class CriticalRecorder:
    """Each critical region's maximum nodal temperature (C) and maximum CEM43 (min) over time.

    ``record(t)`` at every output step (collective), ``write(path)`` on rank 0 writes
    ``critical.csv``: ``time_s``, then per region ``REGION.max_temperature_C`` and
    ``REGION.max_cem43_min``."""

    def __init__(self, problem, regions: list[str], region_nodes):
        self.p = problem
        self.regions = list(regions)
        self.rn = region_nodes
        self.rows: list[list[float]] = []

    def record(self, t: float) -> None:
        T = self.p.T.x.array
        cem = self.p.dose.cem43.x.array
        row = [t]
        for r in self.regions:
            row += [self.rn.max(r, T), self.rn.max(r, cem)]
        self.rows.append(row)

    def write(self, path: Path) -> None:
        if not self.regions:
            return
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["time_s"] + [f"{r}.{q}" for r in self.regions for q in ("max_temperature_C", "max_cem43_min")])
            for row in self.rows:
                w.writerow([f"{v:.9g}" for v in row])


# --------------------------------------------------------------------------- DVH


class QuadratureSampler:
    """Values of ``functions`` at the degree-``DVH_QUADRATURE_DEGREE`` quadrature points of a
    region's owned cells, with each point's volume weight. The cell volumes and one compiled
    expression per function are made once (collective, JIT) and serve every region."""

    def __init__(self, problem, functions):
        mesh = self.mesh = problem.mesh
        self.cell_tags = problem.bundle.cell_tags
        self.n_owned = mesh.topology.index_map(mesh.topology.dim).size_local
        X, w = basix.make_quadrature(basix.CellType[mesh.topology.cell_name()], DVH_QUADRATURE_DEGREE)
        self.w = w / w.sum()
        self.Q0 = problem.Q0
        self.vol = fem.assemble_vector(fem.form(ufl.TestFunction(self.Q0) * ufl.dx(domain=mesh))).array
        self.expressions = [fem.Expression(f, X) for f in functions]  # collective (JIT): every rank

    def __call__(self, tag: int) -> tuple[np.ndarray, np.ndarray]:
        """(values (n_functions, n_points), weights (n_points,)) on the owned cells tagged ``tag``;
        the weights (m3) sum to the region's volume on this rank for affine cells. Not collective."""
        cells = self.cell_tags.find(tag)
        cells = np.ascontiguousarray(cells[cells < self.n_owned], dtype=np.int32)
        cell_dof = self.Q0.dofmap.list[cells].reshape(-1)
        weights = (self.vol[cell_dof][:, None] * self.w[None, :]).reshape(-1)
        values = [np.asarray(e.eval(self.mesh, cells)).reshape(-1) if len(cells) else np.zeros(0) for e in self.expressions]
        return np.array(values).reshape(len(self.expressions), -1), weights


def cumulative_volume_fraction(values: np.ndarray, weights: np.ndarray, levels: np.ndarray, comm) -> tuple[np.ndarray, float]:
    """Fraction (0..1) of the volume where value >= level, for increasing ``levels``, and the
    total volume (m3), reduced over ranks. Values below levels[0] count in the total only."""
    idx = np.searchsorted(levels, values, side="right") - 1  # bin k: levels[k] <= v < levels[k+1]
    keep = idx >= 0
    per_bin = np.bincount(idx[keep], weights=weights[keep], minlength=len(levels)).astype(float)
    per_bin = _reduce3(comm, per_bin, MPI.SUM)
    total = comm.allreduce(float(weights.sum()), op=MPI.SUM)
    above = np.cumsum(per_bin[::-1])[::-1]
    return (above / total if total > 0 else np.zeros_like(above)), total


def dvh(problem, regions: list[str]) -> dict[str, np.ndarray]:
    """Cumulative dose-volume histograms of each region: % of the region's volume where the
    maximum temperature (or, steady, the temperature) >= level, and with a dose, CEM43 and
    Omega >= level. Volume-weighted with a degree-4 quadrature rule in each cell; the ablation
    criterion's dose (Omega or CEM43) from the zone's quadrature-point doses (_with_zone_dose)."""
    comm = problem.comm
    dose = problem.dose
    T = dose.T_max if dose is not None else problem.T
    funcs = [T] + ([dose.cem43, dose.omega] if dose is not None else [])
    for f in funcs:
        f.x.scatter_forward()
    sampler = QuadratureSampler(problem, funcs)
    samples = {r: sampler(problem.bundle.regions[r]) for r in regions}
    zone = getattr(dose, "zone", None) if dose is not None else None
    floors = {}
    if zone is not None:
        dmg = problem.case.damage
        floors = {
            "omega": math.log10(DOSE_FLOOR_FRACTION * dmg.ablation_omega),
            "cem43": math.log10(DOSE_FLOOR_FRACTION * dmg.ablation_cem43_min),
        }
    lo = min((float(v[0].min()) for v, _ in samples.values() if v.shape[1]), default=math.inf)
    hi = max((float(v[0].max()) for v, _ in samples.values() if v.shape[1]), default=-math.inf)
    lo, hi = comm.allreduce(lo, op=MPI.MIN), comm.allreduce(hi, op=MPI.MAX)
    if not math.isfinite(lo):
        return {}
    T_levels = np.arange(math.floor(lo), math.ceil(hi) + DVH_T_STEP_C, DVH_T_STEP_C)
    log_levels = np.concatenate([[-np.inf], DVH_LOG_LEVELS])
    out: dict[str, np.ndarray] = {"dvh_T_levels_C": T_levels, "dvh_log10_levels": log_levels[1:]}
    for r, (vals, w) in samples.items():
        frac, total = cumulative_volume_fraction(vals[0], w, T_levels, comm)
        out[f"dvh_T_{r}"] = 100.0 * frac
        out[f"dvh_volume_m3_{r}"] = np.array(total)
        if dose is not None:
            for k, q in ((1, "cem43"), (2, "omega")):
                with np.errstate(divide="ignore"):
                    logv = np.log10(np.maximum(vals[k], 0.0))
                frac, _ = cumulative_volume_fraction(logv, w, log_levels, comm)
                if zone is not None and zone.criterion == q:
                    frac = _with_zone_dose(frac, zone, problem.bundle.regions[r], log_levels, floors[q], comm)
                out[f"dvh_{q}_{r}"] = 100.0 * frac[1:]  # level -inf (100 %) dropped
                out[f"dvh_{q}_any_{r}"] = np.array(100.0 * frac[0])
    return out


def _with_zone_dose(frac_nodal, zone, tag: int, log_levels, floor_log10: float, comm) -> np.ndarray:
    """The DVH of the ablation criterion's dose from the dose integrated at the zone's
    quadrature points (solver.zone: the same numbers as the ablation volume and the tumour
    coverage), not from the nodal interpolant, whose values between nodes decades apart are
    not the dose. The zone integrates only above DOSE_FLOOR_FRACTION of the threshold
    (``floor_log10``): below that level the nodal curve is used, raised to the zone's value at
    the floor so the histogram stays monotone."""
    cells = np.flatnonzero(zone.region_of_cell == tag)
    with np.errstate(divide="ignore"):
        logv = np.log10(np.maximum(zone.dose()[cells].reshape(-1), 0.0))
    frac_zone, _ = cumulative_volume_fraction(logv, zone.dV[cells].reshape(-1), log_levels, comm)
    above = log_levels >= floor_log10
    if not above.any():
        return frac_nodal
    at_floor = frac_zone[np.argmax(above)]
    return np.where(above, frac_zone, np.maximum(frac_nodal, at_floor))


# --------------------------------------------------------------------------- planes


def _unit(v) -> np.ndarray:
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def _perpendicular(a: np.ndarray, towards: np.ndarray) -> np.ndarray | None:
    w = towards - (towards @ a) * a
    n = np.linalg.norm(w)
    return None if n < 1e-9 else w / n


def hot_spots(problem, region_nodes, regions: list[str]) -> dict[str, dict]:
    """Per critical region: the node with the highest maximum temperature (value C, where m) and
    the highest CEM43 (min)."""
    dose = problem.dose
    out = {}
    for r in regions:
        T = dose.T_max.x.array if dose is not None else problem.T.x.array
        value, where = region_nodes.argmax(r, T)
        entry = {"max_temperature_C": value, "where_m": where}
        if dose is not None:
            entry["max_cem43_min"] = region_nodes.max(r, dose.cem43.x.array)
        out[r] = entry
    return out


def _focus_box(problem, ablated: np.ndarray | None, extra_points: list) -> tuple[np.ndarray, np.ndarray]:
    """Bounding box (m) of the ablated nodes (or, without any, of the nodes heated by at least
    20 % of the largest rise) and the extra points; gathered over ranks."""
    comm = problem.comm
    V = problem.V
    n_owned = V.dofmap.index_map.size_local
    coords = V.tabulate_dof_coordinates()[:n_owned]
    pick = ablated[:n_owned] if ablated is not None else np.zeros(n_owned, bool)
    if comm.allreduce(int(pick.sum()), op=MPI.SUM) == 0:
        dose = problem.dose
        T = (dose.T_max if dose is not None else problem.T).x.array[:n_owned]
        lo = comm.allreduce(float(T.min()) if len(T) else math.inf, op=MPI.MIN)
        hi = comm.allreduce(float(T.max()) if len(T) else -math.inf, op=MPI.MAX)
        pick = T >= lo + 0.2 * (hi - lo) if hi > lo else np.ones(n_owned, bool)
    pts = coords[pick]
    lo = pts.min(axis=0) if len(pts) else np.full(3, np.inf)
    hi = pts.max(axis=0) if len(pts) else np.full(3, -np.inf)
    lo, hi = _reduce3(comm, lo, MPI.MIN), _reduce3(comm, hi, MPI.MAX)
    for p in extra_points:
        lo, hi = np.minimum(lo, p), np.maximum(hi, p)
    return lo, hi


def _mesh_box(problem) -> tuple[np.ndarray, np.ndarray]:
    x = problem.mesh.geometry.x
    comm = problem.comm
    lo = _reduce3(comm, x.min(axis=0) if len(x) else np.full(3, np.inf), MPI.MIN)
    hi = _reduce3(comm, x.max(axis=0) if len(x) else np.full(3, -np.inf), MPI.MAX)
    return lo, hi


def _reduce3(comm, local: np.ndarray, op) -> np.ndarray:
    """Element-wise MIN/MAX/SUM of a float array over ranks (buffer Allreduce: the pickled
    allreduce cannot take min() of arrays)."""
    local = np.ascontiguousarray(local, dtype=np.float64)
    out = np.empty_like(local)
    comm.Allreduce(local, out, op=op)
    return out


def _window(origin, e1, e2, box, mesh_box) -> tuple[np.ndarray, np.ndarray]:
    """Grid coordinates (m, relative to origin along e1 and e2) covering the box plus the margin,
    at least MIN_HALF_WIDTH_M around the origin, within the mesh's box."""
    corners = lambda b: np.array([[b[i][0], b[j][1], b[k][2]] for i in (0, 1) for j in (0, 1) for k in (0, 1)])
    ext = []
    for e in (e1, e2):
        c = (corners(box) - origin) @ e
        m = (corners(mesh_box) - origin) @ e
        lo = min(c.min() - WINDOW_MARGIN_M, -MIN_HALF_WIDTH_M)
        hi = max(c.max() + WINDOW_MARGIN_M, MIN_HALF_WIDTH_M)
        lo = WINDOW_QUANTUM_M * math.floor(lo / WINDOW_QUANTUM_M)
        hi = WINDOW_QUANTUM_M * math.ceil(hi / WINDOW_QUANTUM_M)
        ext.append((max(lo, m.min()), min(hi, m.max())))
    h = max(PLANE_SPACING_M, max(b - a for a, b in ext) / (MAX_GRID - 1))
    # ends on multiples of h: round-off in the box (e.g. across partitions) does not move the grid
    return tuple(h * np.arange(math.ceil(a / h - 1e-9), math.floor(b / h + 1e-9) + 1) for a, b in ext)


def plane_specs(problem, hot: dict[str, dict], box=None) -> list[dict]:
    """The planes the report shows: name, kind (axial, sagittal, coronal, oblique), origin (m),
    in-plane unit axes e1 (image right) and e2 (image up before display flips), title.
    Without an applicator: three orthogonal planes through the centre of ``box`` (the ablation
    zone or heated zone, (lo, hi) in m), or through the hottest node without one."""
    case = problem.case
    ex, ey, ez = np.eye(3)
    critical = [r for r in case.critical_regions() if r in hot]
    hottest = max(critical, key=lambda r: hot[r]["max_temperature_C"], default=None)
    planes = []
    if case.applicator:
        ap = case.applicator[0]
        tip = np.asarray(ap.positions()[0][1], float)
        a = _unit(ap.axis)
        planes.append(dict(name="axial_tip", kind="axial", origin=tip, e1=ex, e2=ey,
                           title=f"axial through the tip centre (z = {tip[2] * 1e3:.1f} mm)"))
        if hottest is not None:
            h = np.asarray(hot[hottest]["where_m"], float)
            if abs(h[2] - tip[2]) >= PLANE_MARK_DISTANCE_M:
                planes.append(dict(name="axial_hot", kind="axial", origin=np.array([tip[0], tip[1], h[2]]), e1=ex,
                                   e2=ey, title=f"axial through the hottest {hottest} node (z = {h[2] * 1e3:.1f} mm)"))
            else:
                planes[0]["title"] += f", also through the hottest {hottest} node"
        x_sag = _critical_centre_x(problem, critical)
        if x_sag is not None:  # to 0.1 mm: the midline's round-off does not move the plane
            x_sag = round(x_sag / 1e-4) * 1e-4
        origin = np.array([tip[0] if x_sag is None else x_sag, tip[1], tip[2]])
        where = "the canal" if x_sag is not None else "the tip centre"
        planes.append(dict(name="sagittal", kind="sagittal", origin=origin, e1=ey, e2=ez,
                           title=f"sagittal through {where} (x = {origin[0] * 1e3:.1f} mm)"))
        toward = None
        if hottest is not None:
            toward = _perpendicular(a, np.asarray(hot[hottest]["where_m"], float) - tip)
        spine = case.geometry.kind == "spine"
        label = f"towards the hottest {hottest} node" if toward is not None else ("towards cranial" if spine else "towards +z")
        if toward is None:
            toward = _perpendicular(a, ez)
            if toward is None:
                toward, label = _perpendicular(a, ey), ("towards posterior" if spine else "towards +y")
        planes.append(dict(name="applicator", kind="oblique", origin=tip, e1=a, e2=toward,
                           title=f"along the applicator, across {label}", e2_label=label))
    else:
        if box is not None:
            focus, tag = 0.5 * (box[0] + box[1]), "centre of the heated zone"
        else:
            T = problem.dose.T_max if problem.dose is not None else problem.T
            focus, tag = np.asarray(_argmax_all(problem, T.x.array)[1], float), "hottest point"
        planes.append(dict(name="axial", kind="axial", origin=focus, e1=ex, e2=ey,
                           title=f"axial (x-y) through the {tag} (z = {focus[2] * 1e3:.1f} mm)"))
        planes.append(dict(name="coronal", kind="coronal", origin=focus, e1=ex, e2=ez,
                           title=f"coronal (x-z) through the {tag} (y = {focus[1] * 1e3:.1f} mm)"))
        planes.append(dict(name="sagittal", kind="sagittal", origin=focus, e1=ey, e2=ez,
                           title=f"sagittal (y-z) through the {tag} (x = {focus[0] * 1e3:.1f} mm)"))
    return planes


def _argmax_all(problem, values) -> tuple[float, list[float]]:
    comm = problem.comm
    n = problem.V.dofmap.index_map.size_local
    coords = problem.V.tabulate_dof_coordinates()
    if n:
        k = int(np.argmax(values[:n]))
        local, where = (float(values[k]), comm.rank), coords[k].tolist()
    else:
        local, where = (-math.inf, comm.rank), None
    value, rank = comm.allreduce(local, op=MPI.MAXLOC)
    return value, comm.bcast(where, root=rank)


def _critical_centre_x(problem, regions: list[str]) -> float | None:
    """Mean x (m) of the nodes of the critical regions (the canal's midline in a spine case)."""
    c = critical_centre(problem, regions)
    return None if c is None else float(c[0])


def critical_centre(problem, regions: list[str]) -> np.ndarray | None:
    """Mean position (m) of the nodes of the critical regions (in a spine case, on the canal's
    axis), or None without critical regions."""
    if not regions:
        return None
    V = problem.V
    n_owned = V.dofmap.index_map.size_local
    coords = V.tabulate_dof_coordinates()
    s, n = np.zeros(3), 0
    for r in regions:
        cells = problem.bundle.cell_tags.find(problem.bundle.regions[r])
        dofs = np.unique(V.dofmap.list[cells].reshape(-1))
        dofs = dofs[dofs < n_owned]
        s += coords[dofs].sum(axis=0)
        n += len(dofs)
    s, n = _reduce3(problem.comm, s, MPI.SUM), problem.comm.allreduce(n, op=MPI.SUM)
    return s / n if n else None


def _catheter_mask(points: np.ndarray, case) -> np.ndarray:
    """Points inside a catheter (cylinder of catheter_radius_m from the entry to the deepest tip end)."""
    mask = np.zeros(len(points), bool)
    for cav in case.cavities():
        p0, p1 = np.asarray(cav["entry_m"], float), np.asarray(cav["end_m"], float)
        d = p1 - p0
        L = np.linalg.norm(d)
        a = d / L
        s = (points - p0) @ a
        r = np.linalg.norm(points - p0 - np.outer(s, a), axis=1)
        mask |= (s >= 0.0) & (s <= L) & (r <= cav["radius_m"] * 1.02)
    return mask


def report_data(problem, region_nodes) -> dict:
    """Everything the report draws, as arrays for ``report_data.npz`` (collective; identical on
    every rank)."""
    case = problem.case
    dose = problem.dose
    critical = [r for r in case.critical_regions() if r in problem.bundle.regions]
    tumours = [r for r in case.tumour_regions() if r in problem.bundle.regions]
    hot = hot_spots(problem, region_nodes, critical)
    ablated = None
    out: dict = {
        "anatomical_frame": np.array(case.geometry.kind == "spine"),
        "mode": np.array(case.time.mode),
        "region_names": np.array(list(problem.bundle.regions)),
        "region_tags": np.array(list(problem.bundle.regions.values())),
        "tumour_regions": np.array(tumours, dtype=str),
        "critical_regions": np.array(critical, dtype=str),
    }
    fields = {"T_max": dose.T_max if dose is not None else problem.T}
    if dose is not None:
        field, threshold, label = ablation_field(problem)
        ablated = field.x.array >= threshold
        fields.update(omega=dose.omega, cem43=dose.cem43, ablation=field)
        out["threshold"] = np.array(threshold)
        out["criterion"] = np.array(label)
        out["criterion_kind"] = np.array(case.damage.ablation_criterion)
    Q0 = problem.Q0
    region = region_function(Q0, problem.bundle.cell_tags, problem.bundle.regions, problem.bundle.regions, fill=-1.0)
    fields["region"] = region
    for f in fields.values():  # ghosts from their owners: a node has one value on every rank
        f.x.scatter_forward()

    for r, e in hot.items():
        out[f"hot_{r}_where_m"] = np.asarray(e["where_m"], float)
        out[f"hot_{r}_max_temperature_C"] = np.array(e["max_temperature_C"])
        if "max_cem43_min" in e:
            out[f"hot_{r}_max_cem43_min"] = np.array(e["max_cem43_min"])

    segs, cath = [], []
    for ap in case.applicator:
        for _, centre in ap.positions():
            segs.append(ap.tip_segment(centre))
    for cav in case.cavities():
        cath.append([cav["entry_m"], cav["end_m"]])
    out["applicator_segments_m"] = np.array(segs, float).reshape(-1, 2, 3)
    out["catheter_segments_m"] = np.array(cath, float).reshape(-1, 2, 3)
    out["catheter_radius_m"] = np.array([cav["radius_m"] for cav in case.cavities()], float)
    marks = [(p.name, "probe", p.position_m) for p in case.probe]
    marks += [(m.name, "monitor", m.position_m) for m in case.monitor]
    out["mark_names"] = np.array([m[0] for m in marks], dtype=str)
    out["mark_kinds"] = np.array([m[1] for m in marks], dtype=str)
    out["mark_positions_m"] = np.array([m[2] for m in marks], float).reshape(-1, 3)
    # distance from each tip position to the nearest node of each critical region
    for r in critical:
        coords = region_nodes.coords[region_nodes.nodes[r]]
        d = [_segment_distance(coords, np.asarray(s[0]), np.asarray(s[1])) for s in segs]
        d = [problem.comm.allreduce(x, op=MPI.MIN) for x in d]
        out[f"tip_to_{r}_m"] = np.array(d, float)

    extra = [np.asarray(p, float) for s in segs for p in s] + [np.asarray(e["where_m"], float) for e in hot.values()]
    centre = critical_centre(problem, critical)
    if centre is not None:  # the canal's centre: the cord is shown whole beside the ablation
        extra.append(centre)
    box = _focus_box(problem, ablated, extra)
    mesh_box = _mesh_box(problem)
    planes = plane_specs(problem, hot, box)
    out["planes"] = np.array([p["name"] for p in planes], dtype=str)
    for p in planes:
        n = p["name"]
        u, v = _window(p["origin"], p["e1"], p["e2"], (box[0], box[1]), mesh_box)
        U, W = np.meshgrid(u, v, indexing="xy")
        pts = p["origin"][None, :] + U.reshape(-1, 1) * p["e1"][None, :] + W.reshape(-1, 1) * p["e2"][None, :]
        located = locate(problem.mesh, pts, allow_outside=True)
        for fname, f in fields.items():
            out[f"{n}_{fname}"] = evaluate(f, located).reshape(len(v), len(u))
        out[f"{n}_cavity"] = (_catheter_mask(pts, case) & np.isnan(out[f"{n}_region"].reshape(-1))).reshape(len(v), len(u))
        out[f"{n}_u_m"], out[f"{n}_v_m"] = u, v
        out[f"{n}_origin_m"] = p["origin"]
        out[f"{n}_axes"] = np.stack([p["e1"], p["e2"]])
        out[f"{n}_kind"] = np.array(p["kind"])
        out[f"{n}_title"] = np.array(p["title"])
        out[f"{n}_e2_label"] = np.array(p.get("e2_label", ""))
    out.update(dvh(problem, critical + tumours))
    return out


def _segment_distance(points: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> float:
    if len(points) == 0:
        return math.inf
    d = p1 - p0
    s = np.clip((points - p0) @ d / (d @ d), 0.0, 1.0)
    return float(np.linalg.norm(points - p0 - np.outer(s, d), axis=1).min())


def write_report_data(problem, folder: Path, region_nodes=None, recorder: CriticalRecorder | None = None) -> None:
    """Sample what the report needs and write ``report_data.npz`` (and ``critical.csv``) on
    rank 0. Collective."""
    if region_nodes is None:
        region_nodes = RegionNodes(problem)
    data = report_data(problem, region_nodes)
    if problem.comm.rank == 0:
        np.savez_compressed(Path(folder) / "report_data.npz", **data)
        if recorder is not None:
            recorder.write(Path(folder) / "critical.csv")
