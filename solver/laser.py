"""Laser energy deposition: applicators -> emitters -> unit-power light fields -> heat loads.

Each (applicator, pull-back position) is one *emitter*: a diffusing tip at a fixed place.
Its light field for 1 W is computed once (one Krylov solve with the diffusion model, or the
closed-form kernel), giving a unit heat-load vector q_j = integral mu_a phi_j v dx. The time
loop then adds sum_j E_j(t_n, t_n+1) / dt * q_j, E_j the energy the schedule delivers in the
step while the tip sits at that position: no light solve in the time loop. The light is
recomputed only when the optical properties change (``refresh``).

Emission: ``line``, uniformly along the tip segment (exact point loads at Gauss points);
``cavity``, uniformly over the catheter wall within the tip's axial extent (a surface
source on the cut-out catheter surface ``<name>_tip``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import compat  # noqa: F401  (import order)
import dolfinx
import dolfinx.fem.petsc
import ufl
from dolfinx import fem
from mpi4py import MPI
from petsc4py import PETSc

from meshes.cavities import cavity_surface_names

from .config import Applicator, Case, CaseError
from .fem import assemble_vector
from .optics import OpticalProperties, diffusion_valid
from .light import LightProblem
from .light_kernel import KernelLight, default_emitter_count, emitter_points, kernel_fluence_numpy
from .probes import evaluate, locate

# Kernel model, tip centre outside the mesh (catheter cavity): rays to find the tissue around it.
TISSUE_RAYS = 16
TISSUE_RAY_REACH = 20  # catheter radii


@dataclass
class Emitter:
    applicator: Applicator
    index: int  # applicator index in the case
    position: int  # pull-back position index
    tip_center_m: tuple[float, float, float]
    window_s: tuple[float, float]  # [start, end) while the tip sits here
    phi: fem.Function | None = None  # fluence rate for 1 W (W/m2 per W)
    heat: fem.Function | None = None  # mu_a phi for 1 W (W/m3 per W), for output
    load: PETSc.Vec | None = None  # heat load vector for 1 W
    balance: dict | None = None
    kernel: object | None = None  # kernel model: its KernelLight (closed form, for point values)

    @property
    def label(self) -> str:
        return f"{self.applicator.name}@{self.position}"

    def mean_power(self, t0: float, t1: float) -> float:
        return self.applicator.energy_in_window(t0, t1, *self.window_s) / (t1 - t0)

    def power(self, t: float) -> float:
        w0, w1 = self.window_s
        return self.applicator.power_at(t) if w0 <= t < w1 else 0.0


def optical_fields(case: Case) -> dict[str, OpticalProperties]:
    """Optical properties per region (validated by the case: every region has them)."""
    out = {}
    for region, t in case.resolved_tissues().items():
        out[region] = OpticalProperties(t.absorption_per_m, t.reduced_scattering_per_m)
    return out


class Laser:
    """All emitters of a case on the heat problem's mesh and space."""

    def __init__(self, case: Case, bundle, V: fem.FunctionSpace, pattern_of=None):
        """``pattern_of``: (matrix, form) of the heat operator on ``V``, whose sparsity the
        light operator reuses when it has the same (solver.fem.assemble_operator)."""
        self.case = case
        self.pattern_of = pattern_of
        self.bundle = bundle
        self.V = V
        self.mesh = bundle.mesh
        self.comm = self.mesh.comm
        self.optical = optical_fields(case)
        self.emitters: list[Emitter] = []
        for i, ap in enumerate(case.applicator):
            positions = ap.positions()
            for j, (start, centre) in enumerate(positions):
                end = positions[j + 1][0] if j + 1 < len(positions) else math.inf
                self.emitters.append(Emitter(ap, i, j, tuple(centre), (start, end)))
        self.invalid_regions = sorted(
            r for r, p in self.optical.items() if not diffusion_valid(p, case.light.validity_ratio)
        )
        self.light = None
        self.solves = 0
        self.refresh()

    # ------------------------------------------------------------------ light fields
    def refresh(self, optical: dict[str, OpticalProperties] | None = None) -> None:
        """(Re)compute every emitter's unit light field and heat load."""
        if optical is not None:
            self.optical = optical
        if self.case.light.model == "diffusion":
            self._diffusion()
        else:
            self._kernel()
        self.solves += 1

    def _diffusion(self) -> None:
        cfg = self.case.light
        if self.light is None:
            # Light leaves (Robin) or vanishes (zero) at the tissue's outer surfaces only. A
            # catheter wall is a natural (zero net flux) boundary for light: what re-enters the
            # catheter is re-emitted by it, so the whole emitted power goes into the tissue.
            cavity = {n for ap in self.case.applicator for n in cavity_surface_names(ap.name)[:2]}
            aliases = {ap.name for ap in self.case.applicator}
            outer_tags = sorted(
                {
                    t
                    for name, tags in self.bundle.surfaces.items()
                    if name not in cavity and name not in aliases
                    for t in tags
                }
                - {t for name in cavity for t in self.bundle.surfaces.get(name, [])}
            )
            self.light = LightProblem(
                self.mesh,
                self.V,
                self.optical,
                self.bundle.cell_tags,
                self.bundle.regions,
                cfg.boundary,
                n_rel=cfg.refractive_index_ratio,
                facet_tags=self.bundle.facet_tags,
                boundary_tags=outer_tags,
                rtol=1e-10,
                pattern_of=self.pattern_of,
            )
            self.pattern_of = None  # used once: no reference kept to the other operator
        else:
            self.light.update_optical(self.optical)
        self._solve_emitters()

    def _solve_emitters(self) -> None:
        """One diffusion solve per emitter (unit power): fluence, energy balance, heat load."""
        for em in self.emitters:
            source = self._source_vector(em)
            em.phi = self.light.solve(source)
            em.phi.name = "fluence_rate"
            em.balance = self.light.energy_balance(em.phi, 1.0)
            self._set_heat(em, self.light.heat_load(em.phi, self.V), self.light.mu_a)
            source.destroy()

    def refresh_cellwise(self, mu_a_cells: np.ndarray, mus_cells: np.ndarray) -> None:
        """Re-solve every emitter with cell-wise optical properties (1/m), e.g. after
        coagulation. Kernel model: the kernel is closed-form for a homogeneous medium, so
        only its local absorption mu_a(x) follows the cells."""
        if self.case.light.model == "diffusion":
            self.light.set_cellwise(mu_a_cells, mus_cells)
            self._solve_emitters()
        else:
            self._kernel(mu_a_cells)
        self.solves += 1

    def _kernel(self, mu_a_cells: np.ndarray | None = None) -> None:
        mu_a = fem.Function(fem.functionspace(self.mesh, ("DG", 0)), name="mu_a")
        if mu_a_cells is not None:
            mu_a.x.array[:] = mu_a_cells
        else:
            for region, tag in self.bundle.regions.items():
                cells = self.bundle.cell_tags.find(tag)
                mu_a.x.array[mu_a.function_space.dofmap.list[cells].reshape(-1)] = self.optical[region].absorption_per_m
        mu_a.x.scatter_forward()
        self.mu_a_cells = mu_a
        for em in self.emitters:
            ap = em.applicator
            region = em.balance["kernel_region"] if em.balance else self._tissue_around_tip(em)
            props = self.optical[region]
            n = self.case.light.kernel_emitters or default_emitter_count(ap.tip_length_m, props.mu_eff_per_m)
            pts = emitter_points(em.tip_center_m, ap.axis, ap.tip_length_m, n)
            kernel = KernelLight(self.mesh, props, pts, ap.catheter_radius_m, mu_a_field=mu_a)
            em.kernel = kernel
            em.phi = kernel.fluence(self.V)
            em.phi.name = "fluence_rate"
            absorbed = kernel.absorbed_power()
            em.balance = {
                "source_W": 1.0,
                "absorbed_W": absorbed,
                "outside_domain_W": 1.0 - absorbed,
                "relative_imbalance": 0.0,
                "kernel_region": region,
                "note": "kernel model: infinite homogeneous medium; light not absorbed in the mesh leaves it",
            }
            self._set_heat(em, kernel.heat_load(self.V), mu_a)

    def _tissue_around_tip(self, em: Emitter) -> str:
        """Region whose optics the kernel of ``em`` takes (kernel model: homogeneous medium).

        The region that holds the tip centre; when the centre is not in the mesh (the catheter
        is cut out of it, or the tip sits in any cavity of a mesh file), the tissue at the wall
        around it: along ``TISSUE_RAYS`` rays perpendicular to the tip axis from the centre,
        the region of the first point in the mesh (points every catheter radius / 8 out to
        ``TISSUE_RAY_REACH`` catheter radii), the most frequent one over the rays (ties: the
        nearest hit, then the lowest tag). Collective; the same on every rank and partition.
        Raises CaseError if some ray meets no tissue (the tip is outside the body).
        """
        ap = em.applicator
        centre = np.asarray(em.tip_center_m, float)
        axis = np.asarray(ap.axis, float)
        e1 = np.cross(axis, [1.0, 0.0, 0.0] if abs(axis[0]) < 0.9 else [0.0, 1.0, 0.0])
        e1 /= np.linalg.norm(e1)
        e2 = np.cross(axis, e1)
        angles = 2.0 * math.pi * np.arange(TISSUE_RAYS) / TISSUE_RAYS
        dirs = np.cos(angles)[:, None] * e1[None, :] + np.sin(angles)[:, None] * e2[None, :]
        radii = ap.catheter_radius_m / 8.0 * np.arange(1, 8 * TISSUE_RAY_REACH + 1)
        ring = centre[None, None, :] + radii[None, :, None] * dirs[:, None, :]  # (ray, radius, 3)
        tags = self._region_tags(np.vstack([centre[None, :], ring.reshape(-1, 3)]))
        names = {t: r for r, t in self.bundle.regions.items()}
        if tags[0] >= 0:
            return names[int(tags[0])]
        per_ray = tags[1:].reshape(TISSUE_RAYS, len(radii))
        hits = []
        for ray in per_ray:
            inside = np.flatnonzero(ray >= 0)
            if not len(inside):
                raise CaseError(
                    f"applicator[{em.index}] ({ap.name}): the tip centre {list(em.tip_center_m)} m is not "
                    f"in the mesh and no tissue surrounds it within {radii[-1] * 1e3:.3g} mm of the "
                    "axis; the kernel light model needs the tip inside the body (in tissue or in a "
                    "catheter cavity)"
                )
            hits.append((int(ray[inside[0]]), int(inside[0])))
        counts: dict[int, list] = {}
        for tag, k in hits:
            counts.setdefault(tag, []).append(k)
        best = min(counts, key=lambda t: (-len(counts[t]), min(counts[t]), t))
        return names[best]

    def _region_tags(self, points: np.ndarray) -> np.ndarray:
        """Region tag of the cell holding each point (-1 outside the mesh), on every rank."""
        located = locate(self.mesh, points, allow_outside=True)
        if not hasattr(self, "_cell_region"):
            tdim = self.mesh.topology.dim
            imap = self.mesh.topology.index_map(tdim)
            self._cell_region = np.full(imap.size_local + imap.num_ghosts, -1, dtype=np.int64)
            self._cell_region[self.bundle.cell_tags.indices] = self.bundle.cell_tags.values
        local = np.full(len(points), -1, dtype=np.int64)
        idx = located.local
        local[idx] = self._cell_region[located.cells[idx]]
        out = np.empty_like(local)
        self.comm.Allreduce(local, out, op=MPI.MAX)
        return out

    def _set_heat(self, em: Emitter, load: PETSc.Vec, mu_a: fem.Function) -> None:
        if em.load is not None:
            em.load.destroy()
        em.load = load
        # Q = mu_a phi at the nodes, for output only (the heat load above is the exact Galerkin
        # load); at region interfaces a node takes the value of one adjacent cell.
        em.heat = fem.Function(self.V, name="laser_heat_W_per_m3")
        em.heat.interpolate(fem.Expression(mu_a * em.phi, self.V.element.interpolation_points))

    def _source_vector(self, em: Emitter) -> PETSc.Vec:
        """Unit-power light source of an emitter: along its tip segment, or over the catheter
        wall inside the tip's axial extent for a cavity."""
        ap = em.applicator
        start, end = ap.tip_segment(em.tip_center_m)
        if ap.representation == "line":
            try:
                return self.light.unit_source_segment(start, end)
            except Exception as err:  # a tip end outside the mesh
                raise CaseError(f"applicator[{em.index}] ({ap.name}): {err}") from None
        tip, shaft, _ = cavity_surface_names(ap.name)
        tags = self.bundle.surfaces.get(tip, []) + self.bundle.surfaces.get(shaft, [])
        if not tags:
            raise CaseError(f"applicator[{em.index}] ({ap.name}): the mesh has no catheter surface '{tip}'")
        x = ufl.SpatialCoordinate(self.mesh)
        a = ufl.as_vector(ap.axis)
        s = ufl.dot(x - ufl.as_vector(start), a)
        window = ufl.conditional(ufl.And(ufl.ge(s, 0.0), ufl.le(s, ap.tip_length_m)), 1.0, 0.0)
        v = ufl.TestFunction(self.V)
        ds = ufl.Measure("ds", domain=self.mesh, subdomain_data=self.bundle.facet_tags)(tuple(tags))
        vec = assemble_vector(window * v * ds)
        total = vec.sum()
        if not total > 0.0:
            raise CaseError(f"applicator[{em.index}] ({ap.name}): no catheter wall within the tip at this position")
        vec.scale(1.0 / total)  # unit power exactly
        return vec

    # ------------------------------------------------------------------ time loop helpers
    def combine(self, t: float, out_phi: fem.Function, out_heat: fem.Function, gate: float = 1.0) -> None:
        """Fluence rate and laser heat at time t: gate * sum_j P_j(t) (phi_j, Q_j); ``gate`` is 0
        while the safety loop holds the laser off, so the outputs show the laser as delivered."""
        out_phi.x.array[:] = 0.0
        out_heat.x.array[:] = 0.0
        for em in self.emitters:
            p = gate * em.power(t)
            if p:
                out_phi.x.array[:] += p * em.phi.x.array
                out_heat.x.array[:] += p * em.heat.x.array

    def point_values(self, t: float, located, gate: float = 1.0) -> tuple[np.ndarray, np.ndarray] | None:
        """Kernel model: fluence rate (W/m2) and laser heat mu_a phi (W/m3) at ``located``
        points at time t from the closed form (not its interpolant in the heat space, which
        is 10 to 25 % off between nodes on a coarse mesh); mu_a is that of the cell holding
        the point. None for the diffusion model, whose fluence is the FE solution itself.
        Collective; the same values on every rank."""
        if self.case.light.model != "kernel":
            return None
        phi = np.zeros(len(located.points))
        for em in self.emitters:
            p = gate * em.power(t)
            if p:
                k = em.kernel
                phi += p * kernel_fluence_numpy(located.points, k.emitters, k.optical, k.catheter_radius_m)
        mu_a = evaluate(self.mu_a_cells, located)
        return phi, mu_a * phi

    def summary(self, end_time_s: float) -> dict:
        emitters = []
        delivered = absorbed = 0.0
        for em in self.emitters:
            energy = em.applicator.energy_in_window(0.0, end_time_s, *em.window_s)
            delivered += energy
            absorbed += energy * em.balance["absorbed_W"]
            emitters.append(
                {
                    "applicator": em.applicator.name,
                    "position": em.position,
                    "tip_center_m": list(em.tip_center_m),
                    "active_s": [em.window_s[0], min(em.window_s[1], end_time_s)],
                    "delivered_energy_J": energy,
                    "per_watt": {k: v for k, v in em.balance.items()},
                }
            )
        worst = max((abs(e["per_watt"]["relative_imbalance"]) for e in emitters), default=0.0)
        return {
            "model": self.case.light.model,
            "wavelength_nm": self.case.light.wavelength_nm,
            "boundary": self.case.light.boundary,
            "diffusion_invalid_regions": self.invalid_regions,
            "optics_modelling_choice_regions": sorted(
                r for r, t in self.case.resolved_tissues().items() if "optics at" in (t.source or "")
            ),
            "light_solves": self.solves,
            "delivered_energy_J": delivered,
            "absorbed_energy_J": absorbed,
            "lost_energy_J": delivered - absorbed,
            "max_relative_imbalance": worst,
            "emitters": emitters,
        }
