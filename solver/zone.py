"""The ablation zone, sampled where it is integrated: at quadrature points of every cell.

Why not threshold an interpolant of the nodal dose: Omega and CEM43 span tens of orders of
magnitude across one cell (1e-9 to 1e5 in the T8 case), so their P1 interpolant puts the
Omega = 1 surface far out (biased volume that falls slowly with refinement) and their P2
interpolant oscillates (negative Omega, volumes off by 40 %). Instead, the temperature
solution T_h itself (smooth, of the element's accuracy) is evaluated at the quadrature points
every step (nodal values times the Lagrange basis tabulated once at the points) and the dose integrals of solver.damage (exact for T linear in time over a step)
are accumulated there. The ablated set is then {x : dose[T_h](x) >= threshold}, and its
volume is the quadrature of the indicator with positive weights: it converges with the
temperature (O(h^2) P1, O(h^3) P2) plus the sampling error of a discontinuous indicator,
and P1 and P2 agree to that accuracy (tests/verification/test_ablation_zone.py).

Only what the case needs is tracked: the maximum over time of T (isotherm criterion and the
volume above 100 C) always, Omega or CEM43 when they are the criterion; and only in cells
that can reach the levels asked of them (see ZoneSampler._dose_floor), found from the nodes
hotter than the lowest floor (ZoneSampler._candidates), so the cost follows the heated volume,
not the mesh.

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

from .damage import GAS_CONSTANT_J_PER_MOLK, KELVIN
from .distances import distance_max_min, distance_min  # noqa: F401  (re-exported for solver.metrics)
from .dose_kernels import DOSE_CEM43, DOSE_NONE, DOSE_OMEGA, call, empty_dose, zone_step

MODEL_LIMIT_C = 100.0  # water boils: above it the model's temperatures are overestimates

# Degree 4 has 14 points per tetrahedron, all with positive weights (Xiao-Gimbutas); degree 3
# has a negative weight, which an indicator integral must not have. Measured on the designed
# sphere (test_ablation_zone.py, P2, where T is exact and only the sampling is left): degree 2
# (4 points) gives 2.0 % and 0.37 % volume error at h = 2 and 1 mm, degree 4 0.49 % and 0.05 %.
ZONE_QUADRATURE_DEGREE = 4
# A point never hotter than the temperature at which the whole run would give it this fraction
# of the dose threshold is left out of the dose integration (see ZoneSampler._dose_floor).
DOSE_FLOOR_FRACTION = 1e-3


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
        self.p_T = problem.T
        self._mesh = mesh
        detJ = fem.Expression(abs(ufl.JacobianDeterminant(mesh)), points).eval(mesh, self.cells)
        self.dV = detJ.reshape(n, len(weights)) * weights[None, :]  # m^3 per point (n may be 0)
        self._points = points
        # region of each owned cell
        self.region_of_cell = np.full(n, -1, dtype=np.int64)
        self.region_tags = dict(problem.bundle.regions)
        ct = problem.bundle.cell_tags
        for region, tag in self.region_tags.items():
            c = ct.find(tag)
            self.region_of_cell[c[c < n]] = tag
        self.A = np.exp(np.asarray(logA_cells, dtype=float))  # per cell (1/s)
        self.Ea = np.asarray(Ea_cells, dtype=float)  # per cell (J/mol)
        self.T_prev = None
        self.T_max = None
        self.omega = np.zeros((n, self.n_points)) if criterion == "omega" else None
        self.cem43 = np.zeros((n, self.n_points)) if criterion == "cem43" else None
        self._dose_kind = DOSE_OMEGA if criterion == "omega" else DOSE_CEM43 if criterion == "cem43" else DOSE_NONE
        # exp(-E_a / (R T_prev)) per point, kept between steps by the kernel (-1: not known); a
        # cache only (results are bitwise those without it), so not checkpointed: reset_rate_cache
        self.rate_prev = np.full((n, self.n_points), -1.0) if criterion == "omega" else empty_dose()
        # Only cells that can matter are evaluated each step: those whose temperature bound
        # exceeds the cell's floor (the dose floor, and for max T the lowest level asked of it).
        V = problem.V
        self._cell_dofs = V.dofmap.list[self.cells]
        self._phi_T = basis_at_points(V, points).T  # (dofs per cell, points)
        self._overshoot = 0.0 if problem.case.solver.element_degree == 1 else 0.5
        # compiled here, on every rank: an Expression's JIT is collective, so it must not be
        # built only where a rank happens to have cells to evaluate
        self._x_expr = fem.Expression(ufl.SpatialCoordinate(mesh), points)
        tmax_floor = MODEL_LIMIT_C
        if criterion == "isotherm":
            tmax_floor = min(tmax_floor, problem.case.damage.ablation_isotherm_C)
        self.dose_floor = self._dose_floor(problem.case) * np.ones(n)  # C, per cell
        self.dose_floor = np.ascontiguousarray(self.dose_floor, dtype=float)
        self.cell_floor = np.minimum(self.dose_floor, tmax_floor)
        self._was_hot = np.zeros(n, dtype=bool)
        self._bound_prev = None
        self._floor_min = float(self.cell_floor.min()) if n else math.inf
        self._cells_of_dof = CellsOfDof(self._cell_dofs, len(problem.T.x.array))

    def _dose_floor(self, case) -> np.ndarray | float:
        """Temperature (C) below which a cell's dose is not integrated, per cell.

        Held below it for the whole run (time.end_time_s), a point gathers less than
        DOSE_FLOOR_FRACTION of the threshold, so it is certainly outside the zone, and a point
        that heats up later misses at most that fraction of the threshold (for Omega at 60 C a
        temperature shift of 1e-6 K): the indicator is unchanged while the cost of the dose
        integration becomes proportional to the heated cells only."""
        t_end = case.time.end_time_s
        if self.criterion == "omega":
            thr = DOSE_FLOOR_FRACTION * case.damage.ablation_omega
            # A exp(-E_a / (R T)) t_end = thr  ->  T = E_a / (R ln(A t_end / thr))
            return self.Ea / (GAS_CONSTANT_J_PER_MOLK * np.log(self.A * t_end / thr)) - KELVIN
        if self.criterion == "cem43":
            thr = DOSE_FLOOR_FRACTION * case.damage.ablation_cem43_min
            # 0.25^(43 - T) t_end / 60 = thr  (below 43 C)
            return min(43.0, 43.0 - math.log(thr * 60.0 / t_end) / math.log(0.25))
        return math.inf

    def _bound(self, T_nodal: np.ndarray, cells: np.ndarray | None = None) -> np.ndarray:
        """Upper bound (C) of T inside each owned cell (or each of ``cells``) from its nodal
        values: the maximum for P1; for P2 the maximum plus half the range (the negative parts
        of the P2 vertex functions sum to at most 4 x 1/8)."""
        Tc = T_nodal[self._cell_dofs if cells is None else self._cell_dofs[cells]]
        # column by column: numpy's reductions along a short contiguous axis are slow
        top = Tc[:, 0].copy()
        for j in range(1, Tc.shape[1]):
            np.maximum(top, Tc[:, j], out=top)
        if self._overshoot:
            low = Tc[:, 0].copy()
            for j in range(1, Tc.shape[1]):
                np.minimum(low, Tc[:, j], out=low)
            top = top + self._overshoot * (top - low)
        return top

    def _candidates(self, T_nodal: np.ndarray) -> np.ndarray:
        """Sorted owned cells whose bound (_bound) may exceed their floor: the cells around a
        node hotter than the lowest floor (P1: the bound is the nodal maximum). For P2,
        bound = (1 + s) max - s min <= (1 + s) max - s min(T), so the node must exceed
        (floor + s min(T)) / (1 + s); 1e-6 K lower covers rounding. Every other cell has
        bound <= its floor, so the cost follows the heated nodes, not the mesh."""
        if len(self.cells) == 0:
            return np.zeros(0, dtype=np.int64)
        thr = self._floor_min
        if self._overshoot:
            s = self._overshoot
            thr = (thr + s * float(T_nodal.min())) / (1.0 + s) - 1e-6
        if math.isnan(thr):  # a NaN floor or field: decide on every cell, as _bound does
            return np.arange(len(self.cells))
        return self._cells_of_dof(np.flatnonzero(T_nodal > thr))

    def _at_points(self, T_nodal: np.ndarray, cells: np.ndarray) -> np.ndarray:
        """T_h (C) of the nodal array at the quadrature points of owned ``cells``, (cells, points):
        the Lagrange basis tabulated once at the points (basis_at_points), so per step only a
        gather and a small matrix product (einsum: no BLAS threads, which contend on a loaded
        machine and cost 10x more here than they save)."""
        return np.einsum("cd,dp->cp", T_nodal[self._cell_dofs[cells]], self._phi_T)

    def temperature(self) -> np.ndarray:
        """T_h (C) at the quadrature points of every owned cell, shape (cells, points)."""
        return self._at_points(self.p_T.x.array, np.arange(len(self.cells)))

    def start(self) -> None:
        self.T_prev = self.temperature()
        self.T_max = self.T_prev.copy()
        self._was_hot[:] = True  # T_prev is valid everywhere
        self._bound_prev = self._bound(self.p_T.x.array)

    def after_step(self, dt: float, T_prev_nodal: np.ndarray) -> None:
        """Advance the doses over a step; ``T_prev_nodal``: T (C) at the step's start, per dof."""
        T_nodal = self.p_T.x.array
        # the bound now, on the cells where it can exceed the floor; elsewhere it is kept as
        # the floor itself (a bound no greater than the floor is all that matters)
        cand = self._candidates(T_nodal)
        bound_cand = self._bound(T_nodal, cand)
        bound_now = self.cell_floor.copy()
        bound_now[cand] = bound_cand
        hot = np.zeros(len(self.cells), dtype=bool)
        hot[cand] = bound_cand > self.cell_floor[cand]
        # the bound at the step's start is the one kept from the previous step (same T)
        hot |= self._bound_prev > self.cell_floor
        self._bound_prev = bound_now
        cells = np.flatnonzero(hot)
        # T at the points, the dose increments, max T and the stored T of the heated cells: one
        # compiled loop (solver.dose_kernels); cells not updated last step (stale) first take
        # T_prev from the step's start
        call(zone_step, cells, ~self._was_hot[cells], self._cell_dofs, self._phi_T, T_nodal, T_prev_nodal,
                  self.T_prev, self.T_max, self._dose_array, self.rate_prev, self._dose_kind, self.dose_floor,
                  self.A, self.Ea, float(dt))
        self._was_hot = hot

    def reset_rate_cache(self) -> None:
        """Forget the kept exp(-E_a / (R T_prev)) (after T_prev was set from outside, e.g. a
        checkpoint): the kernel computes it again where needed."""
        if self.rate_prev.size:
            self.rate_prev.fill(-1.0)

    @property
    def _dose_array(self) -> np.ndarray:
        """The dose the kernel accumulates in place (cells, points), or an empty array."""
        if self.omega is not None:
            return self.omega
        return self.cem43 if self.cem43 is not None else empty_dose()

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
        per_cell = np.einsum("cp,cp->c", self.dV, indicator)  # one pass over the points
        names = list(self.region_tags)
        local = np.array([per_cell[self.region_of_cell == self.region_tags[r]].sum() for r in names])
        total = np.zeros_like(local)
        self.comm.Allreduce(local, total, op=MPI.SUM)  # one reduction for all regions
        return {r: float(v) for r, v in zip(names, total)}

    def coordinates(self, cells: np.ndarray) -> np.ndarray:
        """Physical coordinates (m) of the points of the given owned cells, (cells, points, 3).
        Local (not collective): a rank may call it with no cells."""
        if len(cells) == 0:
            return np.zeros((0, self.n_points, 3))
        return self._x_expr.eval(self._mesh, cells.astype(np.int32)).reshape(len(cells), self.n_points, 3)

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


