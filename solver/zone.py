"""The ablation zone, sampled where it is integrated: at quadrature points of every cell.

Why not threshold an interpolant of the nodal dose: Omega and CEM43 span tens of orders of
magnitude across one cell (1e-9 to 1e5 in the T8 case), so their P1 interpolant puts the
Omega = 1 surface far out (biased volume that falls slowly with refinement) and their P2
interpolant oscillates (negative Omega, volumes off by 40 %). Instead, the temperature
solution T_h itself (smooth, of the element's accuracy) is evaluated at the quadrature points
every step and the dose integrals of solver.damage (exact for T linear in time over a step)
are accumulated there. The ablated set is then {x : dose[T_h](x) >= threshold}, and its
volume is the quadrature of the indicator with positive weights: it converges with the
temperature (O(h^2) P1, O(h^3) P2) plus the sampling error of a discontinuous indicator,
and P1 and P2 agree to that accuracy (tests/verification/test_ablation_zone.py).

Only what the case needs is tracked: the maximum over time of T (isotherm criterion and the
volume above 100 C) always, Omega or CEM43 when they are the criterion.

Arrays are per owned cell and quadrature point, shape (cells, points); all reductions are
collective.
"""

from __future__ import annotations

import math

import numpy as np

from . import compat  # noqa: F401  (import order)
import basix
import ufl
from dolfinx import fem
from mpi4py import MPI

from .damage import arrhenius_increment, cem43_increment_capped

# Degree 4 has 14 points per tetrahedron, all with positive weights (Xiao-Gimbutas); degree 3
# has a negative weight, which an indicator integral must not have. Measured on the designed
# sphere (test_ablation_zone.py), degree 2 (4 points) leaves a sampling error about twice as
# large at the same cost per point.
ZONE_QUADRATURE_DEGREE = 4


