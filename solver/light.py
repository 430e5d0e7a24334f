"""Laser light in tissue: the steady P1 diffusion approximation (docs/MODEL.md section 2).

    -div(D grad phi) + mu_a phi = S,   D = 1 / (3 (mu_a + mu_s'))  [m]

phi is the fluence rate (W/m2), S the source (W/m3; here deltas of unit total power), and the
absorbed power density mu_a phi (W/m3) is the laser heat source of the Pennes equation.
Solved with Lagrange elements on the same mesh as the heat problem, properties piecewise
constant (DG0) per region.

Boundary conditions:
- ``"robin"``: partial current (extrapolated boundary), D dphi/dn + phi / (2 A) = 0 with
  A = (1 + R_eff) / (1 - R_eff); R_eff = 0 (index-matched, A = 1) unless ``n_rel`` is given,
  then the Groenhuis et al. (Appl Opt 1983, 22:2456) fit
  R_eff = -1.440 n^-2 + 0.710 n^-1 + 0.668 + 0.0636 n.
  The outgoing power is the integral of phi / (2 A) over the boundary.
- ``"zero"``: phi = 0 on the whole boundary (a boundary far from the source).

Energy balance. Testing the discrete equations with v = 1 (a sum of basis functions, so in
the test space for any Lagrange degree) gives, for the Robin form, exactly

    integral mu_a phi dx + integral phi / (2 A) ds = integral S dx = power

up to the linear-solver residual: ``energy_balance`` checks the discretisation and solve,
not the physics. For ``"zero"`` the boundary loss is the variationally consistent flux
(the residual of the un-constrained equations on the boundary dofs), which satisfies the
same identity up to the residual of the interior equations.

Where the diffusion approximation is poor (mu_s' not >> mu_a, e.g. CSF: mu_s' 0.01/mm vs
mu_a 0.048/mm), the engine still solves the same equation with D = 1/(3 (mu_a + mu_s'));
``diffusion_valid`` flags such properties so callers can warn.
solver/low_scattering.py gives the transport-exact (Beer-Lambert) reference and the error bound
of diffusion there (docs/MODEL.md section 2b).
"""

from __future__ import annotations

import math

import numpy as np

from . import compat  # noqa: F401  (import order)
import dolfinx
import dolfinx.fem.petsc
import ufl
from dolfinx import fem
from mpi4py import MPI
from petsc4py import PETSc

from .errors import SolverError
from .fem import assemble_operator, assemble_vector, create_ksp, min_cell_size, region_dofs, untagged_cells
from .geometry import segment_quadrature
from .probes import PointOutsideMesh, point_load_vector


from .optics import (  # noqa: E402,F401  (re-exported: the optical data live in optics.py)
    OPTICAL_ALIASES,
    OPTICAL_TABLE,
    OpticalProperties,
    diffusion_valid,
    optical_properties,
)


def effective_reflection(n_rel: float) -> float:
    """Groenhuis et al. (Appl Opt 1983) fit of the internal diffuse reflection R_eff(n_rel)."""
    n = float(n_rel)
    return -1.440 / n**2 + 0.710 / n + 0.668 + 0.0636 * n


def robin_A(n_rel: float | None = None, R_eff: float | None = None) -> float:
    """A = (1 + R_eff) / (1 - R_eff); R_eff from n_rel (Groenhuis) or given; default 0 (A = 1)."""
    if n_rel is not None and R_eff is not None:
        raise ValueError("give n_rel or R_eff, not both")
    if n_rel is not None:
        R_eff = effective_reflection(n_rel)
    R = 0.0 if R_eff is None else float(R_eff)
    if not 0.0 <= R < 1.0:
        raise ValueError(f"R_eff = {R} must lie in [0, 1)")
    return (1.0 + R) / (1.0 - R)


# --------------------------------------------------------------------------- analytic