def basis_at_points(V, points: np.ndarray) -> np.ndarray:
    """Values of the scalar Lagrange basis of ``V`` at reference ``points`` (points, 3):
    (points, dofs per cell), ordered as V.dofmap.list, so that T_h at the points of a cell is
    T[cell dofs] @ basis.T (what fem.Expression(T, points).eval gives, without a kernel call).
    Valid only where the dofmap needs no dof transformations and the map is the identity (P1
    and P2 Lagrange on simplices: edge dofs need no permutation below degree 3); anything
    else raises ValueError."""
    element = V.element
    ufl_element = V.ufl_element()
    basix_element = getattr(ufl_element, "basix_element", None)
    if (
        element.needs_dof_transformations
        or V.dofmap.bs != 1
        or basix_element is None
        or basix_element.map_type != basix.MapType.identity
        or basix_element.family != basix.ElementFamily.P
    ):
        raise ValueError(f"quadrature-point tabulation needs a scalar Lagrange space without dof "
                         f"transformations, not {ufl_element}")
    table = basix_element.tabulate(0, np.asarray(points, dtype=float))  # (derivs, points, dofs, values)
    return np.ascontiguousarray(table[0, :, :, 0])


class CellsOfDof:
    """The cells around each dof (an inverse of a cell-to-dof table), as a callable: sorted
    unique cell indices (rows of ``cell_dofs``) touching any of the given dofs."""

    def __init__(self, cell_dofs: np.ndarray, n_dofs: int):
        """``cell_dofs``: (cells, dofs per cell) local dof indices; ``n_dofs``: local dofs."""
        flat = np.asarray(cell_dofs).reshape(-1)
        k = cell_dofs.shape[1] if cell_dofs.ndim == 2 else 1
        order = np.argsort(flat, kind="stable")
        self.cells = (order // max(k, 1)).astype(np.int64)
        self.n_cells = len(cell_dofs)
        self.offsets = np.zeros(n_dofs + 1, dtype=np.int64)
        np.cumsum(np.bincount(flat, minlength=n_dofs), out=self.offsets[1:])

    def __call__(self, dofs: np.ndarray) -> np.ndarray:
        if len(dofs) == 0:
            return np.zeros(0, dtype=np.int64)
        starts, ends = self.offsets[dofs], self.offsets[dofs + 1]
        lens = ends - starts
        total = int(lens.sum())
        # positions starts[i] .. ends[i] - 1 for every dof, concatenated
        shift = np.repeat(starts - (np.cumsum(lens) - lens), lens)
        mark = np.zeros(self.n_cells, dtype=bool)  # cheaper than np.unique of the repeats
        mark[self.cells[shift + np.arange(total)]] = True
        return np.flatnonzero(mark)


def _add_mode():
    from dolfinx.la import InsertMode

    return InsertMode.add