class ZoneSampler:
    """Dose integrals at quadrature points of the owned cells, updated every step."""

    def __init__(self, problem, criterion: str, logA_cells: np.ndarray, Ea_cells: np.ndarray):
        """``logA_cells``, ``Ea_cells``: ln A (A in 1/s) and E_a (J/mol) per owned cell."""
        mesh = problem.mesh
        self.comm = problem.comm
        self.criterion = criterion
        cell_type = basix.CellType[mesh.topology.cell_type.name]
        points, weights = basix.make_quadrature(cell_type, ZONE_QUADRATURE_DEGREE)
        if np.any(weights <= 0.0):  # pragma: no cover - guarded by the choice of degree
            raise RuntimeError(f"quadrature degree {ZONE_QUADRATURE_DEGREE} has non-positive weights")
        tdim = mesh.topology.dim
        self.cells = np.arange(mesh.topology.index_map(tdim).size_local, dtype=np.int32)
        n = len(self.cells)
        self.n_points = len(weights)
        self._T_expr = fem.Expression(problem.T, points)
        self._mesh = mesh
        detJ = fem.Expression(abs(ufl.JacobianDeterminant(mesh)), points).eval(mesh, self.cells)
        self.dV = detJ.reshape(n, -1) * weights[None, :]  # m^3 per point
        self._points = points
        # region of each owned cell
        self.region_of_cell = np.full(n, -1, dtype=np.int64)
        self.region_tags = dict(problem.bundle.regions)
        ct = problem.bundle.cell_tags
        for region, tag in self.region_tags.items():
            c = ct.find(tag)
            self.region_of_cell[c[c < n]] = tag
        self.A = np.repeat(np.exp(logA_cells)[:, None], self.n_points, axis=1)
        self.Ea = np.repeat(np.asarray(Ea_cells)[:, None], self.n_points, axis=1)
        self.T_prev = None
        self.T_max = None
        self.omega = np.zeros((n, self.n_points)) if criterion == "omega" else None
        self.cem43 = np.zeros((n, self.n_points)) if criterion == "cem43" else None

    def temperature(self) -> np.ndarray:
        """T_h (C) at the quadrature points, shape (cells, points)."""
        return self._T_expr.eval(self._mesh, self.cells).reshape(len(self.cells), self.n_points)

    def start(self) -> None:
        self.T_prev = self.temperature()
        self.T_max = self.T_prev.copy()

    def after_step(self, dt: float) -> None:
        T1 = self.temperature()
        T0 = self.T_prev
        if self.omega is not None:
            self.omega += arrhenius_increment(T0, T1, dt, self.A, self.Ea)
        if self.cem43 is not None:
            self.cem43 = cem43_increment_capped(self.cem43, T0, T1, dt)
        np.maximum(self.T_max, T1, out=self.T_max)
        self.T_prev = T1

    # ------------------------------------------------------------------ the zone
    def dose(self) -> np.ndarray:
        """The criterion's quantity at the points: Omega, CEM43 (min) or max T (C)."""
        if self.criterion == "omega":
            return self.omega
        if self.criterion == "cem43":
            return self.cem43
        return self.T_max

    def volume_by_region(self, indicator: np.ndarray) -> dict[str, float]:
        """Integral (m^3) of a boolean point indicator (cells, points) over every region."""
        out = {}
        for region, tag in self.region_tags.items():
            mask = self.region_of_cell == tag
            local = float((self.dV[mask] * indicator[mask]).sum())
            out[region] = self.comm.allreduce(local, op=MPI.SUM)
        return out

    def coordinates(self, cells: np.ndarray) -> np.ndarray:
        """Physical coordinates (m) of the points of the given owned cells, (cells, points, 3)."""
        if len(cells) == 0:
            return np.zeros((0, self.n_points, 3))
        x = fem.Expression(ufl.SpatialCoordinate(self._mesh), self._points)
        return x.eval(self._mesh, cells.astype(np.int32)).reshape(len(cells), self.n_points, 3)

    def boundary_points(self, indicator: np.ndarray, V) -> np.ndarray:
        """Coordinates (gathered on every rank) of the zone's boundary, (n, 3) in m: the
        nodes of ``V`` that touch both an ablated and a non-ablated point (their cells may sit
        on other ranks, hence the reverse scatter)."""
        touch = fem.Function(V)
        dofs = V.dofmap.list[self.cells]
        counts = []
        for flags in (indicator.any(axis=1), (~indicator).any(axis=1)):
            touch.x.array[:] = 0.0
            np.add.at(touch.x.array, dofs[flags].reshape(-1), 1.0)
            touch.x.scatter_reverse(_add_mode())
            touch.x.scatter_forward()
            counts.append(touch.x.array.copy())
        n_owned = V.dofmap.index_map.size_local
        both = (counts[0] > 0) & (counts[1] > 0)
        both[n_owned:] = False
        coords = V.tabulate_dof_coordinates()[both]
        gathered = self.comm.allgather(coords)
        return np.concatenate(gathered) if gathered else np.zeros((0, 3))


def _add_mode():
    from dolfinx.la import InsertMode

    return InsertMode.add


def distance_min(points: np.ndarray, targets: np.ndarray, chunk: int = 2048) -> float:
    """Smallest distance (m) between two point sets; inf when either is empty."""
    if len(points) == 0 or len(targets) == 0:
        return math.inf
    best = math.inf
    for i in range(0, len(points), chunk):
        d = np.linalg.norm(points[i : i + chunk, None, :] - targets[None, :, :], axis=2)
        best = min(best, float(d.min()))
    return best


def distance_max_min(points: np.ndarray, targets: np.ndarray, chunk: int = 1024) -> float:
    """Largest distance (m) from a point to its nearest target; 0 when either is empty."""
    if len(points) == 0 or len(targets) == 0:
        return 0.0
    worst = 0.0
    for i in range(0, len(points), chunk):
        d = np.linalg.norm(points[i : i + chunk, None, :] - targets[None, :, :], axis=2)
        worst = max(worst, float(d.min(axis=1).max()))
    return worst