def point_fluence_infinite(r_m, power_W: float, mu_a_per_m: float, mu_s_prime_per_m: float):
    """Fluence rate (W/m2) of an isotropic point source P in an infinite homogeneous medium:
    phi = P exp(-mu_eff r) / (4 pi D r)."""
    p = OpticalProperties(mu_a_per_m, mu_s_prime_per_m)
    r = np.asarray(r_m, dtype=float)
    return power_W * np.exp(-p.mu_eff_per_m * r) / (4.0 * math.pi * p.D_m * r)


def point_fluence_sphere_zero(r_m, power_W: float, mu_a_per_m: float, mu_s_prime_per_m: float, radius_m: float):
    """Point source at the centre of a ball with phi = 0 on r = R:
    phi = P sinh(mu_eff (R - r)) / (4 pi D r sinh(mu_eff R)); tends to the infinite kernel."""
    p = OpticalProperties(mu_a_per_m, mu_s_prime_per_m)
    m, r = p.mu_eff_per_m, np.asarray(r_m, dtype=float)
    # sinh(m (R - r)) / sinh(m R) written with exponentials so large m R does not overflow
    ratio = np.exp(-m * r) * (1.0 - np.exp(-2.0 * m * (radius_m - r))) / (1.0 - math.exp(-2.0 * m * radius_m))
    return power_W * ratio / (4.0 * math.pi * p.D_m * r)


def segment_fluence_infinite(points_m, start_m, end_m, power_W: float, mu_a_per_m: float,
                             mu_s_prime_per_m: float, n_gauss: int = 64, n_sub: int = 64):
    """Fluence rate of a line source with uniform emission P / L along [start, end] in an
    infinite medium: the point kernel integrated along the segment (composite Gauss rule;
    accurate for points at a distance from the segment larger than about L / n_sub)."""
    x = np.asarray(points_m, float).reshape(-1, 3)
    a, b = np.asarray(start_m, float), np.asarray(end_m, float)
    gx, gw = np.polynomial.legendre.leggauss(n_gauss)
    edges = np.linspace(0.0, 1.0, n_sub + 1)
    s = (0.5 * (edges[:-1, None] + edges[1:, None]) + 0.5 * np.diff(edges)[:, None] * gx[None, :]).ravel()
    w = (0.5 * np.diff(edges)[:, None] * gw[None, :]).ravel()  # sums to 1
    pts = a[None, :] + s[:, None] * (b - a)[None, :]
    r = np.linalg.norm(x[:, None, :] - pts[None, :, :], axis=2)
    return point_fluence_infinite(r, power_W, mu_a_per_m, mu_s_prime_per_m) @ w


# --------------------------------------------------------------------------- FE problem

# Solver choice, measured (2 cores of the development machine, P1, rtol 1e-10, 4 mm segment
# source; time of the first solve includes the preconditioner set-up, the second reuses it):
#   white matter, ball R = 5 mm, h = 0.16 mm (mu_eff h = 0.18), 98.5k dofs:
#     serial  Robin: CG+GAMG 0.88 s / 0.19 s (14 its), CG+ICC 0.27 s / 0.20 s (40 its),
#                    CG+Jacobi 0.32 s (149 its); zero: GAMG 0.93 / 0.32 s, ICC 0.27 / 0.34 s
#     2 ranks Robin: GAMG 1.25 / 0.25 s (14 its), bjacobi+ICC 0.35 / 0.31 s (60 its);
#             zero:  GAMG 1.23 / 0.28 s, bjacobi+ICC 0.35 / 0.32 s
#   muscle, R = 20 mm, h = 0.65 mm (mu_eff h = 0.2), 94k dofs, serial Robin: GAMG 0.96 / 0.26 s,
#     ICC 0.22 / 0.18 s (38 its)
#   fat (mu_eff 65/m, mu_eff h = 0.04: diffusion-dominated), same mesh, serial Robin:
#     GAMG 0.91 / 0.23 s (16 its), ICC 0.37 / 0.33 s (59 its)
# The operator is mass-like wherever the mesh resolves 1/mu_eff, so ICC needs few iterations
# and no set-up: it wins for the one or few solves per case. GAMG pays off only after ~5
# solves with the same operator in weakly absorbing (fat-dominated) domains; pass
# pc_type="gamg" then. (hypre is not in the PyPI PETSc build.)
DEFAULT_KSP = "cg"
DEFAULT_PC = "icc"  # bjacobi with ICC blocks on more than one rank


class LightProblem:
    """Steady P1 diffusion of laser light on a tagged mesh.

    ``optical`` maps region name -> OpticalProperties; ``cell_tags`` and ``regions`` (name ->
    tag) say which cells belong to which region (a MeshBundle's ``cell_tags``/``regions``).
    With ``cell_tags=None`` a single entry of ``optical`` applies to every cell.
    The operator is assembled and the preconditioner set up once; each ``solve`` is one
    Krylov solve, so many sources (e.g. fibre positions) share the cost.
    """

    def __init__(
        self,
        mesh: dolfinx.mesh.Mesh,
        V: fem.FunctionSpace | None,
        optical: dict[str, OpticalProperties],
        cell_tags: dolfinx.mesh.MeshTags | None = None,
        regions: dict[str, int] | None = None,
        boundary: str = "robin",
        *,
        n_rel: float | None = None,
        R_eff: float | None = None,
        facet_tags: dolfinx.mesh.MeshTags | None = None,
        boundary_tags: list[int] | None = None,
        degree: int = 1,
        ksp_type: str = DEFAULT_KSP,
        pc_type: str = DEFAULT_PC,
        rtol: float = 1e-10,
        atol: float = 1e-30,
        max_iterations: int = 2000,
        pattern_of: tuple[PETSc.Mat, fem.Form] | None = None,
    ):
        """``pattern_of``: (matrix, its form) of another operator on the same space whose
        sparsity pattern the light operator may reuse (solver.fem.assemble_operator)."""
        if boundary not in ("robin", "zero"):
            raise ValueError(f"boundary = '{boundary}': use 'robin' or 'zero'")
        self.mesh = mesh
        self.comm = mesh.comm
        self.V = V if V is not None else fem.functionspace(mesh, ("Lagrange", degree))
        self.boundary = boundary
        self.A_robin = robin_A(n_rel, R_eff)
        self.optical = dict(optical)
        self._cell_tags, self._regions = cell_tags, regions
        self._properties(cell_tags, regions)
        tdim = mesh.topology.dim
        mesh.topology.create_connectivity(tdim - 1, tdim)
        if boundary_tags is not None:
            if facet_tags is None:
                raise ValueError("boundary_tags needs facet_tags")
            self.ds = ufl.Measure("ds", domain=mesh, subdomain_data=facet_tags)(tuple(boundary_tags))
            facets = np.unique(np.concatenate([facet_tags.find(t) for t in boundary_tags])).astype(np.int32)
        else:
            self.ds = ufl.Measure("ds", domain=mesh)
            facets = dolfinx.mesh.exterior_facet_indices(mesh.topology)
        self.dx = ufl.Measure("dx", domain=mesh)
        self._boundary_dofs = fem.locate_dofs_topological(self.V, tdim - 1, facets)
        self._forms()
        self._operator(ksp_type, pc_type, rtol, atol, max_iterations, pattern_of)
        self.iterations: list[int] = []

    # ------------------------------------------------------------------ set-up
    def _properties(self, cell_tags, regions) -> None:
        """Fill the DG0 fields mu_a (1/m) and D (m) per region (created on the first call;
        later calls refill them in place, so the compiled forms see the new values)."""
        if not hasattr(self, "mu_a"):
            Q = fem.functionspace(self.mesh, ("DG", 0))
            self.mu_a = fem.Function(Q, name="mu_a")
            self.D = fem.Function(Q, name="D")
        if cell_tags is None:
            if len(self.optical) != 1:
                raise ValueError("without cell_tags, give exactly one entry in optical")
            (props,) = self.optical.values()
            self.mu_a.x.array[:] = props.absorption_per_m
            self.D.x.array[:] = props.D_m
            return
        if regions is None:
            raise ValueError("cell_tags needs regions (name -> tag)")
        missing_props = sorted(set(regions) - set(self.optical))
        if missing_props:
            raise ValueError(f"no optical properties for regions {missing_props}")
        missing = untagged_cells(self.mesh, cell_tags, regions.values())
        if missing:
            raise ValueError(f"{missing} cells belong to no region with optical properties")
        Q = self.mu_a.function_space
        for region, dofs in region_dofs(Q, cell_tags, regions).items():
            self.mu_a.x.array[dofs] = self.optical[region].absorption_per_m
            self.D.x.array[dofs] = self.optical[region].D_m
        self.mu_a.x.scatter_forward()
        self.D.x.scatter_forward()

    def update_optical(self, optical: dict[str, OpticalProperties]) -> None:
        """New optical properties per region (e.g. after coagulation): refill the DG0 fields,
        re-assemble the operator in place and refresh the preconditioner."""
        self.optical = dict(optical)
        self._properties(self._cell_tags, self._regions)
        self.A.zeroEntries()
        dolfinx.fem.petsc.assemble_matrix(self.A, self.a_form, bcs=self.bcs)
        self.A.assemble()
        self.ksp.setOperators(self.A)

    def set_cellwise(self, mu_a_cells: np.ndarray, mus_cells: np.ndarray) -> None:
        """Cell-wise mu_a and mu_s' (1/m, arrays over local cells incl. ghosts, DG0 order):
        refill the fields, re-assemble the operator in place, refresh the preconditioner."""
        self.mu_a.x.array[:] = mu_a_cells
        self.D.x.array[:] = 1.0 / (3.0 * (mu_a_cells + mus_cells))
        self.mu_a.x.scatter_forward()
        self.D.x.scatter_forward()
        self.A.zeroEntries()
        dolfinx.fem.petsc.assemble_matrix(self.A, self.a_form, bcs=self.bcs)
        self.A.assemble()
        self.ksp.setOperators(self.A)

    def invalid_regions(self, ratio: float = 10.0) -> list[str]:
        """Regions whose properties fail ``diffusion_valid``."""
        return [name for name, p in self.optical.items() if not diffusion_valid(p, ratio)]

    def _forms(self) -> None:
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        a = self.D * ufl.inner(ufl.grad(u), ufl.grad(v)) * self.dx + self.mu_a * u * v * self.dx
        self.bcs: list[fem.DirichletBC] = []
        if self.boundary == "robin":
            a += (1.0 / (2.0 * self.A_robin)) * u * v * self.ds
        else:
            zero = fem.Constant(self.mesh, PETSc.ScalarType(0.0))
            self.bcs = [fem.dirichletbc(zero, self._boundary_dofs, self.V)]
        self.a_form = fem.form(a)

    def _operator(self, ksp_type, pc_type, rtol, atol, max_iterations, pattern_of=None) -> None:
        self.A = assemble_operator(self.a_form, self.bcs, like=pattern_of)
        self.ksp = create_ksp(self.comm, self.A, prefix="light_", ksp_type=ksp_type, pc_type=pc_type,
                              rtol=rtol, atol=atol, max_it=max_iterations)

    # ------------------------------------------------------------------ sources
    def unit_source_point(self, points, weights=None) -> PETSc.Vec:
        """Load vector of isotropic point sources at ``points`` (m) carrying ``weights`` of a
        unit total power (default: equal shares). Exact assembly of the deltas."""
        pts = np.asarray(points, float).reshape(-1, 3)
        w = np.full(len(pts), 1.0 / len(pts)) if weights is None else np.asarray(weights, float)
        if len(w) != len(pts):
            raise ValueError("one weight per point")
        total = float(w.sum())
        if not math.isclose(total, 1.0, rel_tol=1e-12):
            raise ValueError(f"weights sum to {total}; a unit source needs weights summing to 1")
        try:
            return point_load_vector(self.V, pts, w)
        except PointOutsideMesh as err:
            raise ValueError(f"light source at {err.points[err.indices[0]].tolist()} m is outside the mesh") from None

    def unit_source_segment(self, start_m, end_m, points_per_cell: int = 4) -> PETSc.Vec:
        """Uniform emission along the segment (a diffusing fibre tip), unit total power:
        Gauss points on sub-segments shorter than h_min / points_per_cell
        (solver.geometry.segment_quadrature)."""
        pts, w = segment_quadrature(start_m, end_m, min_cell_size(self.mesh), points_per_cell)
        return self.unit_source_point(pts, w)

    # ------------------------------------------------------------------ solve
    def solve(self, load: PETSc.Vec, power_W: float = 1.0) -> fem.Function:
        """Fluence rate phi (W/m2) for the source ``power_W * load``."""
        b = load.copy()
        if power_W != 1.0:
            b.scale(power_W)
        if self.bcs:
            dolfinx.fem.petsc.set_bc(b, self.bcs)
        phi = fem.Function(self.V, name="fluence_rate")
        self.ksp.solve(b, phi.x.petsc_vec)
        reason = self.ksp.getConvergedReason()
        if reason < 0:
            raise SolverError(
                f"light solve did not converge (PETSc reason {reason}, {self.ksp.getIterationNumber()} "
                f"iterations, residual {self.ksp.getResidualNorm():.3e}); try pc_type = 'lu'"
            )
        self.iterations.append(self.ksp.getIterationNumber())
        phi.x.scatter_forward()
        self._last_load = (load, power_W)
        b.destroy()
        return phi

    # ------------------------------------------------------------------ diagnostics
    def _sum(self, form) -> float:
        return float(self.comm.allreduce(fem.assemble_scalar(fem.form(form)), op=MPI.SUM))

    def absorbed_power(self, phi: fem.Function) -> float:
        """integral of mu_a phi dx (W)."""
        return self._sum(self.mu_a * phi * self.dx)

    def boundary_loss(self, phi: fem.Function, load: PETSc.Vec | None = None, power_W: float | None = None) -> float:
        """Power (W) leaving through the boundary.

        Robin: integral of phi / (2 A) ds, the outgoing partial current. Zero: the consistent
        flux, sum over boundary dofs of (b - K phi) with K the un-constrained operator and b
        the load of the last solve (or ``load``, ``power_W``)."""
        if self.boundary == "robin":
            return self._sum((1.0 / (2.0 * self.A_robin)) * phi * self.ds)
        if load is None:
            load, p = self._last_load
            power_W = p if power_W is None else power_W
        power_W = 1.0 if power_W is None else power_W
        v = ufl.TestFunction(self.V)
        r = assemble_vector(self.D * ufl.inner(ufl.grad(phi), ufl.grad(v)) * self.dx + self.mu_a * phi * v * self.dx)
        n_owned = self.V.dofmap.index_map.size_local
        dofs = self._boundary_dofs[self._boundary_dofs < n_owned]
        local = float(np.sum(power_W * load.array[dofs] - r.array[dofs]))
        r.destroy()
        return float(self.comm.allreduce(local, op=MPI.SUM))

    def energy_balance(self, phi: fem.Function, power_W: float = 1.0) -> dict[str, float]:
        """Source power, absorbed power, boundary loss and the relative imbalance
        (absorbed + lost - power) / power, all in W."""
        absorbed = self.absorbed_power(phi)
        lost = self.boundary_loss(phi) if self.boundary == "robin" else self.boundary_loss(phi, power_W=power_W)
        return {
            "source_W": power_W,
            "absorbed_W": absorbed,
            "boundary_loss_W": lost,
            "relative_imbalance": (absorbed + lost - power_W) / power_W,
        }

    # ------------------------------------------------------------------ coupling to heat
    def heat_load(self, phi: fem.Function, V_heat: fem.FunctionSpace) -> PETSc.Vec:
        """The heat load vector b_i = integral mu_a phi v_i dx in ``V_heat`` (same mesh): the
        exact Galerkin load of Q = mu_a phi, with no intermediate field. Its entries sum to the
        absorbed power."""
        v = ufl.TestFunction(V_heat)
        return assemble_vector(self.mu_a * phi * v * ufl.dx(domain=self.mesh))

    def heat_source(self, phi: fem.Function, V_heat: fem.FunctionSpace | None = None,
                    method: str = "project") -> fem.Function:
        """Q = mu_a phi (W/m3) as a Function of ``V_heat`` (default the light space).

        ``project`` (default): consistent L2 projection, so integral Q dx equals the absorbed
        power exactly (up to the mass solve) for any degree; may undershoot below 0 next to a
        point source. ``lumped``: row-sum lumped projection Q_i = (mu_a phi, v_i) / (1, v_i),
        also conservative and non-negative, P1 only. ``interpolate``: nodal values of
        mu_a phi (at a region interface the value of one adjacent cell; not conservative).
        """
        V_heat = self.V if V_heat is None else V_heat
        Q = fem.Function(V_heat, name="laser_heat_W_per_m3")
        if method == "interpolate":
            expr = fem.Expression(self.mu_a * phi, V_heat.element.interpolation_points)
            Q.interpolate(expr)
            return Q
        b = self.heat_load(phi, V_heat)
        if method == "lumped":
            if V_heat.element.basix_element.degree != 1:
                raise ValueError("lumped projection needs a P1 heat space")
            v = ufl.TestFunction(V_heat)
            m = assemble_vector(v * ufl.dx(domain=self.mesh))
            Q.x.petsc_vec.pointwiseDivide(b, m)
            m.destroy()
        elif method == "project":
            u, v = ufl.TrialFunction(V_heat), ufl.TestFunction(V_heat)
            M = dolfinx.fem.petsc.assemble_matrix(fem.form(u * v * ufl.dx(domain=self.mesh)))
            M.assemble()
            ksp = create_ksp(self.comm, M, prefix="light_mass_", ksp_type="cg", pc_type="jacobi",
                             rtol=1e-12, atol=1e-30, max_it=1000, from_options=False)
            ksp.solve(b, Q.x.petsc_vec)
            if ksp.getConvergedReason() < 0:
                raise SolverError("mass-matrix projection of the laser heat source did not converge")
            ksp.destroy()
            M.destroy()
        else:
            raise ValueError(f"method = '{method}': use 'project', 'lumped' or 'interpolate'")
        b.destroy()
        Q.x.scatter_forward()
        return Q

    def num_dofs(self) -> int:
        return self.V.dofmap.index_map.size_global * self.V.dofmap.index_map_bs


def from_bundle(bundle, optical: dict[str, OpticalProperties], boundary: str = "robin",
                surfaces: list[str] | None = None, **kwargs) -> LightProblem:
    """A LightProblem on a MeshBundle: regions from its cell tags; the light boundary is the
    whole exterior boundary, or the named ``surfaces`` (then the rest of the boundary is
    natural: zero flux, no light leaves there)."""
    tags = None
    if surfaces is not None:
        tags = sorted({t for s in surfaces for t in bundle.surfaces[s]})
    return LightProblem(
        bundle.mesh, None, optical, bundle.cell_tags, bundle.regions, boundary,
        facet_tags=bundle.facet_tags if tags is not None else None, boundary_tags=tags, **kwargs,
    )
